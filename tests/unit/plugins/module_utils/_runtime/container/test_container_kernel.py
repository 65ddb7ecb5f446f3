# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's assembly (assemble.launch / teardown), exec (execute.py) and converge's start and stop as the
kernel sees them: the host config carries the recording fake (fakekernel.py, ``real_fork``: the forked helpers,
the init and exec's processes run for real, their kernel calls recorded, none made). The image's rootfs is a
layer dir in tmp, the cgroup a recording stand-in."""
from __future__ import annotations

import json
import os
import signal
import socket

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import assemble, converge, execute, options, store as cstore
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import install
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host.config import HostConfig
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import rootfs as rootfs_mod
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import syscall
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel.namespaces import boot_id, process_stamp
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import process
from ansible_collections.nsbox.runtime.tests.unit.plugins.module_utils._runtime.fakekernel import FakeKernel

PARENT = os.getpid()
IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}


class FakeCgroup:
    def __init__(self):
        self.log, self.present = [], False

    def exists(self):
        return self.present

    def create(self):
        self.log.append('create')
        self.present = True

    def apply(self, resources):
        self.log.append('apply')

    def add_procs(self, pids):
        self.log.append('add_procs')

    def remove(self):
        self.log.append('remove')
        self.present = False

    def stats(self):
        return {}


@pytest.fixture
def host(tmp_path, monkeypatch):
    kernel = FakeKernel(real_fork=True, mountinfo=str(tmp_path / 'mountinfo'))
    cfg = HostConfig({'data_root': str(tmp_path / 'data'), 'state_dir': str(tmp_path / 'run')}, kernel=kernel)
    layers = tmp_path / 'layers'
    (layers / 'A' / 'diff').mkdir(parents=True)
    (layers / 'l').mkdir()
    os.symlink('../A/diff', str(layers / 'l' / 'A'))
    monkeypatch.setattr(rootfs_mod, 'for_image', lambda store, name, target, upper=None, work=None:
                        rootfs_mod.RootfsSpec(target, ['l/A'], upper, work, cwd=str(layers), image=name))
    cgroup = FakeCgroup()
    monkeypatch.setattr(assemble, 'cgroup_of', lambda cfg, container: cgroup)
    store = cstore.ContainerStore(cfg)
    wanted = {'command': 'sleep 1', 'network_mode': 'none', 'security_opt': ['seccomp=unconfined'], 'hostname': 'web'}
    config = options.resolve('web', options.check(wanted), IMAGE, {})
    with store.lock():
        container = store.create(config)
    kernel.label(container.rootfs, '<rootfs>')
    kernel.label(str(layers), '<layers>')
    yield cfg, store, container, kernel, cgroup
    kernel.cleanup()


def overlay(container):
    return ('mount', 'nsbox', '<rootfs>', 'overlay', 0, 'lowerdir=l/A,upperdir=%s,workdir=%s' % (container.path('upper'), container.path('work')))


@pytest.fixture
def stdio():
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    yield (null, null, null)
    os.close(null)


def test_launch_mounts_the_rootfs_then_starts_the_init_in_its_cgroup(host, stdio):
    cfg, store, container, kernel, cgroup = host
    pid, _manager = assemble.launch(cfg, store, container, stdio)
    assert kernel.role_of(pid) == 'caller/2/1' and cgroup.log == ['create', 'apply', 'add_procs']
    assert kernel.calls == [('fork',), ('waitpid', 'caller/1', 0), ('fork',), ('waitpid', 'caller/2', 0)]
    assert kernel.record_of('caller/1') == [('chdir', '<layers>'), overlay(container), ('exit_process', 0)]  # lower dirs are relative
    init = [c for c in kernel.record_of('caller/2/1') if c[0] not in ('openat2', 'dup2', 'mknod') and not (c[0] == 'prctl' and c[1] == 24)]
    assert init[:2] == [('unshare', syscall.CLONE_NEWNS | syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC
                         | syscall.CLONE_NEWCGROUP), ('link_up', 'lo')]
    etc = [c for c in init if c[0] == 'mount' and c[2].startswith('<rootfs>/etc/')]
    assert [c[1:3] for c in etc] == [(container.path('hostname'), '<rootfs>/etc/hostname'), (None, '<rootfs>/etc/hostname'),
                                     (container.path('hosts'), '<rootfs>/etc/hosts'), (None, '<rootfs>/etc/hosts'),
                                     (container.path('resolv.conf'), '<rootfs>/etc/resolv.conf'), (None, '<rootfs>/etc/resolv.conf')]
    at = init.index(('pivot_root', '.', '.'))
    assert init[at - 1:at + 4] == [('chdir', '<rootfs>'), ('pivot_root', '.', '.'), ('umount', '.', syscall.MNT_DETACH), ('chdir', '/'),
                                   ('sethostname', 'web')]
    assert init[-1] == ('execve', '/usr/bin/sleep' if os.path.exists('/usr/bin/sleep') else '/bin/sleep', ['sleep', '1'])
    kernel.calls.clear()
    assemble.teardown(cfg, container, cgroup)
    assert kernel.calls == [('umount', '<rootfs>', 0)] and cgroup.log[-1] == 'remove'


def test_launch_that_fails_in_the_init_tears_down_what_it_made(host, stdio):
    """pivot_root refused in the init: the cgroup goes, and the rootfs mount made before the start too."""
    cfg, store, container, kernel, cgroup = host
    kernel.fail('pivot_root', 22, role='caller/2/1')
    with pytest.raises(process.ProcessError, match='pivot_root'):
        assemble.launch(cfg, store, container, stdio)
    assert kernel.record_of('caller/2/1')[-2:] == [('pivot_root', '.', '.'), ('exit_process', 127)]
    assert kernel.calls[-1] == ('umount', '<rootfs>', 0) and cgroup.log == ['create', 'apply', 'add_procs', 'remove']
    with open(kernel.mountinfo) as f:
        assert len(f.read().splitlines()) == 1  # the host's table as it was


def test_a_rootfs_mount_that_fails_leaves_no_cgroup(host, stdio):
    cfg, store, container, kernel, cgroup = host
    kernel.fail('mount', 16, role='caller/1')  # EBUSY
    with pytest.raises(rootfs_mod.RootfsError, match='overlay'):
        assemble.launch(cfg, store, container, stdio)
    assert cgroup.log == [] and kernel.only('fork', 'umount') == [('fork',)]


def _mark_running(container, pid=PARENT):
    container.write_state(status='running', pid=pid, pid_start=process_stamp(pid)[1], boot_id=boot_id(), started_at='now')


def test_exec_runs_the_command_through_enter(host, stdio, monkeypatch):
    cfg, _store, container, kernel, cgroup = host
    _mark_running(container)  # this test's process stands for the init (the fake's kill never reaches it)
    monkeypatch.setattr(process, 'proc_namespaces', lambda pid: {'mnt': 1, 'pid': 3} if pid == 'self' else {'mnt': 11, 'pid': 13})
    true = '/bin/true' if os.path.exists('/bin/true') else '/usr/bin/true'
    kernel.exit_codes[true] = 4
    out = execute.exec_in(cfg, 'web', [true], user='0:0', workdir='/tmp')
    assert out['rc'] == 4 and cgroup.log == ['add_procs']
    a, b = kernel.record_of('caller/1'), kernel.record_of('caller/1/1')
    assert [c[0] for c in a] == ['prctl', 'setns', 'fork', 'waitpid', 'exit_process']  # joins mnt; pid is B's
    assert [c for c in b if c[0] in ('setns', 'chdir', 'setresuid', 'fork')] == [
        ('setns', os.readlink('/proc/self/ns/pid'), syscall.CLONE_NEWPID), ('chdir', '/tmp'), ('setresuid', 0, 0, 0), ('fork',)]
    assert kernel.record_of('caller/1/1/1') == [('execve', true, [true])]


def test_kill_tree_kills_the_command_and_what_it_started(host):
    kernel = host[3]
    execute.kill_tree(PARENT, kernel)
    assert kernel.calls[:1] == [('kill', PARENT, signal.SIGKILL)] and len(kernel.calls) >= 2  # twice: what forked meanwhile


def test_converge_start_spawns_the_supervisor_by_double_fork(host, monkeypatch):
    cfg, _store, container, kernel, _cgroup = host
    monkeypatch.setattr(install, 'library_argv', lambda args, library=None, what=None: ['/usr/local/bin/nsbox'] + list(args))
    seen = []

    def supervisor(argv, env):
        """What ``nsbox supervise`` answers on its sync socket, fd 3 (dup2'd there for real in this child)."""
        sock = socket.socket(fileno=3)
        line = b''
        while not line.endswith(b'\n'):
            line += sock.recv(65536)
        seen.append(json.loads(line))
        sock.sendall(b'{"pid": 4242}\n')
        return 0
    kernel.programs['/usr/local/bin/nsbox'] = supervisor
    assert converge.start(cfg, container) == 'started container web'
    assert kernel.calls == [('fork',), ('waitpid', 'caller/1', 0)]
    assert kernel.record_of('caller/1') == [('setsid',), ('fork',), ('exit_process', 0)]
    sup = kernel.record_of('caller/1/1')
    assert sup[0] == ('chdir', '/') and [c[2] for c in sup[1:5]] == [0, 1, 2, 3]
    assert sup[5] == ('execve', '/usr/local/bin/nsbox', ['/usr/local/bin/nsbox', 'supervise', container.id, '--sync-fd', '3'])


def test_converge_start_reports_a_supervisor_that_never_answers(host, monkeypatch):
    cfg, _store, container, kernel, _cgroup = host
    monkeypatch.setattr(install, 'library_argv', lambda args, library=None, what=None: ['/usr/local/bin/nsbox'] + list(args))
    with pytest.raises(cstore.ContainerError, match='ended without an answer'):
        converge.start(cfg, container)
    assert kernel.record_of('caller/1/1')[-1][0] == 'execve'


def test_converge_stop_signals_then_kills_then_tears_down(host, monkeypatch):
    cfg, _store, container, kernel, cgroup = host
    _mark_running(container)
    cgroup.present = True
    monkeypatch.setattr(converge, '_wait_gone', lambda init, timeout: False)  # the init (this test) never ends: no waiting
    action = converge.stop(cfg, container, timeout=0)
    assert action == 'stopped container web (SIGTERM, then SIGKILL after 0s)'
    assert kernel.calls == [('kill', PARENT, signal.SIGTERM), ('kill', PARENT, signal.SIGKILL)]
    assert cgroup.log == ['remove'] and container.read_state()['status'] == 'exited'
