# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Integration fixtures: a private test host over SSH and Ansible pointed at it."""
from __future__ import annotations


import os

import pytest

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


@pytest.fixture
def fresh_host(testhost):
    """The test host with no trace of nsbox (private paths only: the machine is untouched)."""
    testhost.ssh('rm -rf %s' % NSBOX_PATHS)
    return testhost
