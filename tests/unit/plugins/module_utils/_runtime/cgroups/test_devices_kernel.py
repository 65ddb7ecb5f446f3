# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup v2 device program (cgroups/devices.py) as the kernel sees it: bpf(2) calls through the fake."""
from __future__ import annotations

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups import devices
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.resources import DeviceRule
from ansible_collections.nsbox.runtime.tests.unit.plugins.module_utils._runtime.fakekernel import FakeKernel

RULES = [DeviceRule.parse('c 1:3 rwm'), DeviceRule.parse('c 5:* rw')]


def test_apply_rules_attaches_the_new_program_before_detaching_the_old(tmp_path):
    """Never a moment without a filter: load, attach, then detach nsbox's older program (another tool's stays)."""
    kernel = FakeKernel()
    kernel.bpf_attached = {7: 'nsbox_0123abcde', 9: 'systemd_dev'}
    devices.apply_rules(str(tmp_path), RULES, kernel)
    cg = 'the device programs of cgroup %s' % tmp_path
    assert kernel.calls == [
        ('bpf', devices.BPF_PROG_QUERY, cg),
        ('bpf', devices.BPF_PROG_GET_FD_BY_ID, 'program 7'), ('bpf', devices.BPF_OBJ_GET_INFO_BY_FD, 'program 7'),
        ('bpf', devices.BPF_PROG_GET_FD_BY_ID, 'program 9'), ('bpf', devices.BPF_OBJ_GET_INFO_BY_FD, 'program 9'),
        ('bpf', devices.BPF_PROG_LOAD, 'a cgroup device program'),
        ('bpf', devices.BPF_PROG_ATTACH, 'the device program to cgroup %s' % tmp_path),
        ('bpf', devices.BPF_PROG_GET_FD_BY_ID, 'program 7'),
        ('bpf', devices.BPF_PROG_DETACH, 'program 7 from cgroup %s' % tmp_path),
    ]


def test_a_refused_attach_detaches_nothing(tmp_path):
    kernel = FakeKernel()
    kernel.bpf_attached = {7: 'nsbox_0123abcde'}
    kernel.fail('bpf', 1, nth=5)  # the attach (EPERM)
    try:
        devices.apply_rules(str(tmp_path), RULES, kernel)
    except devices.CgroupError as exc:
        assert 'attach the device program' in exc.message
    else:
        raise AssertionError('no error')
    assert kernel.calls[-1] == ('bpf', devices.BPF_PROG_ATTACH, 'the device program to cgroup %s' % tmp_path)


def test_attached_rules_reads_back_the_program(tmp_path):
    kernel = FakeKernel()
    kernel.bpf_attached = {3: devices.rules_name(RULES)}
    assert devices.attached_rules(str(tmp_path), RULES, kernel) == RULES
    assert devices.attached_rules(str(tmp_path), RULES[:1], kernel) == [devices.rules_name(RULES)]
