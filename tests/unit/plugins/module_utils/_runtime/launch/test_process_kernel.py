# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""process.start and process.enter as the kernel sees them: the caller, the intermediate A and the container
process B (and enter's command C) run for real, forked, over their real pipes; every kernel call each makes goes
to the recording fake (fakekernel.py, ``real_fork``), so nothing is mounted, unshared or exec'd, and the tests
assert each process's exact sequence."""
from __future__ import annotations

import errno
import os
import signal

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import syscall
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import barrier, caps, process
from ansible_collections.nsbox.runtime.tests.unit.plugins.module_utils._runtime.fakekernel import FakeKernel

PARENT = os.getpid()
NS = {'pid': None, 'net': None, 'uts': None, 'ipc': None}
A, B, C = 'caller/1', 'caller/1/1', 'caller/1/1/1'
TRUE = '/bin/true' if os.path.exists('/bin/true') else '/usr/bin/true'


@pytest.fixture
def kernel(tmp_path):
    fake = FakeKernel(real_fork=True)
    fake.label(str(tmp_path / 'rootfs'), '<root>')
    yield fake
    fake.cleanup()


@pytest.fixture
def stdio():
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    yield (null, null, null)
    os.close(null)


def spec_of(tmp_path, **extra):
    (tmp_path / 'rootfs').mkdir(exist_ok=True)
    spec = {'rootfs': str(tmp_path / 'rootfs'), 'args': [TRUE], 'namespaces': dict(NS), 'masked_paths': [], 'readonly_paths': []}
    spec.update(extra)
    return spec


def mounts_and_rest(calls):
    """B's record without the path resolutions (openat2) and the bounding-set drops (tested in test_launch_kernel)."""
    return [c for c in calls if c[0] != 'openat2' and not (c[0] == 'prctl' and c[1] == syscall.PR_CAPBSET_DROP)]


def test_start_is_a_handshake_of_three_processes(tmp_path, kernel, stdio):
    joined = []
    spec = spec_of(tmp_path, hostname='box', readonly_rootfs=True, capabilities=['CAP_KILL'], user={'uid': 1000, 'gid': 1000},
                   no_new_privs=True, sysctls={'net.ipv4.ip_forward': '1'}, oom_score_adj=100, umask=0o027)
    pid = process.start(spec, stdio, joined.append, timeout=20, kernel=kernel)
    assert joined == [pid] and kernel.role_of(pid) == B  # the cgroup got B, before it was let go
    assert kernel.calls == [('fork',), ('waitpid', A, 0)]
    assert kernel.record_of(A) == [('prctl', syscall.PR_SET_DUMPABLE, 0), ('unshare', syscall.CLONE_NEWPID), ('fork',), ('exit_process', 0)]
    calls = mounts_and_rest(kernel.record_of(B))
    assert [c[2] for c in calls[:3]] == [0, 1, 2] and {c[0] for c in calls[:3]} == {'dup2'}
    assert calls[3] == ('unshare', syscall.CLONE_NEWNET | syscall.CLONE_NEWUTS | syscall.CLONE_NEWIPC | syscall.CLONE_NEWNS)
    assert calls[4:10] == [('open', '/proc/sys/net/ipv4/ip_forward'), ('write', '/proc/sys/net/ipv4/ip_forward', b'1'),
                           ('close', '/proc/sys/net/ipv4/ip_forward'), ('open', '/proc/self/oom_score_adj'),
                           ('write', '/proc/self/oom_score_adj', b'100'), ('close', '/proc/self/oom_score_adj')]
    assert calls[10] == ('mount', None, '/', None, syscall.MS_SLAVE | syscall.MS_REC, None)  # mounts.prepare from here
    at = calls.index(('pivot_root', '.', '.'))
    assert calls[at - 1:] == [
        ('chdir', '<root>'), ('pivot_root', '.', '.'), ('umount', '.', syscall.MNT_DETACH), ('chdir', '/'),
        ('mount', None, '/', None, syscall.MS_REMOUNT | syscall.MS_BIND | syscall.MS_RDONLY, None),
        ('sethostname', 'box'),
        ('chdir', '/'),
        ('prctl', syscall.PR_SET_KEEPCAPS, 1), ('setgroups', []), ('setresgid', 1000, 1000, 1000), ('setresuid', 1000, 1000, 1000),
        ('capget',), ('capset', (1 << 41) - 1, (1 << 41) - 1, 0), ('prctl', syscall.PR_CAP_AMBIENT, syscall.PR_CAP_AMBIENT_CLEAR_ALL),
        ('capset', 0, 0, 0), ('prctl', syscall.PR_SET_KEEPCAPS, 0),
        ('prctl', syscall.PR_SET_NO_NEW_PRIVS, 1),
        ('umask', 0o027),
        ('execve', TRUE, [TRUE]),
    ]


def test_start_joins_given_namespaces_and_the_user_namespace_last(tmp_path, kernel, stdio):
    """Joined pid namespace: A enters it (setns, no unshare); B joins net, unshares the rest."""
    for name in ('pidns', 'netns'):
        (tmp_path / name).write_text('')
    ns = {'pid': str(tmp_path / 'pidns'), 'net': str(tmp_path / 'netns'), 'uts': None}
    kernel.label(str(tmp_path), '<tmp>')
    process.start(spec_of(tmp_path, namespaces=ns), stdio, lambda pid: None, timeout=20, kernel=kernel)
    assert kernel.record_of(A)[:2] == [('prctl', syscall.PR_SET_DUMPABLE, 0), ('setns', '<tmp>/pidns', syscall.CLONE_NEWPID)]
    calls = kernel.record_of(B)
    assert calls[0] == ('setns', '<tmp>/netns', syscall.CLONE_NEWNET)
    assert calls[4] == ('unshare', syscall.CLONE_NEWUTS | syscall.CLONE_NEWNS)


def test_start_with_a_barrier_waits_until_released(tmp_path, kernel, stdio):
    fifo = str(tmp_path / 'exec.fifo')
    os.mkfifo(fifo, 0o622)
    pid = process.start(spec_of(tmp_path), stdio, lambda p: None, timeout=20, barrier=fifo, kernel=kernel)
    assert process.process_stamp(pid) is not None  # B waits at the barrier: no record yet, it has not ended
    barrier.release(fifo, pid, timeout=20)
    assert kernel.record_of(B)[-1] == ('execve', TRUE, [TRUE])


def test_a_failing_mount_in_the_container_process_is_reported(tmp_path, kernel, stdio):
    kernel.fail('mount', errno.EPERM, nth=3, role=B)  # /proc
    with pytest.raises(process.ProcessError, match='mount proc on .*/rootfs/proc') as info:
        process.start(spec_of(tmp_path), stdio, lambda p: None, timeout=20, kernel=kernel)
    assert info.value.errno == errno.EPERM
    calls = kernel.record_of(B)
    assert calls[-2:] == [('mount', 'proc', '<root>/proc', 'proc', syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC, None),
                          ('exit_process', 127)]  # nothing after it: no pivot_root, no exec
    assert kernel.calls == [('fork',), ('waitpid', A, 0), ('waitpid', B, 0)]


def test_a_failing_cgroup_join_kills_the_container_process(tmp_path, kernel, stdio):
    """B exists (forked, waiting for "go") when the cgroup refuses it: the caller kills it and reports."""
    def refuse(pid):
        raise OSError(errno.EBUSY, 'busy')
    with pytest.raises(OSError):
        process.start(spec_of(tmp_path), stdio, refuse, timeout=20, kernel=kernel)
    assert kernel.calls == [('fork',), ('waitpid', A, 0), ('kill', B, signal.SIGKILL), ('waitpid', B, 0)]


def test_enter_joins_in_order_and_runs_the_command_in_a_grandchild(tmp_path, kernel, stdio, monkeypatch):
    """docker exec: A joins all but pid and user; B becomes the user and joins those; C (its child) execs.
    The target is this test's own process, taken for a container by its namespaces (the readers are faked)."""
    own = {'mnt': 1, 'net': 2, 'pid': 3, 'user': 4, 'uts': 5}
    theirs = {'mnt': 11, 'net': 12, 'pid': 13, 'user': 14, 'uts': 5}  # uts shared: not joined
    monkeypatch.setattr(process, 'proc_namespaces', lambda pid: own if pid == 'self' else theirs)
    kernel.exit_codes[TRUE] = 3
    joined = []
    spec = {'args': [TRUE], 'user': {'uid': 7, 'gid': 8, 'additional_gids': [9]}, 'capabilities': [], 'cwd': '/srv'}
    pid = process.enter(PARENT, spec, stdio, joined.append, timeout=20, kernel=kernel)
    assert process.wait_status(pid, kernel) == 3
    link = {t: os.readlink('/proc/self/ns/%s' % t) for t in ('mnt', 'net', 'pid', 'user')}
    assert kernel.record_of(A) == [('prctl', syscall.PR_SET_DUMPABLE, 0), ('setns', link['net'], syscall.CLONE_NEWNET),
                                   ('setns', link['mnt'], syscall.CLONE_NEWNS), ('fork',), ('waitpid', B, 0), ('exit_process', 3)]
    calls = mounts_and_rest(kernel.record_of(B))
    assert [c[0] for c in calls[:3]] == ['dup2'] * 3
    assert calls[3:] == [('setns', link['pid'], syscall.CLONE_NEWPID), ('setns', link['user'], syscall.CLONE_NEWUSER),
                         ('chdir', '/srv'), ('prctl', syscall.PR_SET_KEEPCAPS, 1), ('setgroups', [9]), ('setresgid', 8, 8, 8),
                         ('setresuid', 7, 7, 7), ('capget',), ('capset', (1 << 41) - 1, (1 << 41) - 1, 0),
                         ('prctl', syscall.PR_CAP_AMBIENT, syscall.PR_CAP_AMBIENT_CLEAR_ALL), ('capset', 0, 0, 0),
                         ('prctl', syscall.PR_SET_KEEPCAPS, 0), ('fork',), ('waitpid', C, 0), ('exit_process', 3)]
    assert kernel.record_of(C) == [('execve', TRUE, [TRUE])]
    assert [kernel.role_of(p) for p in joined] == [B]


def test_become_subreaper(kernel):
    process.become_subreaper(kernel)
    assert kernel.calls == [('prctl', syscall.PR_SET_CHILD_SUBREAPER, 1)]
    assert caps.DEFAULT  # the default set the specs above replace
