# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A recording fake of kernel/syscall.py's :class:`Linux` (youki's ``syscall/test.rs``, in Python).

Every kernel operation is recorded as a tuple ``(name, *arguments)`` in :attr:`FakeKernel.calls` and
answered with a plausible value; nothing reaches the kernel. Paths are recorded as the kernel would see
them: a ``/proc/self/fd/N`` target is resolved to the file the fd is open on, and a directory given to
:meth:`FakeKernel.label` (a test's rootfs in a tmp dir) is shown as its label, so a test asserts
``('mount', None, '<root>/proc', 'proc', flags, None)``.

Errors are injected with :meth:`FakeKernel.fail`: the n-th call of an operation raises what the real one
raises for that errno (SyscallError for a libc call, OSError for an ``os`` function). The failing call is
recorded too, so a test sees how far a sequence got and what it undid after.

Mount targets and device nodes live in a real tmp directory the test owns: mkdir, symlinks and empty files
are plain file work the library does itself; ``mknod`` makes an empty file and remembers the node's type and
numbers (``fstat`` answers with them), so a check such as "is /dev/null the null device" sees the device.
Processes, two ways. By default ``fork`` answers with pids from :attr:`FakeKernel.pids` (0: the caller runs the
child's branch in-process), ``exit_process`` and ``execve`` raise :class:`Exited` / :class:`Execd` (BaseException:
they end the branch as the real ones end the process), ``waitpid`` answers with :attr:`FakeKernel.statuses`.
With ``real_fork=True`` ``fork`` forks for real, so a handshake over pipes and sockets runs as it does in production
while every kernel call stays recorded: each process has a role (``caller``, its first child ``caller/1``, that
one's first child ``caller/1/1``), and a child writes its record to the fake's directory when it ends
(``exit_process``, or ``execve``, which ends it with :attr:`FakeKernel.exit_codes` of the program, after running
:attr:`FakeKernel.programs` of it: a stand-in for the program, such as a supervisor answering on its socket). A real
child's ``dup2`` is made for real (its own fds, as the rest of its code expects). Read a child's record with
:meth:`FakeKernel.record_of`; ``kill`` and ``waitpid`` show a child's pid as its role, and so do /proc/<pid>/ paths.

The mount table: with ``mountinfo=PATH`` the fake keeps a /proc/self/mountinfo of its own there (a line per mount,
the last one off per unmount), so code that reads the table back (by a path parameter) sees what it mounted: a bind
of ``/proc/<pid>/ns/<type>`` is an nsfs mount of that type, as the kernel shows it.
"""
from __future__ import annotations

import ctypes
import fcntl
import inspect
import os
import pickle
import re
import shutil
import struct
import tempfile
import time
import stat
import types

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import SyscallError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import syscall


class Exited(BaseException):
    """``exit_process(code)`` in the fake: the branch ends here, as the real process would."""

    def __init__(self, code):
        super().__init__(code)
        self.code = code


class Execd(BaseException):
    """``execve`` in the fake: the process would now be the command."""

    def __init__(self, path, args, env):
        super().__init__(path)
        self.path, self.args, self.env = path, list(args), dict(env)


def os_level():
    """The names of :class:`Linux`'s operations that are ``os`` functions (they raise OSError, not SyscallError)."""
    return {name for name, value in vars(syscall.Linux).items() if isinstance(value, types.BuiltinFunctionType)}


def operations():
    """Every public operation of the real kernel object."""
    return {name for name in dir(syscall.Linux) if not name.startswith('_')}


_FAKE_FD = 10000  # fds the fake hands out for files it opens itself (/proc settings, id maps)


class FakeKernel:  # pylint: disable=too-many-public-methods
    """Records; see the module docstring."""

    mountinfo = None  # a path: the fake's own mount table (see the module docstring)

    def __init__(self, pids=None, capabilities=None, fs_types=None, mount_flags=None, has_syscalls=True, real_fork=False,
                 mountinfo=None):
        self.calls = []
        if mountinfo:
            self.mountinfo = mountinfo
        if mountinfo and not os.path.exists(mountinfo):
            with open(mountinfo, 'w') as f:
                f.write('1 0 0:1 / / rw shared:1 - ext4 /dev/root rw\n')
        self.role, self.real_fork, self.exit_codes, self.programs = 'caller', real_fork, {}, {}
        self.dir = tempfile.mkdtemp(prefix='fakekernel-') if real_fork else None
        self._forks = 0
        self.pids = list(pids) if pids is not None else []
        self.statuses = {}
        self.capabilities = capabilities or ((1 << 41) - 1, (1 << 41) - 1, 0)
        self.fs_types = {'/sys/fs/cgroup': 'cgroup2'} if fs_types is None else dict(fs_types)
        self.mount_flags = mount_flags or {}
        self.has_syscalls = has_syscalls
        self.nodes = {}      # path -> (S_IF* | mode, rdev) made by mknod
        self.files = {}      # fake fd -> path, for files opened through the fake
        self.written = {}    # path -> [data, ...]
        self.cwd = '/'
        self._labels = []
        self._failures = {}  # (name, nth) -> errno
        self._counts = {}
        self._next_pid = 4000
        self._next_fd = _FAKE_FD
        self.bpf_attached = {}
        self._bpf_asked = None

    # -- the test's side -----------------------------------------------------------------------
    def label(self, path, name):
        """Show ``path`` (and what is below it) as ``name`` in the record."""
        self._labels.append((os.path.realpath(path), name))
        self._labels.sort(key=lambda item: -len(item[0]))

    def fail(self, name, err, nth=1, role='caller'):
        """The ``nth`` call of ``name`` (in the process of ``role``) raises the error ``err`` (an errno)."""
        self._failures[(role, name, nth)] = err

    def record_of(self, role, timeout=10.0):
        """The calls the (real) child ``role`` made, once it has ended."""
        path = os.path.join(self.dir, role.replace('/', '_') + '.calls')
        deadline = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise AssertionError('no record of %s: it has not ended' % role)
            time.sleep(0.01)
        with open(path, 'rb') as f:
            return pickle.load(f)

    def role_of(self, pid):
        try:
            with open(os.path.join(self.dir, 'pid-%d' % pid)) as f:
                return f.read()
        except (OSError, TypeError):
            return pid

    def cleanup(self):
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _end(self, code):
        """A real child ends: its record to the directory, then the process."""
        path = os.path.join(self.dir, self.role.replace('/', '_') + '.calls')
        with open(path + '.tmp', 'wb') as f:
            pickle.dump(self.calls, f)
        os.rename(path + '.tmp', path)
        os._exit(code)  # pylint: disable=protected-access

    def names(self):
        return [call[0] for call in self.calls]

    def only(self, *names):
        """The record of the given operations only, in order."""
        return [call for call in self.calls if call[0] in names]

    def shown(self, value):
        if isinstance(value, str) and self.real_fork:
            value = re.sub(r'^/proc/(\d+)/', lambda m: '/proc/<%s>/' % self.role_of(int(m.group(1))) if isinstance(self.role_of(int(m.group(1))), str)
                           else m.group(0), value)
        if isinstance(value, str):
            if value.startswith('/proc/self/fd/'):
                try:
                    value = os.readlink(value)
                except OSError:
                    pass
            for path, name in self._labels:
                if value == path or value.startswith(path + '/'):
                    return name + value[len(path):]
        return value

    def fd_path(self, fd):
        if fd in self.files:
            return self.shown(self.files[fd])
        try:
            return self.shown(os.readlink('/proc/self/fd/%d' % fd))
        except OSError:
            return fd

    def _record(self, name, *args):
        self.calls.append((name,) + tuple(self.shown(a) for a in args))
        self._counts[name] = self._counts.get(name, 0) + 1
        err = self._failures.pop((self.role, name, self._counts[name]), None)
        if err is not None:
            if name in os_level():
                raise OSError(err, os.strerror(err))
            path = args[1] if name == 'mount' else (args[0] if args and isinstance(args[0], str) else None)
            raise SyscallError(name, 'fake %s' % name, os.strerror(err), path=path, errno=err)

    # -- processes -----------------------------------------------------------------------------
    def fork(self):
        self._record('fork')
        if not self.real_fork:
            return self.pids.pop(0) if self.pids else self._new_pid()
        self._forks += 1
        role = '%s/%d' % (self.role, self._forks)
        pid = os.fork()
        if pid == 0:
            self.role, self.calls, self._counts, self._forks = role, [], {}, 0
        else:  # known to this process now, and to any other that learns the pid from it later
            with open(os.path.join(self.dir, '.pid-%d' % pid), 'w') as f:
                f.write(role)
            os.rename(os.path.join(self.dir, '.pid-%d' % pid), os.path.join(self.dir, 'pid-%d' % pid))
        return pid

    def _new_pid(self):
        self._next_pid += 1
        return self._next_pid

    def exit_process(self, code):
        self._record('exit_process', code)
        if self.real_fork and self.role != 'caller':
            self._end(code)
        raise Exited(code)

    def waitpid(self, pid, options):
        self._record('waitpid', self.role_of(pid) if self.real_fork else pid, options)
        if self.real_fork:
            return os.waitpid(pid, options)
        return pid, self.statuses.get(pid, 0)

    def kill(self, pid, sig):
        self._record('kill', self.role_of(pid) if self.real_fork else pid, sig)

    def pidfd_open(self, pid, flags=0):
        """A readable fd (a pipe's read end at EOF): the process "has ended" once signalled."""
        self._record('pidfd_open', self.role_of(pid) if self.real_fork else pid)
        read_end, write_end = os.pipe()
        os.close(write_end)
        return read_end

    def pidfd_send_signal(self, pidfd, sig, siginfo=None, flags=0):  # pylint: disable=unused-argument
        self._record('pidfd_send_signal', sig)

    def execve(self, path, args, env):
        self._record('execve', path, list(args))
        if self.real_fork and self.role != 'caller':
            _close_on_exec()  # as the real exec: what is O_CLOEXEC (pipes, locks, sockets of the caller) is gone
            program = self.programs.get(path)
            code = program(list(args), dict(env)) if program else None
            self._end(self.exit_codes.get(path, 0) if code is None else code)
        raise Execd(path, args, env)

    def setsid(self):
        self._record('setsid')
        return 1

    # -- the process's root, cwd, stdio and identity -------------------------------------------
    def chdir(self, path):
        self._record('chdir', path)
        self.cwd = path if isinstance(path, str) else self.cwd

    def dup2(self, fd, fd2, inheritable=True):
        self._record('dup2', fd, fd2)
        if self.real_fork and self.role != 'caller':  # a real child's own fds: done, as the rest of its code expects
            return os.dup2(fd, fd2, inheritable)
        return fd2

    def setgroups(self, groups):
        self._record('setgroups', list(groups))

    def setresgid(self, rgid, egid, sgid):
        self._record('setresgid', rgid, egid, sgid)

    def setresuid(self, ruid, euid, suid):
        self._record('setresuid', ruid, euid, suid)

    def sethostname(self, name):
        self._record('sethostname', name)

    def umask(self, mask):
        self._record('umask', mask)
        return 0o022

    # -- files the kernel reads as settings, device nodes --------------------------------------
    def open(self, path, flags, mode=0o777, *, dir_fd=None):  # pylint: disable=unused-argument
        self._record('open', path)
        self._next_fd += 1
        self.files[self._next_fd] = path
        return self._next_fd

    def write(self, fd, data):
        self._record('write', self.fd_path(fd), bytes(data))
        self.written.setdefault(self.files.get(fd, fd), []).append(bytes(data))
        return len(data)

    def close(self, fd):
        if fd in self.files:
            self._record('close', self.fd_path(fd))
            del self.files[fd]
        else:
            os.close(fd)

    def mknod(self, path, mode=0o600, device=0):
        self._record('mknod', path, mode, device)
        with open(path, 'x'):
            pass
        self.nodes[os.path.realpath(path)] = (mode, device)

    def lchown(self, path, uid, gid):
        self._record('lchown', path, uid, gid)

    def fstat(self, fd):
        st = os.fstat(fd)
        node = self.nodes.get(os.readlink('/proc/self/fd/%d' % fd))
        if node is None:
            return st
        return types.SimpleNamespace(st_mode=node[0], st_rdev=node[1], st_uid=st.st_uid, st_gid=st.st_gid, st_ino=st.st_ino, st_dev=st.st_dev)

    def statvfs(self, path):
        return types.SimpleNamespace(f_flag=self.mount_flags.get(self.shown(path), 0))

    # -- libc calls ----------------------------------------------------------------------------
    def statfs_type(self, path):
        return self.fs_types.get(path, 'ext4')

    def kernel_has_syscall(self, name):
        return self.has_syscalls is True or name in self.has_syscalls

    def mount(self, source, target, fstype, flags=0, data=None):
        self._record('mount', source, target, fstype, flags, data)
        self._table_add(source, target, fstype, flags, data)
        if flags & syscall.MS_BIND and source and not flags & syscall.MS_REMOUNT:  # a bound device node is seen at the target
            node = self.nodes.get(os.path.realpath(source))
            if node is None and os.path.exists(source) and stat.S_ISCHR(os.stat(source).st_mode):
                node = (os.stat(source).st_mode, os.stat(source).st_rdev)
            if node is not None:
                self.nodes[os.path.realpath(target)] = node

    def umount(self, target, flags=0):
        self._record('umount', target, flags)
        if self.mountinfo:
            with open(self.mountinfo) as f:
                lines = f.read().splitlines()
            at = [i for i, line in enumerate(lines) if line.split(' ')[4] == os.path.realpath(target)]
            if at:  # else a mount the table does not model (the old root after pivot_root)
                del lines[at[-1]]
            with open(self.mountinfo, 'w') as f:
                f.write(''.join(line + '\n' for line in lines))

    def _table_add(self, source, target, fstype, flags, data=None):
        if not self.mountinfo or flags & syscall.MS_REMOUNT:
            return
        point = os.path.realpath(os.readlink(target) if target.startswith('/proc/self/fd/') else target)
        with open(self.mountinfo) as f:
            lines = f.read().splitlines()
        if not flags & syscall.MS_BIND and not fstype:  # a propagation change
            for i, line in enumerate(lines):
                if line.split(' ')[4] == point:
                    fields = line.split(' ')
                    shared = 'shared:9' if flags & syscall.MS_SHARED else ('master:9' if flags & syscall.MS_SLAVE else '')
                    lines[i] = ' '.join(fields[:6] + ([shared] if shared else []) + fields[fields.index('-'):])
        else:
            root, kind = '/', fstype or 'none'
            ns = re.match(r'^/proc/[^/]+/ns/([a-z_]+)$', source or '')
            if ns:
                root, kind = '%s:[%d]' % (ns.group(1).replace('_for_children', ''), os.stat(target).st_ino), 'nsfs'
            lines.append('%d 1 0:%d %s %s rw - %s %s %s' % (len(lines) + 100, len(lines) + 100, root, point, kind, source or 'none', data or 'rw'))
        with open(self.mountinfo, 'w') as f:
            f.write(''.join(line + '\n' for line in lines))

    def openat2(self, dirfd, path, flags, resolve, mode=0):
        """Opens for real (the tree is the test's tmp dir): the library goes on working on the fd."""
        self._record('openat2', path, resolve)
        try:
            return os.open(path, flags, mode, dir_fd=dirfd)
        except OSError as exc:
            raise SyscallError('open', path, exc.strerror, path=path, errno=exc.errno) from None

    def bpf(self, cmd, attr, what):
        """PROG_LOAD and GET_FD_BY_ID answer with an fd (of /dev/null: the caller closes it); PROG_QUERY and
        OBJ_GET_INFO_BY_FD with the programs of :attr:`bpf_attached` ({id: name})."""
        self._record('bpf', cmd, what)
        if cmd == 13:
            self._bpf_asked = struct.unpack_from('<I', attr, 0)[0]
        if cmd in (5, 13):  # BPF_PROG_LOAD, BPF_PROG_GET_FD_BY_ID
            return os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        if cmd == 16:  # BPF_PROG_QUERY: the ids at the address in the attr, their count after it
            ids = sorted(self.bpf_attached)
            ctypes.memmove(struct.unpack_from('<Q', attr, 16)[0], struct.pack('<%dI' % len(ids), *ids), 4 * len(ids))
            struct.pack_into('<I', attr, 24, len(ids))
        elif cmd == 15:  # BPF_OBJ_GET_INFO_BY_FD: the name at offset 64 of the info buffer
            name = self.bpf_attached.get(self._bpf_asked, '').encode()
            ctypes.memmove(struct.unpack_from('<Q', attr, 8)[0] + 64, name, len(name))
        return 0

    def unshare(self, flags):
        self._record('unshare', flags)
        if flags & syscall.CLONE_NEWNS and self.mountinfo and self.real_fork and self.role != 'caller':
            private = os.path.join(self.dir, 'mountinfo-%s-%d' % (self.role.replace('/', '_'), self._counts['unshare']))  # a copy
            shutil.copyfile(self.mountinfo, private)
            self.mountinfo = private

    def setns(self, fd, nstype=0, what='a namespace'):  # pylint: disable=unused-argument
        self._record('setns', self.fd_path(fd), nstype)

    def mnt_ns_id(self, fd):
        self._record('mnt_ns_id', self.fd_path(fd))
        return None

    def pivot_root(self, new_root, put_old):
        self._record('pivot_root', new_root, put_old)

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0, what='a process attribute'):  # pylint: disable=unused-argument
        self._record('prctl', option, arg2)
        return 0

    def capget(self):
        self._record('capget')
        return self.capabilities

    def capset(self, effective, permitted, inheritable):
        self._record('capset', effective, permitted, inheritable)

    def link_up(self, name):
        self._record('link_up', name)

    def open_pty(self, ptmx='/dev/ptmx'):
        self._record('open_pty', ptmx)
        return os.openpty()

    def open_tree_clone(self, path, recursive=True):
        self._record('open_tree_clone', path, recursive)
        self._next_fd += 1
        self.files[self._next_fd] = 'clone of ' + path
        return self._next_fd

    def mount_setattr_idmap(self, fd, userns_fd, recursive=True, what='a mount'):  # pylint: disable=unused-argument
        self._record('mount_setattr_idmap', self.fd_path(fd), self.fd_path(userns_fd), recursive)

    def move_mount_fd(self, fd, target):
        self._record('move_mount_fd', self.fd_path(fd), target)


def _close_on_exec():
    for name in os.listdir('/proc/self/fd'):
        try:
            if fcntl.fcntl(int(name), fcntl.F_GETFD) & fcntl.FD_CLOEXEC:
                os.close(int(name))
        except OSError:
            pass


def same_shape():
    """Operations of the real object the fake lacks, and signatures that differ (a test asserts both empty)."""
    missing = sorted(operations() - set(dir(FakeKernel)))
    differ = []
    for name in sorted(n for n in operations() - os_level() if callable(getattr(syscall.Linux, n))):
        real, fake = inspect.signature(getattr(syscall.Linux, name)), inspect.signature(getattr(FakeKernel, name))
        if list(real.parameters) != list(fake.parameters):
            differ.append(name)
    return missing, differ
