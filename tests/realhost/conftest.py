# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real-host lane: a Debian 12 VM with systemd as PID 1 and pure cgroup v2 (harness/vm.py).

``realhost_vm`` (session): the VM, built, booted and saved once. ``realhost`` (per test module,
a *test group*): the same VM, restored to its saved booted state for every group after the
first. ``realhost_ansible``: Ansible with the inventory group ``realhost``. Every test here is
marked ``realhost``. The lane is skipped, with the reason, only where QEMU cannot run.
"""
from __future__ import annotations

import json
import os
import warnings

import pytest

from harness.vm import CACHE_ROOT, QemuUnavailable, RealHostVM, RealhostRunner

_TIMINGS = []


def pytest_collection_modifyitems(items):
    here = os.path.dirname(os.path.abspath(__file__))
    for item in items:
        if str(item.fspath).startswith(here + os.sep):
            item.add_marker(pytest.mark.realhost)


@pytest.fixture(scope='session')
def realhost_vm():
    if os.geteuid() != 0:
        pytest.skip('the real-host lane runs as root (debootstrap, mkfs.ext4 -d of a root tree)')
    vm = RealHostVM()
    try:
        vm.start()
    except QemuUnavailable as exc:
        pytest.skip('real-host lane: QEMU cannot run here: %s' % exc)
    try:
        yield vm
    finally:
        vm.stop()
        _TIMINGS.append(vm.timings)
        path = os.environ.get('NSBOX_VM_TIMINGS') or os.path.join(CACHE_ROOT, 'timings.json')
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, 'w') as f:
                json.dump(vm.timings, f, indent=1)
        except OSError as exc:
            warnings.warn('could not write the VM timings to %s: %s' % (path, exc))


@pytest.fixture(scope='module')
def realhost(realhost_vm):
    """The VM for one test group (module): a clean booted host."""
    if realhost_vm.groups:
        realhost_vm.restore()
    realhost_vm.groups += 1
    return realhost_vm


@pytest.fixture(scope='module')
def realhost_ansible(realhost):
    runner = RealhostRunner(realhost)
    yield runner
    runner.close()


def pytest_terminal_summary(terminalreporter):
    for timings in _TIMINGS:
        terminalreporter.write_sep('-', 'real-host VM timings (seconds)')
        terminalreporter.write_line(json.dumps(timings, indent=1))
