# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""User namespaces for real: ``userns_mode: auto`` gives each container its own 65536 host ids (seen in
/proc/self/uid_map, never overlapping, freed on removal); what the container's root makes in a bind mount is
owned on the host by the mapped id, and a host file owned by real root stays out of its reach; its rootfs is
usable (idmapped, or shifted with chown when the host config says so); explicit uidmap/gidmap are honoured; bad
maps are refused with nothing left; an unchanged task changes nothing and a changed mode recreates."""
from __future__ import annotations

import json
import os
import secrets
import shutil

import pytest

from harness.containers import DATA_ROOT, LAYOUT, NOTHING, V1_ONLY, private_box, setup, teardown

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

BASE = {'image': 'busybox', 'command': 'sleep 3600', 'stop_timeout': 0}
POOL_START = 2147483648
DEFAULT_CAPS = '00000000a80425fb'


@pytest.fixture(scope='module')
def ns_host(testhost, ansible, fixtures):
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive})
    teardown(testhost, parent)


@pytest.fixture
def box(ns_host, reaper):
    yield ns_host
    left = teardown(ns_host.host, ns_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


@pytest.fixture
def shared_dir():
    """A host directory to bind (the test host's /var/tmp is this machine's): one file in it owned by real root, 0644."""
    path = '/var/tmp/nsbox-userns-%s' % secrets.token_hex(4)
    os.mkdir(path)
    os.chmod(path, 0o777)
    with open(os.path.join(path, 'roots'), 'w') as f:
        f.write('host root only\n')
    os.chmod(os.path.join(path, 'roots'), 0o644)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _remove(box, names):
    res = box.ansible.tasks([{'nsbox.runtime.container': {'name': n, 'state': 'absent', 'force_kill': True}} for n in names])
    assert res.rc == 0, res


def _ranges(box):
    text = box.sh('cat %s/userns/ranges.json 2>/dev/null || echo "{}"' % DATA_ROOT)
    return json.loads(text).get('ranges') or {}


def _first(entries):
    assert len(entries) == 1 and entries[0]['container_id'] == 0 and entries[0]['size'] == 65536, entries
    return entries[0]['host_id']


def test_auto_ranges_bind_mounts_and_rootfs(box, shared_dir):
    names = ['uns-a', 'uns-b']
    args = dict(BASE, userns_mode='auto', volumes=['%s:/shared' % shared_dir])
    try:
        res = box.ansible.tasks([{'name': n, 'nsbox.runtime.container': dict(args, name=n)} for n in names])
        assert res.rc == 0 and all(res.task(n)['_status'] == 'changed' for n in names), res
        infos = box.infos(names)
        starts = {}
        for n in names:
            userns = infos[n]['state']['userns']
            assert userns['mode'] == 'auto' and userns['rootfs'] in ('idmapped', 'chown'), userns
            starts[n] = _first(userns['uid_map'])
            assert _first(userns['gid_map']) == starts[n]
            assert starts[n] >= POOL_START and (starts[n] - POOL_START) % 65536 == 0
        assert abs(starts['uns-a'] - starts['uns-b']) >= 65536, starts
        assert sorted(_ranges(box).values()) == sorted(starts.values())
        seen = box.exec_many({
            'uid_map': ('uns-a', ['cat', '/proc/self/uid_map'], {}),
            'gid_map': ('uns-b', ['cat', '/proc/1/gid_map'], {}),
            'status': ('uns-a', ['sh', '-c', "grep -E '^(CapEff|CapBnd):' /proc/1/status | tr -s '\\t ' ' '"], {}),
            'id': ('uns-a', ['id', '-u'], {}),
            'make': ('uns-a', ['sh', '-c', 'echo made > /shared/made && mkdir /shared/dir'], {}),
            'roots': ('uns-a', ['sh', '-c', 'echo more >> /shared/roots'], {}),
            'rootfs': ('uns-a', ['sh', '-c', 'stat -c "%u:%g" /bin/busybox /etc/passwd / && echo x >> /etc/passwd && mkdir /new '
                                 '&& touch /new/f && stat -c "%u:%g" /new/f'], {}),
            'mounts': ('uns-b', ['cat', '/proc/1/mountinfo'], {}),
            'mqueue': ('uns-b', ['sh', '-c', 'ls -d /dev/mqueue /sys/class/net/lo /proc/1/status && touch /dev/shm/x'], {}),
            'hostroot': ('uns-b', ['sh', '-c', 'cat /proc/1/root/../../../proc/1/uid_map'], {}),
        })
        ok = {k: v for k, v in seen.items() if not v.get('failed') and v.get('rc') == 0}
        for label in ('uid_map', 'gid_map', 'status', 'id', 'make', 'rootfs', 'mounts', 'mqueue'):
            assert label in ok, seen[label]
        assert ok['uid_map']['stdout'].split() == ['0', str(starts['uns-a']), '65536'], ok['uid_map']
        assert ok['gid_map']['stdout'].split() == ['0', str(starts['uns-b']), '65536'], ok['gid_map']
        assert ok['id']['stdout'].strip() == '0'
        status = dict(line.split(' ', 1) for line in ok['status']['stdout'].strip().splitlines())
        assert status == {'CapEff:': DEFAULT_CAPS, 'CapBnd:': DEFAULT_CAPS}, status  # Docker's 14, inside its namespace
        # The acceptance test of the issue: what the container's root makes is the mapped id's on the host.
        for made in ('made', 'dir'):
            st = os.stat(os.path.join(shared_dir, made))
            assert (st.st_uid, st.st_gid) == (starts['uns-a'], starts['uns-a']), (made, st)
        # Root in the container is not root on the host: a host file of real root, 0644, stays unwritable.
        assert seen['roots'].get('rc') not in (0, None) and 'ermission denied' in seen['roots'].get('stderr', ''), seen['roots']
        with open(os.path.join(shared_dir, 'roots')) as f:
            assert f.read() == 'host root only\n'
        # The rootfs belongs to the container's root: the image's files read as 0:0 inside, and it may write them.
        lines = ok['rootfs']['stdout'].split()
        assert lines == ['0:0'] * 4, ok['rootfs']
        mounts = {line.split()[4]: line.split(' - ')[1].split()[0] for line in ok['mounts']['stdout'].splitlines()}
        assert {mounts.get(p) for p in ('/proc', '/dev', '/dev/mqueue', '/dev/pts', '/sys')} == {'proc', 'tmpfs', 'mqueue', 'devpts', 'sysfs'}, mounts
        assert 'hostroot' not in ok or ok['hostroot']['stdout'].split()[:2] == ['0', str(starts['uns-b'])], seen['hostroot']
        # Unchanged: nothing to do.
        again = box.ansible.tasks([{'name': n, 'nsbox.runtime.container': dict(args, name=n)} for n in names])
        assert all(again.task(n)['_status'] == 'ok' for n in names), again
        # A removal frees the range: the next auto container gets the lowest free one, uns-a's.
        _remove(box, ['uns-a'])
        assert sorted(_ranges(box).values()) == [starts['uns-b']]
        low = min(starts.values())
        third = box.run(**dict(args, name='uns-c'))
        assert third['_status'] == 'changed', third
        assert _first(box.info('uns-c')['state']['userns']['uid_map']) == (low if low == starts['uns-a'] else POOL_START), third
    finally:
        _remove(box, names + ['uns-c'])
    assert _ranges(box) == {}


def test_explicit_maps_and_a_changed_mode(box):
    uid = ['0:3500000000:65536']
    gid = ['0:3500100000:1000', '1000:3500200000:64536']
    try:
        # SYS_ADMIN added: it counts in the container's user namespace, not over its mounts (the host's user namespace's)
        first = box.run(**dict(BASE, name='uns-x', uidmap=uid, gidmap=gid, cap_add=['SYS_ADMIN']))
        assert first['_status'] == 'changed', first
        seen = box.execs('uns-x', {'uid': (['cat', '/proc/self/uid_map'], {}), 'gid': (['cat', '/proc/self/gid_map'], {}),
                                   'touch': (['sh', '-c', 'touch /tmp/f && chown 1000:1000 /tmp/f && stat -c %u:%g /tmp/f'], {}),
                                   'mount': (['mount', '-t', 'tmpfs', 'x', '/tmp'], {}),
                                   'umount': (['umount', '/proc/kcore'], {})})
        for label in ('mount', 'umount'):
            assert seen[label].get('rc') not in (0, None), seen[label]
        assert [line.split() for line in seen['uid']['stdout'].strip().splitlines()] == [['0', '3500000000', '65536']], seen
        assert [line.split() for line in seen['gid']['stdout'].strip().splitlines()] == [['0', '3500100000', '1000'],
                                                                                         ['1000', '3500200000', '64536']], seen
        assert seen['touch']['stdout'].strip() == '1000:1000', seen
        info = box.info('uns-x')['state']['userns']
        assert info['mode'] == 'private' and info['uid_map'] == [{'container_id': 0, 'host_id': 3500000000, 'size': 65536}], info
        assert box.run(**dict(BASE, name='uns-x', uidmap=uid, gidmap=gid, cap_add=['SYS_ADMIN']))['_status'] == 'ok'
        # Changing the mode recreates (check mode predicts it and changes nothing).
        predicted = box.run(check=True, **dict(BASE, name='uns-x', userns_mode='auto'))
        assert predicted['_status'] == 'changed' and 'recreated container uns-x' in predicted['actions'][0], predicted
        assert box.info('uns-x')['state']['userns']['mode'] == 'private'
        changed = box.run(**dict(BASE, name='uns-x', userns_mode='auto'))
        assert changed['actions'][0].startswith('recreated container uns-x (') and 'userns_mode' in changed['actions'][0], changed
        back = box.run(**dict(BASE, name='uns-x'))
        assert back['actions'][0].startswith('recreated container uns-x (') and 'userns_mode' in back['actions'][0], back
        assert 'userns' not in box.info('uns-x')['state']
        assert box.exec('uns-x', ['cat', '/proc/self/uid_map'])['stdout'].split() == ['0', '0', '4294967295']
    finally:
        _remove(box, ['uns-x'])


@pytest.mark.parametrize('args, text', [
    ({'uidmap': ['0:3500000000:65536', '100:3600000000:10']}, 'overlap in container ids'),
    ({'uidmap': ['0:4294000000:1000000']}, 'passes the largest id'),
    ({'uidmap': ['0:0:65536']}, 'maps host id 0'),
    ({'uidmap': ['0:2147483648:65536']}, 'overlap the pool of userns_mode auto'),
    ({'uidmap': ['0:3500000000']}, 'expected "container_id:host_id:size"'),
    ({'gidmap': ['0:3500000000:65536']}, 'give uidmap too'),
    ({'userns_mode': 'auto', 'uidmap': ['0:3500000000:65536']}, 'would contradict them'),
    ({'userns_mode': 'auto', 'privileged': True}, 'a privileged container is root of the host'),
    ({'userns_mode': 'auto', 'pid_mode': 'host'}, 'pid_mode host with a user namespace'),
])
def test_bad_maps_are_refused(box, args, text):
    res = box.run(**dict(BASE, name='uns-bad', **args))
    assert res['_status'] == 'failed' and text in res['msg'], res
    assert box.info('uns-bad') is None
    assert _ranges(box) == {}


def test_the_chown_fallback(box, shared_dir):
    """The host config's userns.rootfs chown: the rootfs's files are shifted into the range (through the overlay: copied
    up, the image's layers untouched), and the container works the same."""
    config = '/etc/nsbox/config.json'
    saved = box.sh('cat %s' % config)
    data = json.loads(saved)
    data['userns'] = dict(data.get('userns') or {}, rootfs='chown')
    box.host.ssh("cat > %s <<'EOF'\n%s\nEOF" % (config, json.dumps(data)))
    try:
        res = box.run(**dict(BASE, name='uns-chown', userns_mode='auto', volumes=['%s:/shared' % shared_dir]))
        assert res['_status'] == 'changed', res
        userns = box.info('uns-chown')['state']['userns']
        assert userns['rootfs'] == 'chown', userns
        start = _first(userns['uid_map'])
        seen = box.execs('uns-chown', {'rootfs': (['sh', '-c', 'stat -c "%u:%g" /bin/busybox / && echo x >> /etc/passwd && touch /shared/c'], {}),
                                       'setuid': (['stat', '-c', '%a', '/bin/busybox'], {})})
        assert seen['rootfs']['stdout'].split() == ['0:0', '0:0'], seen
        assert os.stat(os.path.join(shared_dir, 'c')).st_uid == start
        layers = box.sh('find %s/layers -path "*/diff/*" -uid %d | head -3' % (DATA_ROOT, start))
        assert layers == '', 'a shared layer was chowned: %s' % layers
    finally:
        _remove(box, ['uns-chown'])
        box.host.ssh("cat > %s <<'EOF'\n%s\nEOF" % (config, saved))


def test_a_bridged_container(fixtures, reaper):
    """A bridged network namespace is made by the host before the init (the host's user namespace owns it): the
    container still starts in its user namespace, gets its address, and sysfs shows its own interfaces. On a test host
    with a network namespace of its own (bridges and rules live and die there)."""
    with private_box(reaper, 'usernshost', {'busybox': fixtures.docker_archive}, netns=True) as box:
        res = box.run(**dict(BASE, name='uns-br', userns_mode='auto', network_mode='bridge'))
        assert res['_status'] == 'changed', res
        seen = box.execs('uns-br', {'addr': (['ip', '-4', '-o', 'addr', 'show', 'eth0'], {}),
                                    'sys': (['ls', '/sys/class/net'], {}), 'uid': (['cat', '/proc/self/uid_map'], {})})
        assert ' 10.77.' in seen['addr']['stdout'], seen
        assert sorted(seen['sys']['stdout'].split()) == ['eth0', 'lo'], seen
        assert int(seen['uid']['stdout'].split()[1]) >= POOL_START, seen
        assert box.run(**dict(BASE, name='uns-br', userns_mode='auto', network_mode='bridge'))['_status'] == 'ok'
        _remove(box, ['uns-br'])
        assert box.ansible.module('nsbox.runtime.network', {'name': 'nsbox0', 'state': 'absent'})['_status'] in ('changed', 'ok')


def test_the_vfs_driver(box, shared_dir, fixtures):
    """The vfs driver: its copy is the container's own, shifted in place (chown) whatever userns.rootfs says. Last in
    this file: it sets the test host up again with vfs."""
    vfs = setup(box.host, box.ansible, box.parent, {'busybox': fixtures.docker_archive}, storage_driver='vfs')
    config = '/etc/nsbox/config.json'
    saved = vfs.sh('cat %s' % config)
    probe = 'stat -c "%u:%g" /bin/busybox / && echo x >> /etc/passwd && touch /shared/v-$(hostname)'
    try:
        for method in ('auto', 'idmapped'):
            data = json.loads(saved)
            data['userns'] = dict(data.get('userns') or {}, rootfs=method)
            vfs.host.ssh("cat > %s <<'EOF'\n%s\nEOF" % (config, json.dumps(data)))
            name = 'uns-vfs-' + method
            res = vfs.run(**dict(BASE, name=name, hostname=name, userns_mode='auto', volumes=['%s:/shared' % shared_dir]))
            assert res['_status'] == 'changed', res
            userns = vfs.info(name)['state']['userns']
            assert userns['rootfs'] == 'chown', userns
            seen = vfs.exec(name, ['sh', '-c', probe])
            assert seen['rc'] == 0 and seen['stdout'].split() == ['0:0', '0:0'], seen
            assert os.stat(os.path.join(shared_dir, 'v-' + name)).st_uid == _first(userns['uid_map'])
            copy = vfs.sh('stat -c %%u %s/containers/%s/upper/bin/busybox' % (DATA_ROOT, vfs.info(name)['id']))
            assert int(copy) == _first(userns['uid_map']), copy
            _remove(vfs, [name])
    finally:
        _remove(vfs, ['uns-vfs-auto', 'uns-vfs-idmapped'])
        vfs.host.ssh("cat > %s <<'EOF'\n%s\nEOF" % (config, saved))
