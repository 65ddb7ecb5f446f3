# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A cgroup with memory, cpu and pids limits on a real systemd + cgroup v2 host.

TO BE REPLACED by the cgroup layer (issue 5): until it exists, the cgroup is made with plain
file writes over SSH. It is made the way D4 allows on a systemd host: inside a unit's own
delegated cgroup (``Delegate=yes`` under ``nsbox.slice``), never through the root cgroup's
``subtree_control`` (systemd enables only memory and pids there by default).
"""
from __future__ import annotations

import pytest

UNIT = 'nsbox-test-cgroup.service'
CGROUP = '/sys/fs/cgroup/nsbox.slice/nsbox-test.slice/%s' % UNIT


@pytest.fixture
def delegated(realhost):
    """A transient service with a delegated cgroup; stopping it kills and removes the whole subtree."""
    realhost.ssh('systemd-run --quiet --unit %s --slice nsbox-test.slice -p Delegate=yes sleep infinity' % UNIT)
    try:
        yield CGROUP
    finally:
        realhost.ssh('systemctl stop %s; systemctl reset-failed %s 2>/dev/null' % (UNIT, UNIT), check=False)


def _read(host, path):
    return host.ssh('cat %s' % path).stdout.strip()


def test_cgroup_with_memory_cpu_pids_limits(realhost, delegated):
    cg = delegated
    assert '/sys/fs/cgroup' + realhost.ssh('systemctl show -P ControlGroup %s' % UNIT).stdout.strip() == cg
    assert {'cpu', 'memory', 'pids'} <= set(_read(realhost, cg + '/cgroup.controllers').split())
    # No internal processes: the unit's own process moves to a leaf, then the children get controllers.
    realhost.ssh('set -e; cd %s; mkdir supervisor ctr; for p in $(cat cgroup.procs); do echo $p > supervisor/cgroup.procs; done;'
                 ' echo "+cpu +memory +pids" > cgroup.subtree_control;'
                 ' echo 64M > ctr/memory.max; echo "50000 100000" > ctr/cpu.max; echo 8 > ctr/pids.max' % cg)
    assert _read(realhost, cg + '/ctr/memory.max') == str(64 << 20)
    assert _read(realhost, cg + '/ctr/cpu.max') == '50000 100000'
    assert _read(realhost, cg + '/ctr/pids.max') == '8'

    pid = realhost.ssh('sleep 600 </dev/null >/dev/null 2>&1 & echo $! > %s/ctr/cgroup.procs; echo $!' % cg).stdout.strip()
    assert _read(realhost, '/proc/%s/cgroup' % pid) == '0::' + cg[len('/sys/fs/cgroup'):] + '/ctr'

    # The limits hold: forks stop at pids.max, and an allocation past memory.max is OOM-killed.
    realhost.ssh("sh -c 'echo $$ > %s/ctr/cgroup.procs; for i in $(seq 12); do sleep 600 & done' >/dev/null 2>&1; true" % cg)
    assert int(_read(realhost, cg + '/ctr/pids.current')) <= 8
    assert int(_read(realhost, cg + '/ctr/pids.events').split()[1]) > 0
    oom = realhost.ssh("sh -c 'echo $$ > %s/ctr/cgroup.procs; exec dd if=/dev/zero of=/dev/null bs=200M count=1'" % cg, check=False)
    assert oom.returncode != 0, oom
    events = dict(line.split() for line in _read(realhost, cg + '/ctr/memory.events').splitlines())
    assert int(events['oom_kill']) >= 1, events
    realhost.ssh('kill -0 %s' % pid)  # the OOM kill took the allocator, not the rest of the cgroup

    realhost.ssh('systemctl stop %s' % UNIT)
    assert realhost.ssh('test -e %s' % cg, check=False).returncode == 1, 'the delegated subtree outlived its unit'
    assert realhost.ssh('kill -0 %s' % pid, check=False).returncode != 0
