# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named volumes over SSH, for real: the volume and volume_info modules, containers mounting
volumes (data outliving a container, the first-use copy from the image, in-use refusal), bad
input, and bind propagation seen from inside a container.

The test host is set up once for the module (host config, the busybox and multilayer images);
after each test nothing may be left: no supervisor, container, volume or mount (harness.containers).
"""
from __future__ import annotations

import json
import secrets
import shlex

import pytest

from harness import images
from harness.containers import DATA_ROOT, FIXTURE_CACHE, LAYOUT, NOTHING, Box, setup, teardown

VOLUMES = DATA_ROOT + '/volumes'
SLEEP = {'command': 'sleep 1000', 'stop_timeout': 0}

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason='cgroup cleanup here is for v1/hybrid hosts')


class VolumeBox(Box):
    def volume(self, check=False, diff=False, **args):
        return self.ansible.module('nsbox.runtime.volume', args, check=check, diff=diff)

    def volume_info(self, name=None):
        return self.ansible.module('nsbox.runtime.volume_info', {'name': name} if name else {})

    def play(self, steps):
        """Several module tasks in one play (one Ansible start): steps are (label, module, args[, check]); failures kept."""
        tasks = []
        for step in steps:
            label, module, args = step[:3]
            task = {'name': label, 'nsbox.runtime.' + module: args, 'ignore_errors': True, 'diff': True}
            if len(step) > 3 and step[3]:
                task['check_mode'] = True
            tasks.append(task)
        res = self.ansible.tasks(tasks)
        return {step[0]: res.task(step[0]) for step in steps}

    def tree(self, top):
        """{relative path: type, mode, uid, gid, ino, link, data} of everything under ``top`` on the test host."""
        code = ('import json, os, stat, sys\n'
                'top = sys.argv[1]; out = {}\n'
                'for d, dirs, files in os.walk(top):\n'
                '    for n in dirs + files:\n'
                '        p = os.path.join(d, n); st = os.lstat(p); rel = os.path.relpath(p, top)\n'
                '        kind = "l" if stat.S_ISLNK(st.st_mode) else "d" if stat.S_ISDIR(st.st_mode) else "f" if stat.S_ISREG(st.st_mode) else "o"\n'
                '        out[rel] = {"type": kind, "mode": stat.S_IMODE(st.st_mode), "uid": st.st_uid, "gid": st.st_gid, "ino": st.st_ino,\n'
                '                    "link": os.readlink(p) if kind == "l" else None,\n'
                '                    "data": open(p, errors="replace").read() if kind == "f" and st.st_size < 4096 else None}\n'
                'print(json.dumps(out))\n')
        return json.loads(self.host.ssh('python3 -c %s %s' % (shlex.quote(code), shlex.quote(top))).stdout)

    def volumes(self):
        return self.sh('ls -A %s 2>/dev/null | grep -v "^.lock$" || true' % VOLUMES).split()


@pytest.fixture(scope='module')
def volume_host(testhost, ansible):
    fixtures = images.FixtureImages(FIXTURE_CACHE).build()
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive, 'multilayer': fixtures.multilayer_docker_archive})
    yield VolumeBox(testhost, ansible, parent)
    teardown(testhost, parent)


@pytest.fixture
def vbox(volume_host, reaper):
    """Per test: nothing left behind (supervisors, mounts, containers, volumes), nor orphans; removed even when the test failed."""
    yield volume_host
    leftovers = teardown(volume_host.host, volume_host.parent, everything=False)
    assert leftovers == NOTHING, 'the test left these behind: %r' % leftovers
    reaper.check()


def test_volume_lifecycle_labels_check_mode_and_info(vbox):
    r = vbox.play([
        ('predict', 'volume', {'name': 'data', 'labels': {'tier': 'db'}}, True),
        ('nothing made', 'volume_info', {'name': 'data'}),
        ('create', 'volume', {'name': 'data', 'labels': {'tier': 'db'}}),
        ('again', 'volume', {'name': 'data', 'labels': {'tier': 'db'}}),
        ('no labels given', 'volume', {'name': 'data'}),
    ])
    res = r['predict']
    assert res['_status'] == 'changed' and res['actions'] == ['created volume data'] and res['diff']['before'] == {'exists': False}
    assert r['nothing made']['exists'] is False                                  # check mode: nothing made
    res = r['create']
    assert res['_status'] == 'changed', res
    vol = res['volume']
    assert vol['Name'] == 'data' and vol['Driver'] == 'local' and vol['Scope'] == 'local' and vol['Labels'] == {'tier': 'db'}
    assert vol['Mountpoint'] == VOLUMES + '/data/_data' and vol['UsedBy'] == [] and vol['CreatedAt'].endswith('Z')
    assert vbox.sh('stat -c %%a %s' % vol['Mountpoint']) == '755'
    assert r['again']['_status'] == 'ok' and r['no labels given']['_status'] == 'ok'   # labels not given: left alone
    vbox.sh('echo kept > %s/file' % vol['Mountpoint'])
    # labels: predicted, then updated in place (the data stays)
    res = vbox.volume(check=True, diff=True, name='data', labels={'tier': 'web'})
    assert res['_status'] == 'changed' and res['actions'] == ['updated labels of volume data']
    assert res['diff']['after']['labels'] == {'tier': 'web'}
    assert vbox.volume_info('data')['volume']['Labels'] == {'tier': 'db'}
    res = vbox.volume(name='data', labels={'tier': 'web'})
    assert res['_status'] == 'changed' and res['volume']['Labels'] == {'tier': 'web'} and vbox.sh('cat %s/file' % vol['Mountpoint']) == 'kept'
    # recreate=options-changed: as docker_volume, a new (empty) volume
    res = vbox.volume(name='data', labels={'tier': 'x'}, recreate='options-changed')
    assert res['actions'] == ['recreated volume data (labels; its data is gone)'] and vbox.sh('ls -A %s' % vol['Mountpoint']) == ''
    info = vbox.volume_info('data')
    assert info['exists'] and info['containers'] == [] and info['volume']['Labels'] == {'tier': 'x'}
    vbox.volume(name='other')
    assert [v['Name'] for v in vbox.volume_info()['volumes']] == ['data', 'other']
    info = vbox.volume_info('nosuch')
    assert info['exists'] is False and info['volume'] is None and info['containers'] == []
    # absent: predicted, done, then nothing to do
    r = vbox.play([('predict', 'volume', {'name': 'data', 'state': 'absent'}, True), ('still there', 'volume_info', {'name': 'data'}),
                   ('remove', 'volume', {'name': 'data', 'state': 'absent'}), ('again', 'volume', {'name': 'data', 'state': 'absent'}),
                   ('other', 'volume', {'name': 'other', 'state': 'absent'})])
    assert r['predict']['_status'] == 'changed' and r['still there']['exists']
    assert [r[k]['_status'] for k in ('remove', 'again', 'other')] == ['changed', 'ok', 'changed'] and vbox.volumes() == []


def test_data_outlives_the_container_and_the_image_content_is_copied_once(vbox):
    """busybox has /var/www/index.html: a fresh volume mounted there gets it, once."""
    args = dict(SLEEP, name='c1', image='busybox', volumes=['www:/var/www'])
    res = vbox.run(check=True, **args)
    assert res['actions'] == ['created volume www', 'created container c1 from busybox', 'started container c1'], res
    assert vbox.volumes() == []
    res = vbox.run(**args)
    assert res['_status'] == 'changed' and res['actions'][0] == 'created volume www', res
    assert vbox.sh('cat %s/www/_data/index.html' % VOLUMES) == images.HELLO.decode().strip()
    assert '"populated": true' in vbox.sh('cat %s/www/volume.json' % VOLUMES)
    assert vbox.run(**args)['_status'] == 'ok'
    assert vbox.exec('c1', ['sh', '-c', 'echo written-in-c1 > /var/www/mine'])['rc'] == 0
    assert vbox.run(name='c1', state='absent')['_status'] == 'changed'
    # the container is gone, the volume and its data are not
    info = vbox.volume_info('www')
    assert info['exists'] and info['containers'] == [] and vbox.sh('cat %s/www/_data/mine' % VOLUMES) == 'written-in-c1'
    # a second container sees it (long form, read-only, elsewhere)
    vbox.run(**dict(SLEEP, name='c2', image='busybox', mounts=[{'type': 'volume', 'source': 'www', 'target': '/srv/data', 'read_only': True}]))
    r = vbox.execs('c2', {'read': ('cat /srv/data/mine', {}), 'write': ('touch /srv/data/x', {})})
    assert r['read']['stdout'] == 'written-in-c1\n' and r['write']['rc'] == 1 and 'Read-only' in r['write']['stderr']
    # emptied, it is not filled from the image again: the copy happens once per volume
    vbox.sh('rm %s/www/_data/index.html' % VOLUMES)
    vbox.run(**dict(args, name='c3'))
    assert vbox.exec('c3', 'ls /var/www')['stdout'].split() == ['mine']
    # in use (c2, c3): removal and recreation fail, naming them, and change nothing
    r = vbox.play([('remove', 'volume', {'name': 'www', 'state': 'absent'}), ('recreate', 'volume', {'name': 'www', 'recreate': 'always'}),
                   ('predict', 'volume', {'name': 'www', 'state': 'absent'}, True), ('info', 'volume_info', {'name': 'www'})])
    for label in ('remove', 'recreate', 'predict'):
        assert r[label]['_status'] in ('failed', 'ignored') and 'in use by containers c2, c3' in r[label]['msg'], r[label]
    assert r['info']['containers'] == ['c2', 'c3'] and vbox.sh('cat %s/www/_data/mine' % VOLUMES) == 'written-in-c1'
    # a stopped container still uses it (as Docker)
    r = vbox.play([('stop c3', 'container', dict(args, name='c3', state='stopped')), ('rm c2', 'container', {'name': 'c2', 'state': 'absent'}),
                   ('refused', 'volume', {'name': 'www', 'state': 'absent'}), ('rm c3', 'container', {'name': 'c3', 'state': 'absent'}),
                   ('removed', 'volume', {'name': 'www', 'state': 'absent'})])
    assert 'in use by container c3 (remove it first)' in r['refused']['msg'] and r['removed']['_status'] == 'changed', r


def test_copy_up_keeps_owners_modes_and_links(vbox):
    """The multilayer image's /data (hard links, symlinks, setgid/sticky dirs, non-root owners) copied into a fresh volume;
    no_copy leaves another volume empty."""
    res = vbox.run(**dict(SLEEP, name='ml', image='multilayer', volumes=['mldata:/data', 'raw:/raw-data:nocopy'],
                          mounts=[{'type': 'volume', 'source': 'nocopy', 'target': '/data/olddir', 'no_copy': True}]))
    assert res['_status'] == 'changed', res
    tree = vbox.tree('%s/mldata/_data' % VOLUMES)
    exp = images.MULTILAYER_EXPECTED

    def under_data(table):
        return {rel[len('data/'):]: v for rel, v in table.items() if rel.startswith('data/')}
    for rel, data in under_data(exp['files']).items():
        assert tree[rel]['type'] == 'f' and tree[rel]['data'] == data.decode(), rel
    for rel, target in under_data(exp['symlinks']).items():
        assert tree[rel]['type'] == 'l' and tree[rel]['link'] == target, rel
    for rel, mode in under_data(exp['modes']).items():
        assert tree[rel]['mode'] == mode, rel
    for rel, owner in under_data(exp['owners']).items():
        assert (tree[rel]['uid'], tree[rel]['gid']) == owner, rel
    assert tree['layer4/hl-a']['ino'] == tree['layer4/hl-b']['ino']
    assert not any(rel[len('data/'):] in tree for rel in exp['absent'] if rel.startswith('data/'))
    # the no_copy volumes stay empty
    assert vbox.tree('%s/nocopy/_data' % VOLUMES) == {} and vbox.tree('%s/raw/_data' % VOLUMES) == {}
    assert vbox.exec('ml', 'cat /data/keep.txt')['stdout'] == 'keep v2\n'
    vbox.run(name='ml', state='absent')
    for name in ('mldata', 'raw', 'nocopy'):
        vbox.volume(name=name, state='absent')


BAD = [
    ('volume', {'name': 'x'}, 'names are 2-255 characters'),
    ('volume', {'name': 'bad/name'}, 'names are 2-255 characters'),
    ('volume', {'name': 'data', 'driver_options': {'type': 'tmpfs', 'o': 'size=1m'}}, 'not supported in this version'),
    ('volume', {'name': 'data', 'size': '1g'}, 'Unsupported parameters'),
    ('container', {'volumes': ['x:/d']}, 'names are 2-255 characters'),
    ('container', {'mounts': [{'type': 'volume', 'target': '/d'}]}, 'needs source, the name of a volume'),
    ('container', {'mounts': [{'type': 'volume', 'source': 'data', 'target': '/d', 'sizes': 1}]}, 'unknown keys sizes'),
    ('container', {'volumes': ['/anonymous']}, 'anonymous volumes are not supported'),
    ('container', {'volumes': ['data:/d', '/no/such/dir:/e']}, 'the source does not exist on the host'),
    ('container', {'volumes': ['data:/d'], 'user': 'nobody-here'}, "no matching entry in the image's /etc/passwd"),
]


def test_bad_input_is_refused_and_leaves_nothing(vbox):
    """A clear error; no volume (one made for a container that then failed to start is taken back), no container."""
    steps = [('%d' % i, module, args if module == 'volume' else dict(SLEEP, name='bad', image='busybox', **args))
             for i, (module, args, _message) in enumerate(BAD)]
    r = vbox.play(steps + [('after', 'container_info', {'name': ['bad']})])
    for i, (_module, _args, message) in enumerate(BAD):
        assert r['%d' % i]['_status'] in ('failed', 'ignored') and message in r['%d' % i]['msg'], r['%d' % i]
    assert vbox.volumes() == [] and r['after']['containers'] == []


def test_bind_propagation_rshared_sees_later_host_mounts_rprivate_does_not(vbox):
    base = DATA_ROOT + '/prop-' + secrets.token_hex(3)
    shared, plain = base + '/shared', base + '/plain'
    vbox.sh('mkdir -p %s/sub %s && mount --bind %s %s && mount --make-shared %s' % (shared, plain, shared, shared, shared))
    try:
        r = vbox.play([
            ('sh', 'container', dict(SLEEP, name='sh', image='busybox', volumes=['%s:/mnt:rshared' % shared])),
            ('pr', 'container', dict(SLEEP, name='pr', image='busybox', mounts=[{'type': 'bind', 'source': shared, 'target': '/mnt'}])),
            # a source that cannot propagate: refused, not silently private
            ('bad', 'container', dict(SLEEP, name='bad', image='busybox',
                                      mounts=[{'type': 'bind', 'source': plain, 'target': '/mnt', 'propagation': 'rslave'}])),
        ])
        assert r['sh']['_status'] == 'changed' and r['pr']['_status'] == 'changed', r
        assert r['bad']['_status'] in ('failed', 'ignored') and 'not shared or a slave' in r['bad']['msg'] and vbox.info('bad') is None, r
        # mounted on the host after both started
        vbox.sh('mount -t tmpfs nsbox-prop %s/sub && echo from-host > %s/sub/f' % (shared, shared))
        seen = vbox.execs('sh', {'f': ('cat /mnt/sub/f', {}), 'mount': ('grep -c " /mnt/sub " /proc/self/mountinfo', {})})
        assert seen['f']['stdout'] == 'from-host\n' and seen['mount']['stdout'] == '1\n'
        assert vbox.execs('pr', {'f': ('test -e /mnt/sub/f', {})})['f']['rc'] == 1
    finally:
        vbox.play([(name, 'container', {'name': name, 'state': 'absent'}) for name in ('sh', 'pr', 'bad')])
        vbox.host.ssh('umount %s/sub; umount %s; rm -rf %s' % (shared, shared, base), check=False)
