# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image and image_info modules over SSH, against real registries and archives."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading

import pytest

from harness import images
from harness.registry import Registry

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope='module')
def registries(fixtures):
    """Three registries holding busybox (2-platform index) and multilayer: anonymous, basic, token."""
    regs = {}
    try:
        for auth in (None, 'basic', 'token'):
            reg = regs[auth or 'anon'] = Registry(auth=auth)
            reg.start()
            for name in ('busybox', 'multilayer'):
                images.push(reg, fixtures.ref(name), 'nsbox/%s' % name, 'latest', creds=reg.creds)
        yield regs
    finally:
        for reg in regs.values():
            reg.stop()


def data_root(host):
    return os.path.join(host.workdir, 'data-root')


def index_on_disk(host):
    with open(os.path.join(data_root(host), 'images', 'index.json')) as f:
        return json.load(f)


def test_pull_index_then_unchanged_then_info(ansible, fresh_host, registries, fixtures):
    reg = registries['anon']
    ref = '%s/nsbox/busybox:latest' % reg.host
    first = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True}, diff=True)
    assert first['_status'] == 'changed', first
    assert first['image']['digest'] == fixtures.digests['busybox-amd64']
    assert first['image']['platform'] == 'linux/amd64'
    assert first['diff']['after'] == {ref: fixtures.digests['busybox-amd64']}
    again = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})
    assert again['_status'] == 'ok' and again['actions'] == []
    info = ansible.module('nsbox.runtime.image_info', {'name': [ref]})
    assert [i['digest'] for i in info['images']] == [fixtures.digests['busybox-amd64']]
    assert info['images'][0]['references'] == [ref]
    assert info['images'][0]['config']['Cmd'] == ['/bin/sh']
    # The unpacked layer is the busybox rootfs, ready as an overlay lower dir.
    rec = index_on_disk(fresh_host)['images'][first['image']['digest']]
    diff = os.path.join(data_root(fresh_host), 'layers', rec['layers'][0]['chain_id'].split(':')[1], 'diff')
    assert os.path.islink(os.path.join(diff, 'bin', 'sh')) and os.path.isfile(os.path.join(diff, 'bin', 'busybox'))
    assert rec['layers'][0]['diff_id'] == fixtures.busybox_diff_id


def test_check_mode_predicts_and_writes_nothing(ansible, fresh_host, registries):
    ref = '%s/nsbox/busybox:latest' % registries['anon'].host
    res = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True}, check=True)
    assert res['_status'] == 'changed' and res['actions'][0].startswith('would fetch')
    assert os.listdir(data_root(fresh_host)) == []


def test_platform_and_digest(ansible, fresh_host, registries, fixtures):
    reg = registries['anon']
    arm = ansible.module('nsbox.runtime.image', {'name': '%s/nsbox/busybox:latest' % reg.host, 'insecure': True, 'platform': 'linux/arm64'})
    assert arm['image']['digest'] == fixtures.digests['busybox-arm64'] and arm['image']['platform'] == 'linux/arm64/v8'
    by_digest = '%s/nsbox/busybox@%s' % (reg.host, fixtures.digests['busybox-amd64'])
    res = ansible.module('nsbox.runtime.image', {'name': by_digest, 'insecure': True})
    assert res['_status'] == 'changed' and res['image']['digest'] == fixtures.digests['busybox-amd64']
    bad = ansible.module('nsbox.runtime.image', {'name': '%s/nsbox/busybox:latest' % reg.host, 'insecure': True, 'platform': 'linux/s390x'})
    assert bad['_status'] == 'failed' and 'the index offers only: linux/amd64, linux/arm64/v8' in bad['msg']


@pytest.mark.parametrize('kind', ['basic', 'token'])
def test_pull_with_auth(ansible, fresh_host, registries, fixtures, kind):
    reg = registries[kind]
    ref = '%s/nsbox/busybox:latest' % reg.host
    denied = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})
    assert denied['_status'] == 'failed' and 'failed to ' in denied['msg'], denied
    wrong = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True, 'auth': {'username': reg.username, 'password': 'wrong'}})
    assert wrong['_status'] == 'failed'
    ok = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True, 'auth': {'username': reg.username, 'password': reg.password}})
    assert ok['_status'] == 'changed' and ok['image']['digest'] == fixtures.digests['busybox-amd64']
    assert os.listdir(os.path.join(data_root(fresh_host), 'tmp')) == []


@pytest.mark.parametrize('attr, name', [
    ('docker_archive', 'localhost/loaded:classic'),
    ('docker_archive_oci', 'localhost/loaded:oci-in-docker'),
    ('oci_archive', 'localhost/loaded:oci-archive'),
    ('oci_dir', 'localhost/loaded:layout'),
])
def test_load(ansible, fresh_host, fixtures, attr, name):
    path = getattr(fixtures, attr)
    args = {'name': name, 'source': 'load', 'path': path}
    if attr == 'oci_dir':
        args['name'] = 'busybox'  # picks the layout's "busybox" ref (an index)
    res = ansible.module('nsbox.runtime.image', args)
    assert res['_status'] == 'changed', res
    assert ansible.module('nsbox.runtime.image', args)['_status'] == 'ok'
    info = ansible.module('nsbox.runtime.image_info')
    assert info['images'][0]['config']['Cmd'] == ['/bin/sh']


def test_import_rootfs(ansible, fresh_host, fixtures):
    args = {'name': 'localhost/imported:1', 'source': 'import', 'path': fixtures.busybox_tar,
            'config': {'cmd': ['/bin/sh', '-c', 'echo hi'], 'env': ['A=1'], 'workdir': '/tmp'}}
    res = ansible.module('nsbox.runtime.image', args)
    assert res['_status'] == 'changed', res
    assert res['image']['config'] == {'Cmd': ['/bin/sh', '-c', 'echo hi'], 'Env': ['A=1'], 'WorkingDir': '/tmp'}
    assert ansible.module('nsbox.runtime.image', args)['_status'] == 'ok'
    changed = ansible.module('nsbox.runtime.image', dict(args, config={'cmd': ['/bin/true']}))
    assert changed['_status'] == 'changed' and changed['image']['id'] != res['image']['id']


def test_absent_and_prune(ansible, fresh_host, registries):
    ref = '%s/nsbox/multilayer:latest' % registries['anon'].host
    ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})
    root = data_root(fresh_host)
    assert len(os.listdir(os.path.join(root, 'layers'))) == 5  # 4 layers + l/
    check = ansible.module('nsbox.runtime.image', {'name': ref, 'state': 'absent', 'prune': True}, check=True)
    assert check['_status'] == 'changed' and len(os.listdir(os.path.join(root, 'layers'))) == 5
    gone = ansible.module('nsbox.runtime.image', {'name': ref, 'state': 'absent', 'prune': True})
    assert gone['_status'] == 'changed'
    assert os.listdir(os.path.join(root, 'layers')) == ['l'] and os.listdir(os.path.join(root, 'layers', 'l')) == []
    assert os.listdir(os.path.join(root, 'blobs', 'sha256')) == []
    assert ansible.module('nsbox.runtime.image', {'name': ref, 'state': 'absent', 'prune': True})['_status'] == 'ok'


def _overlay_problems(lowers):
    """Mount the layers as overlay lowers in a private mount namespace and check the merged tree."""
    mnt = '/tmp/nsbox-merge-%d' % os.getpid()
    os.makedirs(mnt, exist_ok=True)
    try:
        code = 'import sys, json; sys.path.insert(0, %r); from harness.images import check_multilayer_rootfs as c; print(json.dumps(c(%r)))' % (TESTS, mnt)
        out = subprocess.run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c',
                              'mount -t overlay nsbox-test -o lowerdir=%s %s && exec %s -c "$0"' % (':'.join(lowers), mnt, sys.executable), code],
                             capture_output=True, text=True, check=True)
        return json.loads(out.stdout)
    finally:
        os.rmdir(mnt)


@pytest.mark.parametrize('driver', ['overlay', 'vfs'])
def test_multilayer_tree_matches_umoci(ansible, fresh_host, registries, driver):
    """Whiteouts, opaque dirs, hardlinks, symlinks, modes and owners come out as umoci unpacks them."""
    ansible.module('nsbox.runtime.host', {'storage_driver': driver, 'install_library': False})
    ref = '%s/nsbox/multilayer:latest' % registries['anon'].host
    res = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})
    assert res['_status'] == 'changed', res
    rec = index_on_disk(fresh_host)['images'][res['image']['digest']]
    diffs = [os.path.join(data_root(fresh_host), 'layers', lay['chain_id'].split(':')[1], 'diff') for lay in rec['layers']]
    if driver == 'vfs':
        assert images.check_multilayer_rootfs(diffs[-1]) == []
    else:
        assert _overlay_problems(list(reversed(diffs))) == []


def test_two_pulls_at_once(ansible, fresh_host, registries):
    """Both succeed and the store holds one copy of each layer and blob."""
    ref = '%s/nsbox/multilayer:latest' % registries['anon'].host
    results = []
    threads = [threading.Thread(target=lambda: results.append(ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})))
               for _i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r['_status'] for r in results if r['_status'] == 'failed'] == [], results
    digests = {r['image']['digest'] for r in results}
    assert len(digests) == 1
    root = data_root(fresh_host)
    assert len(os.listdir(os.path.join(root, 'layers'))) == 5 and len(os.listdir(os.path.join(root, 'layers', 'l'))) == 4
    assert os.listdir(os.path.join(root, 'tmp')) == []
    assert ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})['_status'] == 'ok'


@pytest.fixture(scope='module')
def big_image(registries, fixtures, tmp_path_factory):
    """busybox plus a 96 MiB layer, in the anonymous registry: big enough to catch a pull mid-way."""
    big = images.TarWriter().file('big.bin', os.urandom(96 << 20)).getvalue()
    with open(fixtures.busybox_tar, 'rb') as f:
        image = images.Image([images.Layer(f.read()), images.Layer(big, compress=False)])
    layout = str(tmp_path_factory.mktemp('big') / 'oci')
    images.write_oci_layout(layout, {'big': image})
    reg = registries['anon']
    images.push(reg, '%s:big' % layout, 'nsbox/big', 'latest')
    return '%s/nsbox/big:latest' % reg.host


def _stage_holder(host):
    """Pid of the test host's process that has a staging dir of its store open (a pull in progress), or None."""
    tmp = '/var/lib/nsbox/tmp'  # as the test host's mount namespace sees it
    for pid in filter(str.isdigit, os.listdir('/proc')):
        try:
            if os.readlink('/proc/%s/ns/mnt' % pid) != host.mnt_ns:
                continue
            for fd in os.listdir('/proc/%s/fd' % pid):
                if os.readlink('/proc/%s/fd/%s' % (pid, fd)).startswith(tmp + '/stage-'):
                    return int(pid)
        except OSError:
            continue
    return None


def test_kill_9_mid_pull_then_rerun(ansible, fresh_host, big_image):
    """A pull killed with SIGKILL leaves nothing half-visible; the next run cleans up and completes."""
    ref = big_image
    root = data_root(fresh_host)
    ansible.module('nsbox.runtime.host', {'install_library': False})
    result = []
    # The killed module never removes its AnsiballZ payload dir: TMPDIR puts it in one of this test's own.
    payload_tmp = tempfile.mkdtemp(prefix='nsb-killpull-')
    task = {'name': 'pull', 'nsbox.runtime.image': {'name': ref, 'insecure': True}, 'environment': {'TMPDIR': payload_tmp}}
    pull = threading.Thread(target=lambda: result.append(ansible.tasks([task]).task('pull')))
    pull.start()
    killed = None
    try:
        while pull.is_alive() and killed is None:
            pid = _stage_holder(fresh_host)
            if pid:
                os.kill(pid, 9)  # the module's process on the test host, started by this test's play
                killed = pid
    finally:
        pull.join()
        left = os.listdir(payload_tmp)
        shutil.rmtree(payload_tmp)
    assert [n for n in left if n.startswith('ansible_nsbox.runtime.image_payload_')], left  # where the payload went
    assert killed, 'the pull finished before it could be killed: %s' % result
    assert result[0]['_status'] == 'failed'
    assert os.listdir(os.path.join(root, 'tmp')), 'the killed pull left its staging dir (to be cleaned by the next run)'
    assert not os.path.exists(os.path.join(root, 'images', 'index.json')) or ref not in index_on_disk(fresh_host)['references']
    again = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})
    assert again['_status'] == 'changed', again
    assert os.listdir(os.path.join(root, 'tmp')) == []
    rec = index_on_disk(fresh_host)['images'][again['image']['digest']]
    big_layer = os.path.join(root, 'layers', rec['layers'][1]['chain_id'].split(':')[1], 'diff', 'big.bin')
    assert os.path.getsize(big_layer) == 96 << 20


def _requests_logged(reg, what):
    """Requests the registry logged whose line mentions ``what`` (its access log: one line each)."""
    with open(reg.log_path, 'rb') as f:
        return sum(1 for line in f if b'"GET ' in line and what.encode() in line)


def test_unchanged_pull_makes_one_manifest_request(ansible, fresh_host, registries):
    reg = registries['anon']
    ref = '%s/nsbox/busybox:latest' % reg.host
    assert ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})['_status'] == 'changed'
    manifests, blobs = _requests_logged(reg, '/v2/nsbox/busybox/manifests/'), _requests_logged(reg, '/v2/nsbox/busybox/blobs/')
    assert ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})['_status'] == 'ok'
    assert _requests_logged(reg, '/v2/nsbox/busybox/manifests/') - manifests == 1
    assert _requests_logged(reg, '/v2/nsbox/busybox/blobs/') == blobs


@pytest.mark.parametrize('transport', ['docker-archive', 'oci-archive'])
def test_load_archives_made_by_skopeo(ansible, fresh_host, fixtures, tmp_path, transport):
    """Archives written by an independent client load, and give the image skopeo read."""
    path = str(tmp_path / ('img-%s.tar' % transport))
    images.skopeo('copy', fixtures.ref('multilayer'), '%s:%s:localhost/skopeo/multilayer:1' % (transport, path))
    res = ansible.module('nsbox.runtime.image', {'name': 'localhost/skopeo/multilayer:1', 'source': 'load', 'path': path})
    assert res['_status'] == 'changed', res
    assert res['image']['config']['Env'][-1] == 'NSBOX_FIXTURE=multilayer'
    rec = index_on_disk(fresh_host)['images'][res['image']['digest']]
    assert _overlay_problems([os.path.join(data_root(fresh_host), 'layers', lay['chain_id'].split(':')[1], 'diff')
                              for lay in reversed(rec['layers'])]) == []
    assert ansible.module('nsbox.runtime.image', {'name': 'localhost/skopeo/multilayer:1', 'source': 'load', 'path': path})['_status'] == 'ok'


def test_full_disk_during_pull(ansible, fresh_host, big_image):
    """A data-root on a small tmpfs that fills up: a clear error, nothing half-visible, the space freed."""
    small = '/var/lib/nsbox/small'
    fresh_host.ssh('mkdir -p %s && mount -t tmpfs -o size=48m nsbox-test-small %s' % (small, small))  # in the test host's namespace
    try:
        ansible.module('nsbox.runtime.host', {'data_root': small, 'install_library': False})
        res = ansible.module('nsbox.runtime.image', {'name': big_image, 'insecure': True, 'data_root': small})
        assert res['_status'] == 'failed' and 'No space left on device' in res['msg'], res
        assert res['msg'].startswith('failed to ')
        # The failed download and unpack are gone; whole, verified blobs and layers fetched before it
        # stay in the cache (unreferenced: prune removes them), as Docker keeps finished layers.
        assert fresh_host.ssh('ls -A %s/tmp' % small).stdout.strip() == ''
        used_kb = int(fresh_host.ssh('du -sk %s | cut -f1' % small).stdout)
        assert used_kb < 8192, 'the failed pull still holds %d KiB' % used_kb
        assert fresh_host.ssh('test -e %s/images/index.json' % small, check=False).returncode != 0
    finally:
        fresh_host.ssh('umount %s' % small, check=False)


def test_pull_through_a_mirror(ansible, fresh_host, registries, fixtures):
    """A mirror from the host config serves the pull; the image keeps its upstream name."""
    upstream = '127.0.0.1:1'  # nothing listens there: only the mirror can answer
    mirror = registries['anon'].host
    ansible.module('nsbox.runtime.host', {'install_library': False, 'registries': {'mirrors': {upstream: [mirror]}, 'insecure': [upstream, mirror]}})
    ref = '%s/nsbox/busybox:latest' % upstream
    res = ansible.module('nsbox.runtime.image', {'name': ref})
    assert res['_status'] == 'changed', res
    assert res['image']['references'] == [ref] and res['image']['digest'] == fixtures.digests['busybox-amd64']
    assert ansible.module('nsbox.runtime.image', {'name': ref})['_status'] == 'ok'
    # Without the mirror, the upstream is unreachable: a clear error.
    ansible.module('nsbox.runtime.host', {'install_library': False, 'registries': {'mirrors': {}, 'insecure': [upstream]}})
    res = ansible.module('nsbox.runtime.image', {'name': ref})
    assert res['_status'] == 'failed' and res['msg'].startswith('failed to reach registry 127.0.0.1:1'), res


def test_a_prune_loop_during_pulls_leaves_no_broken_image(ansible, fresh_host, registries):
    """Issue 19 item 2: with prunes running all the time, a pull reported changed used to record an image that
    lacked layers and blobs. Each pull here must record an image whose every part is in the store."""
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.store import ImageStore  # the test host's store, read here
    ref = '%s/nsbox/multilayer:latest' % registries['anon'].host
    assert ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})['_status'] == 'changed'  # the store made
    store = ImageStore(data_root(fresh_host))
    stop, prunes, errors = threading.Event(), [], []

    def prune_loop():
        while not stop.is_set():
            try:
                prunes.append(store.prune())
            except Exception as exc:  # pylint: disable=broad-except
                errors.append(exc)
    for _round in range(3):
        assert ansible.module('nsbox.runtime.image', {'name': ref, 'state': 'absent'})['_status'] == 'changed'
        assert store.prune()['layers'], 'the removed image left its layers to a prune'
        loop = threading.Thread(target=prune_loop)
        loop.start()
        try:
            res = ansible.module('nsbox.runtime.image', {'name': ref, 'insecure': True})
        finally:
            stop.set()
            loop.join()
            stop.clear()
        assert res['_status'] == 'changed', res
        record = index_on_disk(fresh_host)['images'][res['image']['digest']]
        parts = [record['manifest_digest'], record['config_digest']] + [lay['digest'] for lay in record['layers']]
        missing = [d for d in parts if not store.has_blob(d)] + [lay['chain_id'] for lay in record['layers'] if not store.has_layer(lay['chain_id'])]
        assert missing == [] and len(record['layers']) == 4, 'recorded, but not in the store: %s' % missing
    assert errors == [] and len(prunes) > 3
    assert os.listdir(os.path.join(data_root(fresh_host), 'tmp')) == []
