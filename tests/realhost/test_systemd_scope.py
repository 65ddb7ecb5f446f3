# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A transient systemd scope (what the systemd cgroup driver makes for ad-hoc containers, D4)."""
from __future__ import annotations

import time

SCOPE = 'nsbox-test-scope.scope'


def _wait_active(host, unit, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        state = host.ssh('systemctl is-active %s' % unit, check=False).stdout.strip()
        if state == 'active' or time.monotonic() > deadline:
            return state
        time.sleep(0.5)


def test_transient_scope_in_the_cgroup_tree(realhost):
    # systemd-run --scope asks systemd over D-Bus (StartTransientUnit) and runs the command in the scope.
    realhost.ssh('systemd-run --quiet --scope --unit %s --slice nsbox-test.slice -p MemoryMax=64M -p TasksMax=16'
                 ' -p CPUQuota=50%% sleep 600 </dev/null >/dev/null 2>&1 &' % SCOPE[:-len('.scope')])
    try:
        assert _wait_active(realhost, SCOPE) == 'active'
        path = realhost.ssh('systemctl show -P ControlGroup %s' % SCOPE).stdout.strip()
        assert path == '/nsbox.slice/nsbox-test.slice/' + SCOPE
        cg = '/sys/fs/cgroup' + path
        pids = realhost.ssh('cat %s/cgroup.procs' % cg).stdout.split()
        assert len(pids) == 1
        assert realhost.ssh('cat /proc/%s/comm /proc/%s/cgroup' % (pids[0], pids[0])).stdout.split() == ['sleep', '0::' + path]
        limits = realhost.ssh('cat %s/memory.max %s/pids.max %s/cpu.max' % (cg, cg, cg)).stdout.splitlines()
        assert limits == [str(64 << 20), '16', '50000 100000']
        tree = realhost.ssh('systemd-cgls --no-pager /nsbox.slice').stdout
        assert SCOPE in tree and '%s /usr/bin/sleep 600' % pids[0] in tree, tree

        realhost.ssh('systemctl stop %s' % SCOPE)
        assert realhost.ssh('test -e %s' % cg, check=False).returncode == 1
        assert realhost.ssh('kill -0 %s' % pids[0], check=False).returncode != 0
    finally:
        realhost.ssh('systemctl stop %s 2>/dev/null' % SCOPE, check=False)
