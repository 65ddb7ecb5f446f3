# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import hostinfo
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import SyscallError

PROC_CGROUPS_HYBRID = """#subsys_name\thierarchy\tnum_cgroups\tenabled
cpuset\t4\t1\t1
cpu\t2\t1\t1
memory\t5\t12\t1
hugetlb\t0\t1\t1
pids\t9\t3\t1
rdma\t0\t1\t0
"""


def fake_fs(types):
    def fs_type(path):
        if path not in types:
            raise SyscallError('statfs', path, 'No such file or directory')
        return types[path]
    return fs_type


@pytest.mark.parametrize('types, layout', [
    ({'/c': 'cgroup2'}, 'v2'),
    ({'/c': 'tmpfs', '/c/unified': 'cgroup2'}, 'hybrid'),
    ({'/c': 'tmpfs'}, 'v1'),
    ({}, 'none'),
])
def test_cgroup_layout(tmp_path, types, layout):
    (tmp_path / 'unified').mkdir()
    mapped = {p.replace('/c', str(tmp_path)): t for p, t in types.items()}
    assert hostinfo.cgroup_layout(str(tmp_path), fake_fs(mapped)) == layout


def test_v1_controllers_skip_unmounted_and_disabled(tmp_path):
    (tmp_path / 'cgroups').write_text(PROC_CGROUPS_HYBRID)
    assert hostinfo.v1_controllers(str(tmp_path)) == ['cpu', 'cpuset', 'memory', 'pids']


def test_v2_controllers(tmp_path):
    (tmp_path / 'cgroup.controllers').write_text('cpuset cpu io memory hugetlb pids\n')
    assert hostinfo.v2_controllers(str(tmp_path)) == ['cpu', 'cpuset', 'hugetlb', 'io', 'memory', 'pids']


@pytest.mark.parametrize('backing, overlay, usable', [
    ('ext4', True, True), ('xfs', True, True), ('overlay', True, False), ('ext4', False, False), ('zfs', True, False),
])
def test_storage_check(tmp_path, backing, overlay, usable):
    res = hostinfo.storage_check(str(tmp_path / 'not' / 'yet'), overlay, fake_fs({str(tmp_path): backing}))
    assert res['backing_fs'] == backing and res['overlay_usable'] is usable
    assert res['drivers'] == (['overlay', 'vfs'] if usable else ['vfs'])
    assert (res['reason'] is None) is usable


def test_filesystems(tmp_path):
    (tmp_path / 'filesystems').write_text('nodev\tsysfs\nnodev\toverlay\n\text4\n')
    assert hostinfo.filesystems(str(tmp_path)) == ['ext4', 'overlay', 'sysfs']
