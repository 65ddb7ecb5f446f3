# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd driver's naming and D-Bus calls, with a recording stand-in for busctl (the real thing runs in the realhost lane)."""
from __future__ import annotations

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups import systemd
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import CgroupError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.resources import DeviceRule, Resources, cpu_mask
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import devices

PROC_DEVICES = 'Character devices:\n  1 mem\n136 pts\n\nBlock devices:\n  8 sd\n254 virtblk\n'


def test_names():
    assert systemd.slice_unit('nsbox.slice', ['web']) == 'nsbox-web.slice'
    assert systemd.slice_unit('nsbox.slice', ['pods', 'web-1']) == 'nsbox-pods-web\\x2d1.slice'
    assert systemd.slice_dir('nsbox-pods-web.slice') == '/nsbox.slice/nsbox-pods.slice/nsbox-pods-web.slice'
    for parent, parts in (('nsbox', ['web']), ('nsbox.slice', ['we b'])):
        with pytest.raises(CgroupError):
            systemd.slice_unit(parent, parts)


def test_masks_and_devices(tmp_path):
    assert cpu_mask('0-2,9') == bytes([0b111, 0b10])
    devs = tmp_path / 'devices'
    devs.write_text(PROC_DEVICES)
    assert systemd.device_allow(DeviceRule.parse('c 1:3 rwm'), str(devs)) == ('/dev/char/1:3', 'rwm')
    assert systemd.device_allow(DeviceRule.parse('c 136:* rw'), str(devs)) == ('char-pts', 'rw')
    assert systemd.device_allow(DeviceRule.parse('c *:* m'), str(devs)) == ('char-*', 'm')
    assert systemd.device_allow(DeviceRule.parse('b *:* m'), str(devs)) == ('block-*', 'm')
    assert systemd.device_allow(DeviceRule.parse('b 8:* r'), str(devs)) == ('block-sd', 'r')
    with pytest.raises(CgroupError, match='type c and b'):
        systemd.device_allow(DeviceRule.parse('a *:* m'), str(devs))
    with pytest.raises(CgroupError, match='one minor of every major'):
        systemd.device_allow(DeviceRule.parse('c *:3 r'), str(devs))
    with pytest.raises(CgroupError, match='no char driver with major 99'):
        systemd.device_allow(DeviceRule.parse('c 99:* r'), str(devs))
    assert systemd.device_allows([DeviceRule.parse('a *:* rwm')], str(devs)) == [('block-*', 'rwm'), ('char-*', 'rwm')]


def test_container_default_devices(tmp_path):
    """A container's standard allow list as systemd properties: wildcard majors as every driver group, the rest as nodes."""
    devs = tmp_path / 'devices'
    devs.write_text(PROC_DEVICES)
    rules = devices.cgroup_rules({})
    assert systemd.device_allows(rules, str(devs)) == sorted([
        ('char-*', 'm'), ('block-*', 'm'), ('/dev/char/1:3', 'rwm'), ('/dev/char/1:5', 'rwm'), ('/dev/char/1:7', 'rwm'),
        ('/dev/char/1:8', 'rwm'), ('/dev/char/1:9', 'rwm'), ('/dev/char/5:0', 'rwm'), ('/dev/char/5:1', 'rwm'),
        ('/dev/char/5:2', 'rwm'), ('char-pts', 'rwm'), ('/dev/char/10:200', 'rwm')])
    fuse = {'type': 'c', 'major': 10, 'minor': 229, 'permissions': 'rw'}
    assert ('/dev/char/10:229', 'rw') in systemd.device_allows(devices.cgroup_rules({'devices': [fuse]}), str(devs))
    assert systemd.device_allows(devices.cgroup_rules({'privileged': True}), str(devs)) == [('block-*', 'rwm'), ('char-*', 'rwm')]


def test_calls(tmp_path):
    calls = []

    def run(argv):
        calls.append(argv)
        if argv[0] == systemd.SYSTEMCTL:
            return 'DevicePolicy=auto\nDeviceAllow=\n'
        return '{"type":"o","data":"/org/freedesktop/systemd1/job/1"}'
    root = tmp_path / 'cg'
    root.mkdir()
    devs = tmp_path / 'devices'
    devs.write_text(PROC_DEVICES)
    mgr = systemd.SystemdManager('nsbox.slice', ['web'], str(root), run=run, proc_devices=str(devs))
    assert mgr.unit == 'nsbox-web.slice' and mgr.dirs() == [str(root / 'nsbox.slice' / 'nsbox-web.slice')]
    res = Resources.from_options({'memory': '64m', 'cpus': 0.5, 'pids_limit': -1, 'devices': ['c 1:3 rwm']})
    mgr._write(res, {k: (None, v) for k, v in res.managed().items()})  # pylint: disable=protected-access
    (call,) = calls
    assert call[:9] == [systemd.BUSCTL, 'call', '--json=short', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1',
                        'org.freedesktop.systemd1.Manager', 'SetUnitProperties', 'sba(sv)', 'nsbox-web.slice']
    assert call[9:] == ['true', '6', 'MemoryMax', 't', str(64 << 20), 'CPUQuotaPeriodUSec', 't', '100000',
                        'CPUQuotaPerSecUSec', 't', '500000', 'TasksMax', 't', str((1 << 64) - 1),
                        'DevicePolicy', 's', 'strict', 'DeviceAllow', 'a(ss)', '1', '/dev/char/1:3', 'rwm']
    assert mgr.read(Resources.from_options({'devices': ['c 1:3 rwm']})) == {'devices': []}
