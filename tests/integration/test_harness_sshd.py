# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The SSH test hosts start, are reachable by Ansible, and leave nothing behind."""
from __future__ import annotations

import os
import subprocess

import pytest

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
        host.stop()
    assert not os.path.exists('/proc/%d' % pid)
    assert not os.path.exists(workdir)
    if ns:
        left = [p for p in os.listdir('/proc') if p.isdigit() and _ns_of(p) == ns]
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
