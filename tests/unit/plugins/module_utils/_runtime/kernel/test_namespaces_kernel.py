# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Namespaces made, joined, persisted and removed, as the kernel sees it: the exact sequence of calls through the
recording fake (fakekernel.py). The handshakes with forked helpers run for real (``real_fork``): the pipes and
sockets are real, every kernel call of each process is recorded."""
from __future__ import annotations

import errno
import os
import signal
import socket
import sys

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import NsboxError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import namespaces as ns, syscall
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.named import store as named_store
from ansible_collections.nsbox.runtime.tests.unit.plugins.module_utils._runtime.fakekernel import FakeKernel


@pytest.fixture
def kernel(tmp_path):
    fake = FakeKernel(real_fork=True, mountinfo=str(tmp_path / 'mountinfo'))
    fake.label(str(tmp_path), '<tmp>')
    yield fake
    fake.cleanup()


# -- persist / unpersist ----------------------------------------------------------------------------
def test_persist_binds_the_namespace_on_a_new_file(tmp_path, kernel):
    target = str(tmp_path / 'net')
    ns.persist('/proc/self/ns/net', target, 'a net namespace', kernel)
    assert kernel.calls == [('mount', '/proc/self/ns/net', '<tmp>/net', None, syscall.MS_BIND, None)]
    assert os.path.isfile(target)


def test_persist_that_fails_leaves_no_file(tmp_path, kernel):
    target = str(tmp_path / 'net')
    kernel.fail('mount', errno.EPERM)
    with pytest.raises(ns.NamespaceError, match='persist a net namespace') as info:
        ns.persist('/proc/self/ns/net', target, 'a net namespace', kernel)
    assert info.value.errno == errno.EPERM and not os.path.exists(target)


def test_unpersist_unmounts_every_stacked_namespace(tmp_path, kernel):
    target = str(tmp_path / 'net')
    ns.persist('/proc/self/ns/net', target, 'a net namespace', kernel)
    kernel.mount('/proc/self/ns/net', target, None, syscall.MS_BIND)  # a failed earlier run left a second one
    kernel.calls.clear()
    ns.unpersist(target, kernel.mountinfo, kernel)
    assert kernel.calls == [('umount', '<tmp>/net', syscall.MNT_DETACH)] * 2
    assert not os.path.exists(target)


def test_write_id_maps_writes_each_map_once(kernel, monkeypatch):
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)  # not root: setgroups is denied before the gid_map
    ns.write_id_maps(42, [(0, 1000, 1)], '0 1000 1\n', 'a test namespace', kernel=kernel)
    assert kernel.only('write') == [('write', '/proc/42/uid_map', b'0 1000 1\n'), ('write', '/proc/42/setgroups', b'deny'),
                                    ('write', '/proc/42/gid_map', b'0 1000 1\n')]
    assert kernel.names().count('open') == kernel.names().count('close') == 3


# -- forked helpers ---------------------------------------------------------------------------------
def test_unsharer_makes_its_stages_one_by_one(kernel):
    with ns.Unsharer((syscall.CLONE_NEWUSER, syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC), 'a test', kernel=kernel) as helper:
        helper.ready()
        helper.next()
    assert kernel.calls == [('fork',), ('kill', 'caller/1', signal.SIGKILL), ('waitpid', 'caller/1', 0)]
    assert kernel.record_of('caller/1') == [('unshare', syscall.CLONE_NEWUSER), ('unshare', syscall.CLONE_NEWNET | syscall.CLONE_NEWIPC),
                                            ('exit_process', 0)]


def test_unsharer_reports_a_failing_stage(kernel):
    kernel.fail('unshare', errno.EPERM, role='caller/1')
    with pytest.raises(NsboxError, match='failed to create a test: .*Operation not permitted'):
        with ns.Unsharer((syscall.CLONE_NEWUSER,), 'a test', kernel=kernel) as helper:
            helper.ready()
    assert kernel.record_of('caller/1') == [('unshare', syscall.CLONE_NEWUSER), ('exit_process', 1)]


def _hostname():
    return 'answer'


def test_run_in_joins_in_order_then_runs(tmp_path, kernel):
    files = {t: str(tmp_path / t) for t in ('user', 'net', 'uts')}
    for path in files.values():
        open(path, 'w').close()
    assert ns.run_in(files, _hostname, kernel=kernel) == 'answer'
    assert kernel.record_of('caller/1') == [('setns', '<tmp>/uts', syscall.CLONE_NEWUTS), ('setns', '<tmp>/net', syscall.CLONE_NEWNET),
                                            ('setns', '<tmp>/user', syscall.CLONE_NEWUSER), ('exit_process', 0)]  # JOIN_ORDER: user last


def test_run_in_with_a_pid_namespace_runs_in_a_grandchild(tmp_path, kernel):
    open(str(tmp_path / 'pid'), 'w').close()
    assert ns.run_in({'pid': str(tmp_path / 'pid')}, _hostname, kernel=kernel) == 'answer'
    assert kernel.record_of('caller/1') == [('setns', '<tmp>/pid', syscall.CLONE_NEWPID), ('fork',), ('waitpid', 'caller/1/1', 0),
                                            ('exit_process', 0)]
    assert kernel.record_of('caller/1/1') == [('exit_process', 0)]


def test_run_in_brings_back_a_failing_join(tmp_path, kernel):
    open(str(tmp_path / 'net'), 'w').close()
    kernel.fail('setns', errno.EINVAL, role='caller/1')
    with pytest.raises(NsboxError, match='Invalid argument'):
        ns.run_in({'net': str(tmp_path / 'net')}, _hostname, kernel=kernel)
    assert kernel.record_of('caller/1') == [('setns', '<tmp>/net', syscall.CLONE_NEWNET), ('exit_process', 1)]


# -- named namespace sets (named/store.py) ----------------------------------------------------------
@pytest.fixture
def store(tmp_path, kernel):
    return named_store.NamespaceStore(str(tmp_path / 'state'), mountinfo_path=kernel.mountinfo, kernel=kernel)


def test_store_root_is_made_a_private_mount_once(store, kernel):
    store.ensure_root()
    store.ensure_root()
    assert kernel.calls == [('mount', '<tmp>/state/ns', '<tmp>/state/ns', None, syscall.MS_BIND, None),
                            ('mount', None, '<tmp>/state/ns', None, syscall.MS_PRIVATE | syscall.MS_REC, None)]


def test_store_create_and_remove(store, kernel):
    inodes = store.create('web', ['net', 'uts'])
    assert sorted(inodes) == ['net', 'uts']
    creator = kernel.record_of('caller/1')
    assert creator == [('unshare', syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS), ('exit_process', 0)]
    assert kernel.only('mount', 'fork', 'umount', 'waitpid') == [
        ('mount', '<tmp>/state/ns', '<tmp>/state/ns', None, syscall.MS_BIND, None),
        ('mount', None, '<tmp>/state/ns', None, syscall.MS_PRIVATE | syscall.MS_REC, None),
        ('fork',),
        ('mount', '/proc/<caller/1>/ns/uts', '<tmp>/state/ns/web/uts', None, syscall.MS_BIND, None),  # in TYPES order
        ('mount', '/proc/<caller/1>/ns/net', '<tmp>/state/ns/web/net', None, syscall.MS_BIND, None),
    ] + [('waitpid', 'caller/1', os.WNOHANG)] * kernel.names().count('waitpid')
    assert sorted(store.inspect('web').types) == ['net', 'uts']  # read back from the (fake) mount table
    kernel.calls.clear()
    with store.lock():
        store.remove('web')
    assert kernel.only('umount') == [('umount', '<tmp>/state/ns/web/uts', syscall.MNT_DETACH),
                                     ('umount', '<tmp>/state/ns/web/net', syscall.MNT_DETACH),
                                     ('umount', '<tmp>/state/ns', syscall.MNT_DETACH)]  # the last name: the root goes too
    assert not os.path.exists(store.dir('web'))


def test_store_create_that_fails_midway_undoes_everything(store, kernel):
    """The second persisting bind fails: the first is unmounted, the directory and the root mount go."""
    kernel.fail('mount', errno.ENOSPC, nth=4)
    with pytest.raises(ns.NamespaceError, match='persist the net namespace of web'):
        store.create('web', ['net', 'uts'])
    assert kernel.only('mount', 'umount')[-3:] == [
        ('mount', '/proc/<caller/1>/ns/net', '<tmp>/state/ns/web/net', None, syscall.MS_BIND, None),
        ('umount', '<tmp>/state/ns/web/uts', syscall.MNT_DETACH),
        ('umount', '<tmp>/state/ns', syscall.MNT_DETACH),
    ]
    assert not os.path.exists(store.dir('web'))
    with open(kernel.mountinfo) as f:
        assert len(f.read().splitlines()) == 1  # the table as it was


def test_store_create_in_an_owning_user_namespace(store, kernel):
    """A name with a user namespace gets new ones owned by it: the creator joins it before unsharing."""
    with store.lock():
        store.create('web', ['user'], uid_map='0 100000 65536', gid_map='0 100000 65536')
    assert kernel.record_of('caller/1') == [('unshare', syscall.CLONE_NEWUSER), ('exit_process', 0)]
    assert kernel.only('write') == [('write', '/proc/<caller/1>/uid_map', b'0 100000 65536\n'),
                                    ('write', '/proc/<caller/1>/gid_map', b'0 100000 65536\n')]
    with store.lock():
        store.create('web', ['net', 'mnt'])
    assert kernel.record_of('caller/2') == [
        ('mnt_ns_id', 'mnt:[%d]' % os.stat('/proc/self/ns/mnt').st_ino),
        ('unshare', syscall.CLONE_NEWNS), ('umount', '<tmp>/state/ns', syscall.MNT_DETACH),  # its own copy of the table first
        ('setns', '<tmp>/state/ns/web/user', syscall.CLONE_NEWUSER),
        ('unshare', syscall.CLONE_NEWNS | syscall.CLONE_NEWNET),
        ('exit_process', 0)]


def test_store_create_with_a_pid_namespace_starts_and_commits_its_holder(tmp_path, kernel, monkeypatch):
    """The double fork: the creator forks the holder, which execs the installed library and says READY; the pid
    namespace is persisted from the holder (its pid 1), then the holder is told COMMIT. Removing kills it (pidfd)."""
    lib = tmp_path / 'lib'
    lib.mkdir()
    (lib / '__main__.py').write_text('')
    store = named_store.NamespaceStore(str(tmp_path / 'state'), mountinfo_path=kernel.mountinfo, library=str(lib), kernel=kernel)
    gate_r, gate_w = os.pipe()
    os.set_inheritable(gate_r, True)  # the holder's program gets it across its exec

    def holder(argv, env):  # gate_w is O_CLOEXEC: gone at the (fake) exec, so closing it here lets the holder end
        sock = socket.socket(fileno=int(argv[argv.index('--sync-fd') + 1]))
        sock.sendall(named_store.HOLDER_READY)
        assert sock.recv(1) == named_store.HOLDER_COMMIT
        os.read(gate_r, 1)  # alive until the test lets it go
        return 0
    kernel.programs[sys.executable] = holder
    try:
        with store.lock():
            store.create('web', ['pid'])
        argv = [sys.executable, '-I', '-B', str(lib), 'ns-hold', 'web', '--sync-fd']
        assert kernel.record_of('caller/1') == [('setsid',), ('unshare', syscall.CLONE_NEWPID), ('fork',), ('exit_process', 0)]
        held = kernel.only('mount')[-1]
        assert held == ('mount', '/proc/<caller/1/1>/ns/pid', '<tmp>/state/ns/web/pid', None, syscall.MS_BIND, None)
        persisted = os.stat(store.path('web', 'pid')).st_ino  # the holder "is" in it: the fake made it (nothing was unshared)
        monkeypatch.setattr(named_store, 'proc_namespaces', lambda pid, proc='/proc': {'pid': persisted})
        assert sorted(store.inspect('web').types) == ['pid']  # read back: a live holder in that pid namespace
        kernel.calls.clear()
        with store.lock():
            store.remove('web')
        assert kernel.only('umount', 'pidfd_open', 'pidfd_send_signal') == [
            ('umount', '<tmp>/state/ns/web/pid', syscall.MNT_DETACH), ('pidfd_open', 'caller/1/1'),
            ('pidfd_send_signal', signal.SIGKILL), ('umount', '<tmp>/state/ns', syscall.MNT_DETACH)]
    finally:
        os.close(gate_w)
        os.close(gate_r)
    holder_calls = kernel.record_of('caller/1/1')
    assert holder_calls[0] == ('chdir', '/') and [c[2] for c in holder_calls[1:4]] == [0, 1, 2]
    assert holder_calls[4][:2] == ('execve', sys.executable) and holder_calls[4][2][:len(argv)] == argv
