# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration fixtures: a private test host over SSH and Ansible pointed at it."""
from __future__ import annotations


import contextlib
import ctypes
import os
import subprocess
import time

import pytest

from harness import images
from harness.containers import FIXTURE_CACHE
from harness.registry import Registry
from harness.runner import AnsibleRunner
from harness.testhost import TestHost


# What a module run may leave on a test host; removed between tests that need a fresh host.
NSBOX_PATHS = '/etc/nsbox /usr/local/lib/nsbox /usr/local/bin/nsbox /run/nsbox /var/lib/nsbox/*'


@pytest.fixture(scope='session')
def testhost():
    if os.geteuid() != 0:
        pytest.skip('integration tests run as root (namespaces, mounts, sshd)')
    with TestHost('testhost') as host:
        yield host


@pytest.fixture(scope='session')
def ansible(testhost):
    runner = AnsibleRunner([testhost])
    yield runner
    runner.close()


@pytest.fixture(scope='session')
def fixtures():
    """The test images built from Debian packages (harness/images.py), cached across runs."""
    return images.FixtureImages(FIXTURE_CACHE).build()


@pytest.fixture(scope='module')
def registry():
    """A registry (Debian's docker-registry) on 127.0.0.1 for one test module."""
    reg = Registry()
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def fresh_host(testhost):
    """The test host with no trace of nsbox (private paths only: the machine is untouched)."""
    testhost.ssh('rm -rf %s' % NSBOX_PATHS)
    return testhost


@pytest.fixture
def ansible_for():
    """An AnsibleRunner for another TestHost of the test's own; closed at the end."""
    made = []

    def make(host):
        runner = AnsibleRunner([host])
        made.append(runner)
        return runner
    yield make
    for runner in made:
        runner.close()


class Reaper:
    """The harness as a child subreaper: whatever the runtime orphans lands here, not on the host's init.

    So a process the runtime leaked (a supervisor, a container's init) is a child of pytest and is
    seen: check() reaps those that ended (an orphan's end is normal) and fails on any still alive
    that is not a known, long-lived helper (sshd, ssh control masters, registries).
    """

    HELPERS = ('sshd', 'ssh', 'docker-registry', 'registry', 'python3', 'python')

    PR_SET_CHILD_SUBREAPER = 36

    def __init__(self):
        if ctypes.CDLL(None, use_errno=True).prctl(self.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_CHILD_SUBREAPER)')

    def children(self):
        me = os.getpid()
        out = []
        for entry in os.listdir('/proc'):
            if not entry.isdigit():
                continue
            try:
                with open('/proc/%s/stat' % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index('(') + 1:stat.rindex(')')]
            fields = stat[stat.rindex(')') + 2:].split()
            if int(fields[1]) == me:
                out.append((int(entry), comm, fields[0]))
        return out

    def check(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            alive = []
            for pid, comm, state in self.children():
                if state == 'Z':
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)
                elif comm not in self.HELPERS and not _is_popen(pid):
                    alive.append((pid, comm))
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert not alive, 'processes the runtime left running (orphans re-parented to the harness): %r' % alive


def _is_popen(pid):
    return any(getattr(p, 'pid', None) == pid for p in list(subprocess._active or []))  # pylint: disable=protected-access


@pytest.fixture(scope='session')
def reaper():
    return Reaper()
