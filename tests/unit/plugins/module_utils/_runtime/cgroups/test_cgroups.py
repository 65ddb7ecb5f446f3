# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Cgroup logic on captured trees: option parsing, layout detection, plans and writes, the device program."""
from __future__ import annotations

import struct

import pytest
from hypothesis import given, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups import devices, layout, manager, v1, v2
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.mapping import blkio_to_io_weight, shares_to_weight
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.resources import DeviceRule, Resources
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import errors
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, NsboxError

HYBRID_MOUNTINFO = '''\
25 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
26 25 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec shared:8 - tmpfs tmpfs rw,mode=755
27 26 0:24 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw
28 26 0:25 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
29 26 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:11 - cgroup cgroup rw,cpu,cpuacct
30 26 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:12 - cgroup cgroup rw,memory
31 26 0:28 / /sys/fs/cgroup/with\\040space rw - cgroup cgroup rw,pids
'''


def test_mountinfo_and_hybrid_layout(tmp_path):
    info = tmp_path / 'mountinfo'
    info.write_text(HYBRID_MOUNTINFO)
    lay = layout.Layout.detect('/sys/fs/cgroup', str(info), fs_type=lambda p: 'tmpfs')
    assert lay.mode == 'hybrid' and lay.unified == '/sys/fs/cgroup/unified'
    assert lay.v1 == {'cpu': '/sys/fs/cgroup/cpu,cpuacct', 'cpuacct': '/sys/fs/cgroup/cpu,cpuacct', 'memory': '/sys/fs/cgroup/memory',
                      'pids': '/sys/fs/cgroup/with space'}
    assert layout.Layout.detect('/sys/fs/cgroup', str(info), fs_type=lambda p: 'cgroup2').mode == 'v2'


def test_driver_and_parent():
    assert layout.resolve_driver('auto', 'v2', True) == 'systemd'
    assert layout.resolve_driver('auto', 'hybrid', True) == 'cgroupfs'
    assert layout.resolve_driver('auto', 'v2', False) == 'cgroupfs'
    assert layout.default_parent('systemd') == 'nsbox.slice' and layout.default_parent('cgroupfs') == '/nsbox'
    assert layout.clean_path('nsbox//web/') == '/nsbox/web'
    for bad in ('', '/', '../x', 'a/../../b'):
        with pytest.raises(errors.CgroupError):
            layout.clean_path(bad)


def test_resources_parse():
    res = Resources.from_options({'memory': '512m', 'cpus': 1.5, 'pids_limit': 0, 'devices': ['c 1:3 rwm', 'a m'], 'cpuset_cpus': '0-1, 3'})
    assert res.memory == 512 << 20 and res.cpu_quota == 150000 and res.cpu_period == 100000 and res.pids_limit == -1
    assert [str(d) for d in res.devices] == ['c 1:3 rwm', 'a *:* m'] and res.cpuset_cpus == '0-1,3'
    assert Resources.from_options({'memory': '100000001'}).memory % 4096 == 0
    assert Resources.from_options({}).managed() == {}
    with pytest.raises(ConfigError, match='unknown settings: colour'):
        Resources.from_options({'colour': 'blue'})
    with pytest.raises(ConfigError, match='cannot be below memory'):
        Resources.from_options({'memory': '1g', 'memory_swap': '512m'})


def test_conversions_match_runc():
    assert shares_to_weight(2) == 1 and shares_to_weight(1024) == 39 and shares_to_weight(262144) == 10000
    assert blkio_to_io_weight(10) == 1 and blkio_to_io_weight(500) == 4950 and blkio_to_io_weight(1000) == 10000


OPTION_VALUES = st.one_of(st.none(), st.text(max_size=10), st.integers(min_value=-10, max_value=1 << 40), st.floats(allow_nan=True),
                          st.booleans(), st.lists(st.text(max_size=12), max_size=3))


@given(st.dictionaries(st.sampled_from(Resources.FIELDS), OPTION_VALUES, max_size=5))
def test_random_options_parse_or_fail_cleanly(opts):
    try:
        Resources.from_options(opts)
    except NsboxError as exc:
        assert exc.message.startswith('failed to ')


def fake_v2_tree(root, controllers='cpu memory pids io cpuset'):
    (root / 'cgroup.controllers').write_text(controllers + '\n')
    (root / 'cgroup.subtree_control').write_text('')
    return root


def test_v2_plan_and_write_on_a_captured_tree(tmp_path):
    root = fake_v2_tree(tmp_path)
    mgr = v2.CgroupV2Manager('/nsbox/web', str(root), may_enable_root=True)
    res = Resources.from_options({'memory': '64m', 'cpus': 0.5, 'pids_limit': 10})
    assert set(mgr.plan(res)) == {'memory', 'cpus', 'cpu_period', 'pids_limit'}
    mgr.create()
    cg = root / 'nsbox' / 'web'
    (root / 'nsbox' / 'cgroup.controllers').write_text('cpu memory pids io cpuset\n')
    (root / 'nsbox' / 'cgroup.subtree_control').write_text('')
    for name, value in (('cgroup.controllers', 'cpu memory pids\n'), ('memory.max', 'max\n'), ('cpu.max', 'max 100000\n'), ('pids.max', 'max\n')):
        (cg / name).write_text(value)
    mgr._write(res, mgr.plan(res))  # pylint: disable=protected-access
    assert (cg / 'memory.max').read_text() == str(64 << 20) and (cg / 'cpu.max').read_text() == '50000 100000' and (cg / 'pids.max').read_text() == '10'
    assert (root / 'cgroup.subtree_control').read_text() == '+cpu +memory +pids'
    assert mgr.plan(res) == {}


def test_v2_never_writes_the_root_unless_allowed(tmp_path):
    root = fake_v2_tree(tmp_path)
    mgr = v2.CgroupV2Manager('/web', str(root), may_enable_root=False)
    with pytest.raises(errors.CgroupError, match='not enabled in the root cgroup'):
        mgr.enable_controllers({'memory'})
    assert (root / 'cgroup.subtree_control').read_text() == ''
    with pytest.raises(errors.CgroupError, match='does not offer them'):
        v2.CgroupV2Manager('/web', str(root), may_enable_root=True).enable_controllers({'hugetlb'})


def test_v1_reads_unlimited_and_orders_memsw(tmp_path):
    lay = layout.Layout('v1', v1={'memory': str(tmp_path / 'memory')})
    d = tmp_path / 'memory' / 'box'
    d.mkdir(parents=True)
    writes = []
    (d / 'memory.limit_in_bytes').write_text('9223372036854771712\n')
    (d / 'memory.memsw.limit_in_bytes').write_text(str(64 << 20))
    mgr = v1.CgroupV1Manager('/box', lay)
    res = Resources.from_options({'memory': '128m', 'memory_swap': '256m'})
    assert mgr.read(res) == {'memory': -1, 'memory_swap': 64 << 20}
    orig = manager.write_text
    manager.write_text = lambda path, value: (writes.append(path.rsplit('/', 1)[1]), orig(path, value))
    try:
        mgr._write(res, mgr.plan(res))  # pylint: disable=protected-access
    finally:
        manager.write_text = orig
    assert writes == ['memory.memsw.limit_in_bytes', 'memory.limit_in_bytes']  # raising past memsw: memsw first


def test_device_program_shape():
    rules = [DeviceRule.parse('c 1:3 rwm'), DeviceRule.parse('b 8:* r'), DeviceRule.parse('a *:* m')]
    code = devices.program(rules)
    insns = [struct.unpack('<BBhi', code[i:i + 8]) for i in range(0, len(code), 8)]
    assert insns[-1][0] == 0x95 and insns[-2] == (0xb7, 0, 0, 0)  # default: deny
    exits = [i for i, ins in enumerate(insns) if ins[0] == 0x95]
    assert len(exits) == len(rules) + 1
    for i, (op, _regs, off, _imm) in enumerate(insns):
        if op == 0x55:  # every "next rule" jump lands just after an exit: the start of the next block
            assert insns[i + off][0] == 0x95 and i + off in exits
    assert devices.rules_name(rules).startswith('nsbox_') and len(devices.rules_name(rules)) <= 15
