# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""rootfs_overlay over SSH: an image's layers mounted as a root filesystem, in the test host's mount namespace."""
from __future__ import annotations

import json
import os
import shlex

import pytest

from harness import images

FIXTURE_CACHE = '/var/tmp/nsbox-fixture-images'
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOX = '/var/lib/nsbox/box'  # on the test host: the data-root is a real directory (an overlay upper cannot live on overlayfs)
PATHS = {'target': BOX + '/rootfs', 'upper_dir': BOX + '/upper', 'work_dir': BOX + '/work'}


@pytest.fixture
def host(fresh_host, ansible):
    yield fresh_host
    fresh_host.ssh('while grep -q " %s/" /proc/self/mountinfo; do umount %s/rootfs || break; done' % (BOX, BOX), check=False)


def load(ansible, fixtures, driver='overlay'):
    ansible.module('nsbox.runtime.host', {'storage_driver': driver, 'install_library': False})
    res = ansible.module('nsbox.runtime.image', {'name': 'localhost/nsbox/multilayer:latest', 'source': 'load',
                                                 'path': os.path.join(FIXTURE_CACHE, 'multilayer-docker.tar')})
    assert res['_status'] == 'changed', res
    return res['image']


def mounts(host, path=PATHS['target']):
    out = host.ssh('grep -F " %s " /proc/self/mountinfo || true' % path).stdout
    return [line for line in out.splitlines() if line]


def rootfs_problems(host, path=PATHS['target']):
    code = 'import sys, json; sys.path.insert(0, %r); from harness.images import check_multilayer_rootfs as c; print(json.dumps(c(%r)))' % (TESTS, path)
    return json.loads(host.ssh('python3 -c %s' % shlex.quote(code)).stdout)


def ro(ansible, check=False, diff=False, **args):
    return ansible.module('nsbox.runtime.rootfs_overlay', args, check=check, diff=diff)


def test_overlay_lifecycle(ansible, host, fixtures):
    image = load(ansible, fixtures)
    args = dict(PATHS, image='localhost/nsbox/multilayer:latest')
    predicted = ro(ansible, check=True, **args)
    assert predicted['_status'] == 'changed' and predicted['actions'] == ['mounted overlay of 4 layers on %s' % PATHS['target']]
    assert mounts(host) == []
    res = ro(ansible, diff=True, **args)
    assert res['_status'] == 'changed' and res['rootfs']['image'] == image['digest'], res
    assert res['diff']['before']['mounted'] is False and res['diff']['after']['mounted'] is True
    assert all(low.startswith('l/') for low in res['rootfs']['lowers'])
    assert len(mounts(host)) == 1 and rootfs_problems(host) == []
    assert ro(ansible, **args)['_status'] == 'ok'
    # Writes land in the upper dir; the layers stay as they were.
    host.ssh('echo hello > %s/new-file && rm %s/bin/busybox' % (PATHS['target'], PATHS['target']))
    upper = os.path.join(host.workdir, 'data-root', 'box', 'upper')
    assert open(os.path.join(upper, 'new-file')).read() == 'hello\n'
    assert os.stat(os.path.join(upper, 'bin', 'busybox')).st_rdev == 0  # an overlay whiteout
    # Something else asked at the same target: a clear error, the mount untouched.
    other = ro(ansible, **{**args, 'image': 'localhost/nsbox/busybox:latest'})
    assert other['_status'] == 'failed' and other['msg'].startswith('failed to find image localhost/nsbox/busybox:latest'), other['msg']
    # unmounted keeps the writable layer; mounting again brings the same state back.
    assert ro(ansible, check=True, state='unmounted', **PATHS)['_status'] == 'changed' and len(mounts(host)) == 1
    assert ro(ansible, state='unmounted', **PATHS)['_status'] == 'changed' and mounts(host) == []
    assert ro(ansible, state='unmounted', **PATHS)['_status'] == 'ok'
    assert ro(ansible, **args)['_status'] == 'changed'
    assert host.ssh('cat %s/new-file; test -e %s/bin/busybox || echo gone' % (PATHS['target'], PATHS['target'])).stdout == 'hello\ngone\n'
    gone = ro(ansible, state='absent', **PATHS)
    assert gone['_status'] == 'changed' and mounts(host) == [] and not os.path.exists(upper)
    assert ro(ansible, state='absent', **PATHS)['_status'] == 'ok'


def test_readonly(ansible, host, fixtures):
    load(ansible, fixtures)
    res = ro(ansible, target=PATHS['target'], image='localhost/nsbox/multilayer:latest', readonly=True)
    assert res['_status'] == 'changed', res
    assert 'Read-only file system' in host.ssh('touch %s/x' % PATHS['target'], check=False).stderr
    assert ro(ansible, target=PATHS['target'], state='absent')['_status'] == 'changed'


def test_a_different_mount_is_not_replaced(ansible, host, fixtures):
    load(ansible, fixtures)
    host.ssh('mkdir -p %s && mount -t tmpfs nsbox-test %s' % (PATHS['target'], PATHS['target']))
    res = ro(ansible, image='localhost/nsbox/multilayer:latest', **PATHS)
    assert res['_status'] == 'failed' and 'something else is mounted there (tmpfs from nsbox-test)' in res['msg'], res
    assert len(mounts(host)) == 1


def test_many_layers_fit_the_mount_option_page(ansible, host, tmp_path):
    """120 layers: their absolute paths would need ~10 KB of options; the short links fit in one page."""
    layers = [images.Layer(images.TarWriter().dir('layers').file('layers/%03d' % i, b'%d\n' % i).getvalue()) for i in range(120)]
    layout = str(tmp_path / 'oci')
    images.write_oci_layout(layout, {'many': images.Image(layers)})
    assert ansible.module('nsbox.runtime.image', {'name': 'localhost/many:1', 'source': 'load', 'path': layout})['_status'] == 'changed'
    res = ro(ansible, image='localhost/many:1', **PATHS)
    assert res['_status'] == 'changed' and len(res['rootfs']['lowers']) == 120, res
    assert host.ssh('ls %s/layers | wc -l; cat %s/layers/000 %s/layers/119' % ((PATHS['target'],) * 3)).stdout.split() == ['120', '0', '119']
    assert ro(ansible, image='localhost/many:1', **PATHS)['_status'] == 'ok'


def test_vfs_driver(ansible, host, fixtures):
    load(ansible, fixtures, driver='vfs')
    args = dict(PATHS, image='localhost/nsbox/multilayer:latest')
    res = ro(ansible, **args)
    assert res['_status'] == 'changed' and res['rootfs']['driver'] == 'vfs' and 'bind-mounted' in res['actions'][0], res
    assert rootfs_problems(host) == []
    assert ro(ansible, **args)['_status'] == 'ok'
    host.ssh('echo kept > %s/mine' % PATHS['target'])
    assert ro(ansible, state='unmounted', **PATHS)['_status'] == 'changed'
    assert ro(ansible, **args)['_status'] == 'changed'  # the copy is not made again: the file is still there
    assert host.ssh('cat %s/mine' % PATHS['target']).stdout == 'kept\n'
    assert ro(ansible, state='absent', **PATHS)['_status'] == 'changed' and mounts(host) == []


@pytest.mark.parametrize('args, message', [
    ({'image': 'localhost/nowhere:1'}, 'failed to find image localhost/nowhere:1: it is not in the store'),
    ({'lower_dirs': ['/nonexistent/dir']}, 'failed to assemble the root filesystem for %s: the lower directory /nonexistent/dir does not exist'
     % PATHS['target']),
    ({'image': 'Bad Name'}, "failed to find image 'Bad Name'"),
])
def test_bad_input(ansible, host, args, message):
    res = ro(ansible, **dict(PATHS, **args))
    assert res['_status'] == 'failed' and res['msg'].startswith(message), res['msg']
    assert mounts(host) == [] and not os.path.exists(os.path.join(host.workdir, 'data-root', 'box'))


def test_prune_keeps_the_layers_of_a_mounted_rootfs(ansible, host, fixtures):
    load(ansible, fixtures)
    assert ro(ansible, image='localhost/nsbox/multilayer:latest', **PATHS)['_status'] == 'changed'
    layers = os.path.join(host.workdir, 'data-root', 'layers')
    before = sorted(os.listdir(layers))
    gone = ansible.module('nsbox.runtime.image', {'name': 'localhost/nsbox/multilayer:latest', 'state': 'absent', 'prune': True})
    assert gone['_status'] == 'changed' and sorted(os.listdir(layers)) == before, gone
    assert rootfs_problems(host) == []
    assert ro(ansible, state='unmounted', **PATHS)['_status'] == 'changed'
    ansible.module('nsbox.runtime.image', {'name': 'localhost/nsbox/multilayer:latest', 'state': 'absent', 'prune': True})
    assert os.listdir(layers) == ['l'] and os.listdir(os.path.join(layers, 'l')) == []
