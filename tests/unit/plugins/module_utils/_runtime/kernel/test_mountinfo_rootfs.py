# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mountinfo parsing and root filesystem specs, on captured text."""
from __future__ import annotations

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import mountinfo
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import rootfs

CAPTURED = (
    '24 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n'
    '45 24 0:39 / /tmp/a\\040b rw,relatime - overlay nsbox rw,lowerdir=l/AAA:l/BBB,upperdir=/u,workdir=/w,uuid=on\n'
    '46 24 0:40 / /srv/x rw master:3 - tmpfs one rw\n'
    '47 24 0:41 / /srv/x rw - tmpfs two rw,size=1024k\n'
    '48 24 0:42 / /srv/c rw - overlay nsbox rw,lowerdir=/a\\,b:/c\\:d,upperdir=/u,workdir=/w\n'
)


def test_parse():
    mounts = mountinfo.parse(CAPTURED)
    assert [m.mount_point for m in mounts] == ['/', '/tmp/a b', '/srv/x', '/srv/x', '/srv/c']
    assert mounts[0].propagation == ['shared:1'] and mounts[2].propagation == ['master:3']
    assert mounts[1].super_option('lowerdir') == 'l/AAA:l/BBB' and mounts[1].super_option('uuid') == 'on'
    assert mountinfo.find('/srv/x', mounts=mounts).source == 'two'  # the topmost of stacked mounts
    assert mounts[4].super_option('lowerdir') == '/a,b:/c\\:d'


def test_spec_options_escape_and_limits():
    spec = rootfs.RootfsSpec('/t', ['/a:b', '/c,d'], '/u', '/w')
    assert spec.options() == 'lowerdir=/a\\:b:/c\\,d,upperdir=/u,workdir=/w'
    assert rootfs.RootfsSpec('/t', ['l/A']).readonly
    with pytest.raises(rootfs.RootfsError, match='upper_dir and work_dir go together'):
        rootfs.RootfsSpec('/t', ['l/A'], '/u')
    with pytest.raises(rootfs.RootfsError, match='no lower directories'):
        rootfs.RootfsSpec('/t', [])


def test_status_from_mountinfo(tmp_path):
    info = tmp_path / 'mountinfo'
    info.write_text(CAPTURED)
    same = rootfs.RootfsSpec('/tmp/a b', ['l/AAA', 'l/BBB'], '/u', '/w')
    assert rootfs.Rootfs(same, str(info)).status() == 'mounted'
    other = rootfs.RootfsSpec('/tmp/a b', ['l/AAA'], '/u', '/w')
    assert rootfs.Rootfs(other, str(info)).status() == 'different'
    assert rootfs.Rootfs(rootfs.RootfsSpec('/nowhere', ['l/A']), str(info)).status() == 'unmounted'
    assert rootfs.Rootfs(rootfs.RootfsSpec('/srv/x', ['l/A']), str(info)).status() == 'different'
