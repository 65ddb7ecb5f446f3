# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every ctypes/libc call of the runtime, in one place, behind one object: :class:`Linux`.

Python 3.9-3.11 (Debian 12 ships 3.11) has no ``os.unshare``/``os.setns``, and no
wrapper at all for statfs, mount or the new mount API, so the runtime reaches libc
through ctypes here and nowhere else. Each wrapper raises :class:`SyscallError`
carrying errno and path; the rest of the library reads as plain Python.

The kernel boundary (youki's ``Syscall`` trait): :class:`Linux`'s methods are the kernel operations
a runtime step performs: the ctypes calls of this file, and the ``os`` functions that belong to
those steps' sequences (fork, chdir, mknod, setresuid, kill, ...) as the ``os`` module's own
functions. Library code receives the object (a ``kernel`` parameter defaulting to :data:`LINUX`,
or an attribute of an object it already holds) and calls ``kernel.mount(...)``; the unit tests give
it a recording fake (tests/unit/.../fakekernel.py) and assert the exact sequence of calls. The real
object costs a bound-method call, nothing more: no dispatch layer, no per-call lookup of a table.
The module-level names (``mount = LINUX.mount`` ...) are the same bound methods, for the callers
that do not take a kernel yet (host facts, cgroup layout detection, the CLI's terminal).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import fcntl
import os
import platform
import signal
import socket
import stat
import struct

from ..errors import SyscallError

_libc = None

# statfs(2) f_type magic numbers (linux/magic.h)
FS_MAGIC = {
    0xEF53: 'ext4',
    0x58465342: 'xfs',
    0x9123683E: 'btrfs',
    0x01021994: 'tmpfs',
    0x794C7630: 'overlay',
    0x63677270: 'cgroup2',
    0x27E0EB: 'cgroup',
    0x2FC12FC1: 'zfs',
    0x6969: 'nfs',
    0x65735546: 'fuse',
}

# x86_64 and aarch64 (generic) numbers of syscalls glibc 2.36 has no wrapper for.
_SYSCALLS = {
    'x86_64': {'mount_setattr': 442, 'open_tree': 428, 'move_mount': 429, 'bpf': 321, 'pivot_root': 155, 'openat2': 437},
    'aarch64': {'mount_setattr': 442, 'open_tree': 428, 'move_mount': 429, 'bpf': 280, 'pivot_root': 41, 'openat2': 437},
}


def libc():
    global _libc  # pylint: disable=global-statement
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library('c') or 'libc.so.6', use_errno=True)
    return _libc


class _Statfs(ctypes.Structure):
    _fields_ = [
        ('f_type', ctypes.c_long), ('f_bsize', ctypes.c_long),
        ('f_blocks', ctypes.c_ulong), ('f_bfree', ctypes.c_ulong), ('f_bavail', ctypes.c_ulong),
        ('f_files', ctypes.c_ulong), ('f_ffree', ctypes.c_ulong),
        ('f_fsid', ctypes.c_int * 2), ('f_namelen', ctypes.c_long), ('f_frsize', ctypes.c_long),
        ('f_flags', ctypes.c_long), ('f_spare', ctypes.c_long * 4),
    ]


def _raise(action, obj, path=None):
    err = ctypes.get_errno()
    cause = os.strerror(err)
    if path is not None:
        cause = '%s (%s)' % (cause, path)
    raise SyscallError(action, obj, cause, path=path, errno=err)


def syscall_number(name):
    return _SYSCALLS.get(platform.machine(), {}).get(name)


# -- mount(2) / umount2(2) -------------------------------------------------------------------------
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 0x1, 0x2, 0x4, 0x8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE, MS_SLAVE, MS_SHARED = 0x20, 0x1000, 0x4000, 0x40000, 0x80000, 0x100000
MS_SYNCHRONOUS, MS_DIRSYNC, MS_NOATIME, MS_NODIRATIME = 0x10, 0x80, 0x400, 0x800
MS_UNBINDABLE, MS_RELATIME, MS_STRICTATIME = 0x20000, 0x200000, 0x1000000
MNT_DETACH = 0x2


# -- openat2(2): resolving a path inside a directory tree, by the kernel (Linux 5.6+) ----------------
RESOLVE_NO_XDEV, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS, RESOLVE_BENEATH, RESOLVE_IN_ROOT = 0x01, 0x02, 0x04, 0x08, 0x10


class _OpenHow(ctypes.Structure):
    _fields_ = [('flags', ctypes.c_uint64), ('mode', ctypes.c_uint64), ('resolve', ctypes.c_uint64)]


# -- namespaces: unshare(2), setns(2), the NS_GET_MNTNS_ID ioctl ---------------------------------
# Used by namespaces.py only, and only in forked children: a thread that unshares or joins
# changes the namespaces of its own process, which must never be the Ansible worker.
CLONE_NEWTIME = 0x00000080
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000


NS_GET_MNTNS_ID = 0x8008B705  # _IOR(NSIO 0xb7, 5, __u64): Linux 6.8+


# -- the container process: pivot_root(2), prctl(2), capget(2)/capset(2) ---------------------------
# Used by launch/process.py and caps.py in the forked container process only.
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ, PR_CAPBSET_DROP = 23, 24
PR_SET_CHILD_SUBREAPER, PR_GET_CHILD_SUBREAPER = 36, 37
PR_SET_NO_NEW_PRIVS, PR_GET_NO_NEW_PRIVS = 38, 39
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAP_VERSION_3 = 0x20080522


class _CapHeader(ctypes.Structure):
    _fields_ = [('version', ctypes.c_uint32), ('pid', ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [('effective', ctypes.c_uint32), ('permitted', ctypes.c_uint32), ('inheritable', ctypes.c_uint32)]


SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1


TIOCSPTLCK, TIOCGPTPEER = 0x40045431, 0x5441  # asm-generic/ioctls.h: unlock a pty; open its slave (Linux 4.13+)
PTMX_RDEV = os.makedev(5, 2)


# -- idmapped mounts: open_tree(2), mount_setattr(2), move_mount(2) (Linux 5.12+) -------------------
# Used by userns.py: a clone of a mount, given a user namespace's id mapping, attached elsewhere.
OPEN_TREE_CLONE = 0x1
AT_EMPTY_PATH, AT_RECURSIVE = 0x1000, 0x8000
MOUNT_ATTR_IDMAP = 0x00100000
MOVE_MOUNT_F_EMPTY_PATH = 0x4


class _MountAttr(ctypes.Structure):
    _fields_ = [('attr_set', ctypes.c_uint64), ('attr_clr', ctypes.c_uint64), ('propagation', ctypes.c_uint64),
                ('userns_fd', ctypes.c_uint64)]


def _new_mount_api(name):
    nr = syscall_number(name)
    if nr is None:
        raise SyscallError('use', '%s(2)' % name, 'no syscall number known for %s' % platform.machine(), errno=_errno.ENOSYS)
    return nr


class Linux:
    """The kernel as the runtime calls it (see the module docstring). One instance, :data:`LINUX`; tests give a
    recording fake of the same shape instead. Kernel operations that ``os`` wraps already are the ``os`` functions
    themselves (a builtin is no descriptor: ``LINUX.fork is os.fork``), so they cost nothing over calling ``os``."""

    mountinfo = '/proc/self/mountinfo'  # where the kernel shows this process's mount table

    # -- processes
    fork = os.fork
    exit_process = os._exit  # pylint: disable=protected-access
    waitpid = os.waitpid
    kill = os.kill
    pidfd_open = os.pidfd_open
    pidfd_send_signal = signal.pidfd_send_signal
    execve = os.execve
    setsid = os.setsid

    # -- the process's root, cwd, stdio and identity
    chdir = os.chdir
    dup2 = os.dup2
    setgroups = os.setgroups
    setresgid = os.setresgid
    setresuid = os.setresuid
    sethostname = socket.sethostname
    umask = os.umask

    # -- files the kernel reads as settings (/proc, id maps) and device nodes
    open = os.open
    write = os.write
    close = os.close
    mknod = os.mknod
    lchown = os.lchown
    fstat = os.fstat
    statvfs = os.statvfs

    def statfs_type(self, path):
        """The filesystem type of ``path`` as a name from FS_MAGIC, or ``0x<magic>``."""
        buf = _Statfs()
        if libc().statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
            _raise('statfs', path, path)
        magic = buf.f_type & 0xFFFFFFFF
        return FS_MAGIC.get(magic, '0x%x' % magic)

    def kernel_has_syscall(self, name):
        """True when the kernel implements ``name``: probe with invalid args, ENOSYS means no."""
        nr = syscall_number(name)
        if nr is None:
            return False
        # Every probed call takes a dirfd first: -1 gives EBADF where the call exists.
        res = libc().syscall(ctypes.c_long(nr), ctypes.c_int(-1), None, ctypes.c_uint(0), None, ctypes.c_size_t(0))
        return not (res == -1 and ctypes.get_errno() == _errno.ENOSYS)

    def mount(self, source, target, fstype, flags=0, data=None):
        """mount(2); ``data`` is the filesystem's option string (e.g. overlay's lowerdir=...)."""
        args = [None if v is None else os.fsencode(v) for v in (source, target, fstype)]
        if libc().mount(args[0], args[1], args[2], ctypes.c_ulong(flags), None if data is None else os.fsencode(data)) != 0:
            _raise('mount', '%s on %s' % (fstype or source, target), target)

    def umount(self, target, flags=0):
        """umount2(2); MNT_DETACH for a lazy unmount."""
        if libc().umount2(os.fsencode(target), ctypes.c_int(flags)) != 0:
            _raise('unmount', target, target)

    def openat2(self, dirfd, path, flags, resolve, mode=0):
        """openat2(2); returns the fd. SyscallError with errno ENOSYS where the kernel (or a seccomp filter) lacks it."""
        nr = syscall_number('openat2')
        if nr is None:
            raise SyscallError('use', 'openat2(2)', 'no syscall number known for %s' % platform.machine(), errno=_errno.ENOSYS)
        how = _OpenHow(flags, mode, resolve)
        res = libc().syscall(ctypes.c_long(nr), ctypes.c_int(dirfd), os.fsencode(path), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
        if res < 0:
            _raise('open', path, path)
        return res

    def bpf(self, cmd, attr, what):
        """bpf(2) with ``attr`` (a ctypes buffer holding the union bpf_attr); returns the result (an fd or 0)."""
        nr = syscall_number('bpf')
        if nr is None:
            raise SyscallError('use', 'bpf(2)', 'no syscall number known for %s' % platform.machine())
        res = libc().syscall(ctypes.c_long(nr), ctypes.c_int(cmd), ctypes.byref(attr), ctypes.c_uint(ctypes.sizeof(attr)))
        if res < 0:
            _raise('bpf', what)
        return res

    def unshare(self, flags):
        """unshare(2): move the calling process into new namespaces (pid and time: its children)."""
        if libc().unshare(ctypes.c_int(flags)) != 0:
            _raise('unshare', 'namespaces (flags 0x%x)' % flags)

    def setns(self, fd, nstype=0, what='a namespace'):
        """setns(2): join the namespace ``fd`` refers to (an open /proc/<pid>/ns/* or persisted file)."""
        if libc().setns(ctypes.c_int(fd), ctypes.c_int(nstype)) != 0:
            _raise('join', what)

    def mnt_ns_id(self, fd):
        """The 64-bit id of the mount namespace ``fd`` refers to; None where the kernel has no
        NS_GET_MNTNS_ID (those kernels number mount namespaces in creation order anyway)."""
        buf = ctypes.c_uint64()
        if libc().ioctl(ctypes.c_int(fd), ctypes.c_ulong(NS_GET_MNTNS_ID), ctypes.byref(buf)) != 0:
            if ctypes.get_errno() in (_errno.ENOTTY, _errno.EINVAL, _errno.EOPNOTSUPP):
                return None
            _raise('read', 'the id of a mount namespace')
        return buf.value

    def pivot_root(self, new_root, put_old):
        """pivot_root(2) (glibc has no wrapper): ``pivot_root('.', '.')`` stacks the old root on the new one."""
        nr = syscall_number('pivot_root')
        if nr is None:
            raise SyscallError('use', 'pivot_root(2)', 'no syscall number known for %s' % platform.machine())
        if libc().syscall(ctypes.c_long(nr), os.fsencode(new_root), os.fsencode(put_old)) != 0:
            _raise('pivot_root to', new_root, new_root)

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0, what='a process attribute'):
        """prctl(2); returns its (non-negative) result."""
        args = [ctypes.c_ulong(a) for a in (arg2, arg3, arg4, arg5)]
        res = libc().prctl(ctypes.c_int(option), *args)
        if res < 0:
            _raise('set', what)
        return res

    def capget(self):
        """The calling thread's (effective, permitted, inheritable) capability sets as 64-bit masks."""
        header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
        if libc().capget(ctypes.byref(header), data) != 0:
            _raise('read', 'the capabilities of this process')
        return tuple(getattr(data[0], k) | getattr(data[1], k) << 32 for k in ('effective', 'permitted', 'inheritable'))

    def capset(self, effective, permitted, inheritable):
        """Set the calling thread's capability sets (64-bit masks)."""
        header, data = _CapHeader(_CAP_VERSION_3, 0), (_CapData * 2)()
        for i in (0, 1):
            data[i].effective = (effective >> (32 * i)) & 0xFFFFFFFF
            data[i].permitted = (permitted >> (32 * i)) & 0xFFFFFFFF
            data[i].inheritable = (inheritable >> (32 * i)) & 0xFFFFFFFF
        if libc().capset(ctypes.byref(header), data) != 0:
            _raise('set', 'the capabilities of this process')

    def link_up(self, name):
        """Set interface ``name`` of the current net namespace up: two ioctls on a socket (struct
        ifreq: 16-byte name, short flags, padding to 40 bytes) — no netlink library to import."""
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                req = struct.pack('16sh22x', os.fsencode(name), 0)
                flags = struct.unpack('16sh22x', fcntl.ioctl(sock, SIOCGIFFLAGS, req))[1]
                fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack('16sh22x', os.fsencode(name), flags | IFF_UP))
        except OSError as exc:
            raise SyscallError.from_oserror('bring up', 'interface %s' % name, exc) from None

    def open_pty(self, ptmx='/dev/ptmx'):
        """(master, slave) of a new pseudo-terminal from the multiplexer at ``ptmx``, both O_CLOEXEC.

        Given a devpts instance's ``ptmx`` (a container's ``/proc/<pid>/root/dev/pts/ptmx``), the pair
        belongs to that instance: the slave is a ``/dev/pts/N`` inside the container, so ``tty`` there
        names it. The slave comes from TIOCGPTPEER, never from a path the container could swap.
        """
        try:
            master = os.open(ptmx, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError as exc:
            raise SyscallError.from_oserror('open', 'the pseudo-terminal multiplexer %s' % ptmx, exc) from None
        try:
            st = os.fstat(master)
            if not stat.S_ISCHR(st.st_mode) or st.st_rdev != PTMX_RDEV:
                raise SyscallError('use', 'pseudo-terminal multiplexer %s' % ptmx, 'it is not the ptmx device (5:2)', errno=_errno.ENOTTY)
            os.set_blocking(master, True)
            fcntl.ioctl(master, TIOCSPTLCK, struct.pack('i', 0))
            slave = fcntl.ioctl(master, TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            os.close(master)
            raise SyscallError.from_oserror('open', 'a pseudo-terminal of %s' % ptmx, exc) from None
        except SyscallError:
            os.close(master)
            raise
        return master, slave

    def open_tree_clone(self, path, recursive=True):
        """open_tree(2) with OPEN_TREE_CLONE: a detached copy of the mount at ``path`` (O_CLOEXEC fd)."""
        flags = OPEN_TREE_CLONE | os.O_CLOEXEC | (AT_RECURSIVE if recursive else 0)
        res = libc().syscall(ctypes.c_long(_new_mount_api('open_tree')), ctypes.c_int(-100), os.fsencode(path), ctypes.c_uint(flags))
        if res < 0:
            _raise('clone', 'the mount at %s' % path, path)
        return res

    def mount_setattr_idmap(self, fd, userns_fd, recursive=True, what='a mount'):
        """mount_setattr(2) MOUNT_ATTR_IDMAP on the detached mount ``fd``: ids seen through it are mapped
        as ``userns_fd``'s user namespace maps them."""
        attr = _MountAttr(MOUNT_ATTR_IDMAP, 0, 0, userns_fd)
        flags = AT_EMPTY_PATH | (AT_RECURSIVE if recursive else 0)
        if libc().syscall(ctypes.c_long(_new_mount_api('mount_setattr')), ctypes.c_int(fd), b'', ctypes.c_uint(flags),
                          ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr))) != 0:
            _raise('idmap', what)

    def move_mount_fd(self, fd, target):
        """move_mount(2) of the detached mount ``fd`` onto ``target``."""
        if libc().syscall(ctypes.c_long(_new_mount_api('move_mount')), ctypes.c_int(fd), b'', ctypes.c_int(-100), os.fsencode(target),
                          ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)) != 0:
            _raise('attach', 'a mount on %s' % target, target)


LINUX = Linux()
# The same bound methods under their old names, for the callers that take no kernel (module docstring).
statfs_type = LINUX.statfs_type
kernel_has_syscall = LINUX.kernel_has_syscall
mount = LINUX.mount
umount = LINUX.umount
openat2 = LINUX.openat2
bpf = LINUX.bpf
unshare = LINUX.unshare
setns = LINUX.setns
mnt_ns_id = LINUX.mnt_ns_id
pivot_root = LINUX.pivot_root
prctl = LINUX.prctl
capget = LINUX.capget
capset = LINUX.capset
link_up = LINUX.link_up
open_pty = LINUX.open_pty
open_tree_clone = LINUX.open_tree_clone
mount_setattr_idmap = LINUX.mount_setattr_idmap
move_mount_fd = LINUX.move_mount_fd
