# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup module on a systemd + cgroup v2 host: the systemd driver (a transient slice under nsbox.slice)."""
from __future__ import annotations

import time

SLICE_DIR = '/sys/fs/cgroup/nsbox.slice/nsbox-web.slice'


def read(host, path):
    return host.ssh('cat %s' % path).stdout.strip()


def start(host, command):
    """A process in the VM, detached from the SSH session; returns its PID."""
    return int(host.ssh("setsid sh -c '%s' </dev/null >/dev/null 2>&1 & echo $!" % command).stdout.strip())


def test_systemd_driver(realhost, realhost_ansible):
    ans = realhost_ansible
    limits = {'name': 'web', 'memory': '64m', 'cpus': 0.5, 'pids_limit': 16}
    res = ans.module('nsbox.runtime.cgroup', limits)
    assert res['_status'] == 'changed', res
    assert res['cgroup']['driver'] == 'systemd' and res['cgroup']['version'] == 'v2' and res['cgroup']['dirs'] == [SLICE_DIR]
    assert realhost.ssh('systemctl is-active nsbox-web.slice').stdout.strip() == 'active'
    assert [read(realhost, SLICE_DIR + f) for f in ('/memory.max', '/cpu.max', '/pids.max')] == [str(64 << 20), '50000 100000', '16']
    assert ans.module('nsbox.runtime.cgroup', limits)['_status'] == 'ok'

    # Processes go into a scope inside the slice; a live change keeps them; an allocation past the limit is OOM-killed.
    sleeper = start(realhost, 'exec sleep 600')
    hog = start(realhost, 'sleep 25; exec dd if=/dev/zero of=/dev/null bs=200M count=1')
    moved = ans.module('nsbox.runtime.cgroup', dict(limits, procs=[sleeper, hog]))
    assert moved['_status'] == 'changed' and sorted(moved['cgroup']['procs']) == sorted([sleeper, hog]), moved
    assert read(realhost, '/proc/%d/cgroup' % sleeper) == '0::/nsbox.slice/nsbox-web.slice/nsbox-web-%d.scope' % sleeper
    live = ans.module('nsbox.runtime.cgroup', dict(limits, memory='96m', cpus=1.5))
    assert live['_status'] == 'changed' and sorted(live['actions']) == ['set cpus: 0.5 -> 1.5', 'set memory: 67108864 -> 100663296'], live
    assert read(realhost, SLICE_DIR + '/cpu.max') == '150000 100000'
    deadline = time.monotonic() + 60
    while realhost.ssh('kill -0 %d' % hog, check=False).returncode == 0 and time.monotonic() < deadline:
        time.sleep(1)
    stats = ans.module('nsbox.runtime.cgroup', dict(limits, memory='96m', cpus=1.5))['cgroup']['stats']
    assert stats['memory']['oom_kills'] >= 1, stats
    realhost.ssh('kill -0 %d' % sleeper)  # the OOM kill ended the allocator's scope only

    gone = ans.module('nsbox.runtime.cgroup', {'name': 'web', 'state': 'absent'})
    assert gone['_status'] == 'changed', gone
    assert realhost.ssh('test -e %s' % SLICE_DIR, check=False).returncode == 1
    assert realhost.ssh('kill -0 %d' % sleeper, check=False).returncode != 0
    assert realhost.ssh('systemctl is-active nsbox-web.slice', check=False).stdout.strip() != 'active'


def test_cgroupfs_driver_on_v2(realhost, realhost_ansible):
    """cgroup_driver: cgroupfs on a systemd host: /nsbox/<name>, controllers only as far as the root already offers them."""
    ans = realhost_ansible
    cg = '/sys/fs/cgroup/nsbox/job'
    assert ans.module('nsbox.runtime.host', {'cgroup_driver': 'cgroupfs', 'install_library': False})['_status'] in ('changed', 'ok')
    try:
        res = ans.module('nsbox.runtime.cgroup', {'name': 'job', 'memory': '32m', 'pids_limit': 8})
        assert res['_status'] == 'changed' and res['cgroup']['driver'] == 'cgroupfs' and res['cgroup']['dirs'] == [cg], res
        assert [read(realhost, cg + f) for f in ('/memory.max', '/pids.max')] == [str(32 << 20), '8']
        assert 'memory' in read(realhost, '/sys/fs/cgroup/nsbox/cgroup.subtree_control').split()
        # systemd keeps cpu out of the root's subtree_control, and nsbox does not write the root on a systemd host.
        root_before = read(realhost, '/sys/fs/cgroup/cgroup.subtree_control')
        cpu = ans.module('nsbox.runtime.cgroup', {'name': 'job', 'cpus': 0.5})
        if 'cpu' not in root_before.split():
            assert cpu['_status'] == 'failed' and 'not enabled in the root cgroup' in cpu['msg'], cpu
        assert read(realhost, '/sys/fs/cgroup/cgroup.subtree_control') == root_before
        gone = ans.module('nsbox.runtime.cgroup', {'name': 'job', 'state': 'absent'})
        assert gone['_status'] == 'changed' and realhost.ssh('test -e %s' % cg, check=False).returncode == 1
    finally:
        realhost.ssh('rmdir /sys/fs/cgroup/nsbox/job /sys/fs/cgroup/nsbox 2>/dev/null; true', check=False)
