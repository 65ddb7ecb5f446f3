# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SSH test hosts start, are reachable by Ansible, and leave nothing behind."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness import containers
from harness.runner import AnsibleRunner
from harness.testhost import TestHost


def _mountinfo():
    with open('/proc/self/mountinfo') as f:
        return f.read()


@pytest.mark.parametrize('private', [True, False])
def test_start_reach_stop_leaves_nothing(private):
    host = TestHost('h-%s' % ('private' if private else 'plain'), private=private)
    host.start()
    pid, workdir, ns = host.proc.pid, host.workdir, host.mnt_ns
    try:
        # A long-running process started over SSH: stop() must end it too (private hosts).
        host.ssh('sleep 600 >/dev/null 2>&1 &' if private else 'true')
        runner = AnsibleRunner([host])
        try:
            res = runner.module('ansible.builtin.command', {'cmd': 'hostname'})
            assert res['_status'] == 'changed' and res['rc'] == 0, res
        finally:
            runner.close()
        if private:
            assert ' /etc ' in host.ssh('cat /proc/self/mountinfo').stdout
            assert workdir not in _mountinfo()  # its mounts are invisible to the machine
    finally:
        # Its processes, known before it stops: a namespace's inode number is reused at once by the next namespace
        # made on the machine (a parallel test), so after stop() the number alone may name another's.
        inside = host._namespace_pids() if ns else []  # pylint: disable=protected-access
        host.stop()
    assert not os.path.exists('/proc/%d' % pid)
    assert not os.path.exists(workdir)
    if ns:
        assert inside, 'no process in the host\'s namespace before stop()'
        left = [p for p in inside if _ns_of(p) == ns]
        assert left == []
    assert not subprocess.run(['pgrep', '-f', workdir], capture_output=True, check=False).stdout


def _ns_of(pid):
    try:
        return os.readlink('/proc/%s/ns/mnt' % pid)
    except OSError:
        return None


def test_start_failure_cleans_up(monkeypatch):
    """An sshd that cannot start is reported with its log, and its files are gone."""
    monkeypatch.setattr('harness.testhost.SSHD', '/bin/false')
    host = TestHost('h-broken', private=False)
    with pytest.raises(RuntimeError, match='exited'):
        host.start()
    assert not os.path.exists(host.workdir)


# -- hermetic: the machine's own nsbox is neither seen nor counted nor touched --------------------
MACHINE_NSBOX = ('mkdir -p /etc/nsbox /usr/local/lib/nsbox /run/nsbox/containers/c1 /var/lib/nsbox-machine/containers/c1/merged && '
                 'echo \'{"data_root": "/var/lib/nsbox-machine", "state_dir": "/run/nsbox"}\' > /etc/nsbox/config.json && '
                 'touch /usr/local/lib/nsbox/current.pyz /run/nsbox/nftables.sha256 && '
                 'mount -t tmpfs nsbox-machine /var/lib/nsbox-machine/containers/c1/merged && '
                 'mount -t tmpfs nsbox-machine /run/nsbox/containers/c1')
NSBOX_TRACES = ('ls -d /etc/nsbox /usr/local/lib/nsbox /run/nsbox 2>/dev/null; '
                'grep -E " (/var/lib/nsbox-machine|/run/nsbox)[/ ]" /proc/self/mountinfo | cut -d" " -f5; true')
INNER_HOST = '''
import sys
sys.path.insert(0, sys.argv[1])
from harness.testhost import TestHost
with TestHost('inner') as inner:
    print(inner.ssh(sys.argv[2]).stdout, end='')
'''


def test_a_private_host_starts_without_the_machines_nsbox():
    """A machine that runs nsbox of its own (a config naming another data-root, the library, the state dir, containers'
    mounts under both) gives a private test host none of it, and keeps all of it.

    The "machine" is a private test host itself (nothing of the real machine is touched); the inner host is started
    by the harness running in the outer one's mount namespace, as it runs on a machine.
    """
    tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with TestHost('machine') as machine:
        machine.ssh(MACHINE_NSBOX)
        before = machine.ssh(NSBOX_TRACES).stdout
        assert sorted(before.split()) == ['/etc/nsbox', '/run/nsbox', '/run/nsbox/containers/c1', '/usr/local/lib/nsbox',
                                          '/var/lib/nsbox-machine/containers/c1/merged'], before
        inner = subprocess.run(['nsenter', '--mount=/proc/%d/ns/mnt' % machine.proc.pid, '--', sys.executable, '-c', INNER_HOST,
                                tests, NSBOX_TRACES], capture_output=True, text=True, timeout=120, check=False)
        assert inner.returncode == 0, inner.stderr
        assert inner.stdout == '', 'the test host sees the machine\'s nsbox: %r' % inner.stdout
        assert machine.ssh(NSBOX_TRACES).stdout == before  # the machine's nsbox is as it was


def test_leftovers_count_only_what_the_tests_made():
    """``containers.leftovers`` reports links (and mounts) that appeared after ``setup``'s snapshot, once; what was there
    before (the machine's own bridge, on a host sharing its network namespace) is neither reported nor removed."""
    with TestHost('leaks', netns=True) as host:
        host.ssh('ip link add nsbox0 type bridge')  # as a demo kept running leaves it
        containers.remember(host)
        assert containers.leftovers(host) == containers.NOTHING
        host.ssh('ip link add nsbr-leak type bridge && mkdir -p %s/containers/x/merged && mount -t tmpfs t %s/containers/x/merged'
                 % (containers.DATA_ROOT, containers.DATA_ROOT))
        found = containers.teardown(host, '/nsbox-test-leaks-none', everything=True)
        assert found['links'] == ['nsbr-leak'] and found['mounts'] == [containers.DATA_ROOT + '/containers/x/merged'], found
        assert found['containers'] == ['x'], found
        assert containers.leftovers(host) == containers.NOTHING  # reported once, by the test that made it
        assert host.ssh('ip link show nsbox0', check=False).returncode == 0  # never removed
