# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OCI verbs (oci/runtime.py) as the kernel sees them, through the recording fake (fakekernel.py): create runs
the real handshake up to the barrier (``real_fork``: every kernel call of the init recorded, none made), start
releases it, kill/delete/pause/state act on a container record. The cgroup is a recording stand-in (the cgroup
drivers are tested on their own)."""
from __future__ import annotations

import json
import os
import signal

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import syscall
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel.namespaces import boot_id, process_stamp
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.oci import runtime
from ansible_collections.nsbox.runtime.tests.unit.plugins.module_utils._runtime.fakekernel import FakeKernel

PARENT = os.getpid()
TRUE = '/bin/true' if os.path.exists('/bin/true') else '/usr/bin/true'


class FakeCgroup:
    """The cgroup manager's interface, recorded."""

    def __init__(self, log, procs=()):
        self.log, self.procs, self.frozen, self.present = log, list(procs), False, True

    def apply(self, resources):
        self.log.append(('apply',))

    def add_procs(self, pids):
        self.log.append(('add_procs', len(pids)))

    def exists(self):
        return self.present

    def remove(self):
        self.log.append(('remove',))
        self.present = False

    def freeze(self, frozen):
        self.log.append(('freeze', frozen))
        self.frozen = frozen

    def read(self, resources):
        return {'frozen': self.frozen}

    def _all_procs(self):
        return self.procs


@pytest.fixture
def cgroup(monkeypatch):
    log = []
    manager = FakeCgroup(log, procs=[PARENT, PARENT + 1])
    monkeypatch.setattr(runtime, 'manager_for', lambda path, driver, layout: manager)
    monkeypatch.setattr(runtime.Layout, 'detect', classmethod(lambda cls: cls('unified', '/sys/fs/cgroup', {})))
    return manager


@pytest.fixture
def bundle(tmp_path):
    (tmp_path / 'bundle' / 'rootfs').mkdir(parents=True)
    config = {'ociVersion': '1.0.2', 'root': {'path': 'rootfs'}, 'hostname': 'oci',
              'process': {'args': [TRUE], 'env': ['PATH=/bin'], 'cwd': '/', 'user': {'uid': 0, 'gid': 0},
                          'capabilities': {'bounding': ['CAP_KILL']}},
              'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'}],
              'linux': {'namespaces': [{'type': 'pid'}, {'type': 'uts'}, {'type': 'mount'}], 'maskedPaths': [], 'readonlyPaths': []}}
    (tmp_path / 'bundle' / 'config.json').write_text(json.dumps(config))
    return str(tmp_path / 'bundle')


def test_create_holds_the_init_at_the_barrier_and_start_releases_it(tmp_path, bundle, cgroup):
    kernel = FakeKernel(real_fork=True)
    kernel.label(os.path.join(bundle, 'rootfs'), '<root>')
    root = str(tmp_path / 'state')
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        pid = runtime.create(root, 'c1', bundle, stdio=(null, null, null), kernel=kernel)
    finally:
        os.close(null)
    assert kernel.role_of(pid) == 'caller/1/1'
    assert runtime.state(root, 'c1', kernel)['status'] == 'created'
    assert cgroup.log == [('apply',), ('add_procs', 1)]
    runtime.start(root, 'c1', kernel)
    init = kernel.record_of('caller/1/1')
    assert ('unshare', syscall.CLONE_NEWUTS | syscall.CLONE_NEWNS) in init
    assert [c for c in init if c[0] in ('pivot_root', 'sethostname', 'execve')] == [
        ('pivot_root', '.', '.'), ('sethostname', 'oci'), ('execve', TRUE, [TRUE])]
    assert kernel.record_of('caller/1') == [('prctl', syscall.PR_SET_DUMPABLE, 0), ('unshare', syscall.CLONE_NEWPID), ('fork',),
                                            ('exit_process', 0)]
    assert not os.path.exists(os.path.join(root, 'c1', 'exec.fifo'))
    kernel.cleanup()


def test_create_that_fails_in_the_init_leaves_nothing(tmp_path, bundle, cgroup):
    kernel = FakeKernel(real_fork=True)
    kernel.fail('pivot_root', 22, role='caller/1/1')
    root = str(tmp_path / 'state')
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        with pytest.raises(runtime.NsboxError, match='pivot_root'):
            runtime.create(root, 'c1', bundle, stdio=(null, null, null), kernel=kernel)
    finally:
        os.close(null)
    assert kernel.record_of('caller/1/1')[-2:] == [('pivot_root', '.', '.'), ('exit_process', 127)]
    assert cgroup.log[-1] == ('remove',) and not os.path.exists(os.path.join(root, 'c1'))  # the cgroup and the record gone
    kernel.cleanup()


@pytest.fixture
def running(tmp_path, cgroup):
    """A container record whose init is this test's own process (the fake's kill never reaches it)."""
    root = str(tmp_path / 'state')
    container = runtime.OciContainer(root, 'c1')
    os.makedirs(container.dir)
    container.record = {'schema_version': runtime.SCHEMA_VERSION, 'id': 'c1', 'bundle': str(tmp_path), 'status': 'running',
                        'boot_id': boot_id(), 'cgroup': ['/c1', 'cgroupfs'], 'hooks': {}, 'spec': {'capabilities': []},
                        'pid': PARENT, 'start_time': process_stamp(PARENT)[1], 'created': 'now', 'annotations': {}}
    container.save()
    return root


def test_kill_signals_the_init(running):
    kernel = FakeKernel()
    runtime.kill(running, 'c1', 'HUP', kernel=kernel)
    assert kernel.calls == [('kill', PARENT, signal.SIGHUP)]


def test_kill_all_signals_every_process_of_the_cgroup(running):
    kernel = FakeKernel()
    runtime.kill(running, 'c1', 'KILL', all_procs=True, kernel=kernel)
    assert kernel.calls == [('kill', PARENT, signal.SIGKILL), ('kill', PARENT + 1, signal.SIGKILL)]


def test_pause_and_resume_freeze_the_cgroup(running, cgroup):
    kernel = FakeKernel()
    runtime.pause(running, 'c1', kernel=kernel)
    assert runtime.state(running, 'c1', kernel)['status'] == 'paused'
    runtime.pause(running, 'c1', frozen=False, kernel=kernel)
    assert cgroup.log == [('freeze', True), ('freeze', False)] and kernel.calls == []


def test_delete_of_a_running_container_needs_force(running, cgroup):
    kernel = FakeKernel()
    with pytest.raises(runtime.OciError, match='it is running'):
        runtime.delete(running, 'c1', kernel=kernel)
    assert kernel.calls == []
    runtime.delete(running, 'c1', force=True, kernel=kernel)
    assert kernel.calls == [('kill', PARENT, signal.SIGKILL)] and cgroup.log == [('remove',)]
    assert runtime.list_ids(running) == []


def test_state_of_an_init_that_ended_is_stopped_and_kill_refuses(running):
    container = runtime.OciContainer(running, 'c1').load()
    container.record['start_time'] += 1  # another process under the same pid
    container.save()
    kernel = FakeKernel()
    assert runtime.state(running, 'c1', kernel)['status'] == 'stopped'
    with pytest.raises(runtime.OciError, match='it is stopped'):
        runtime.kill(running, 'c1', kernel=kernel)
    assert kernel.calls == []
