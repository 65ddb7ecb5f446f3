# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the container process mounts in its fresh mount namespace before pivot_root.

``prepare(spec)`` runs in the forked container process (process.py), after it unshared its
mount namespace and while it still sees the host's tree: it makes every mount private to the
container (``/`` rslave first, so nothing propagates back to the host), binds the rootfs onto
itself (pivot_root needs a mount point) and mounts, in the rootfs: /proc, /sys (+ cgroup2 on
a pure v2 host), /dev (tmpfs, nodes, symlinks, pts, shm, mqueue), the user's mounts in their
order (the caller sorts them, parents first, as Docker does), the init binary at /dev/init,
the extra device nodes of the spec (OCI's linux.devices), then Docker's masked and read-only paths.

Every target goes through :func:`secure_join`: an image is untrusted and may plant symlinks
(``/etc -> /``, ``../../..``) so that a mount would land on the host; targets are resolved as
if the rootfs were ``/``. Nothing else runs in the rootfs while this happens (the container's
own process is the one mounting), so there is no race to swap a component in between.

Every kernel call goes through ``kernel`` (kernel/syscall.py's :class:`Linux`; a recording fake in the unit
tests): mounts, openat2, statvfs of a mount's flags, device nodes. Resolving a path (lstat, readlink) and
making mount targets (mkdir, an empty file, /dev's symlinks) are plain file work on the rootfs.
"""
from __future__ import annotations

import errno
import os
import stat

from ..kernel import syscall
from ..kernel.syscall import LINUX
from ..errors import ConfigError, NsboxError

# Docker's lists (moby oci/defaults.go), plus /proc/interrupts (per-CPU interrupt counts of the host's devices,
# which newer Docker masks too).
MASKED_PATHS = (
    '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
    '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
)
READONLY_PATHS = ('/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger')

DEV_NODES = (('null', 1, 3), ('zero', 1, 5), ('full', 1, 7), ('random', 1, 8), ('urandom', 1, 9), ('tty', 5, 0))
DEV_LINKS = (('fd', '/proc/self/fd'), ('stdin', '/proc/self/fd/0'), ('stdout', '/proc/self/fd/1'),
             ('stderr', '/proc/self/fd/2'), ('ptmx', 'pts/ptmx'), ('core', '/proc/kcore'))
MAX_SYMLINKS = 255

_NOSUID_NODEV_NOEXEC = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC
# option -> (flag, set it?)
_FLAG_OPTIONS = {
    'ro': (syscall.MS_RDONLY, True), 'rw': (syscall.MS_RDONLY, False),
    'nosuid': (syscall.MS_NOSUID, True), 'suid': (syscall.MS_NOSUID, False),
    'nodev': (syscall.MS_NODEV, True), 'dev': (syscall.MS_NODEV, False),
    'noexec': (syscall.MS_NOEXEC, True), 'exec': (syscall.MS_NOEXEC, False),
    'sync': (syscall.MS_SYNCHRONOUS, True), 'async': (syscall.MS_SYNCHRONOUS, False),
    'dirsync': (syscall.MS_DIRSYNC, True),
    'noatime': (syscall.MS_NOATIME, True), 'atime': (syscall.MS_NOATIME, False),
    'nodiratime': (syscall.MS_NODIRATIME, True), 'diratime': (syscall.MS_NODIRATIME, False),
    'relatime': (syscall.MS_RELATIME, True), 'norelatime': (syscall.MS_RELATIME, False),
    'strictatime': (syscall.MS_STRICTATIME, True), 'nostrictatime': (syscall.MS_STRICTATIME, False),
}
_PROPAGATION = {
    'private': syscall.MS_PRIVATE, 'rprivate': syscall.MS_PRIVATE | syscall.MS_REC,
    'slave': syscall.MS_SLAVE, 'rslave': syscall.MS_SLAVE | syscall.MS_REC,
    'shared': syscall.MS_SHARED, 'rshared': syscall.MS_SHARED | syscall.MS_REC,
    'unbindable': syscall.MS_UNBINDABLE, 'runbindable': syscall.MS_UNBINDABLE | syscall.MS_REC,
}
# statvfs f_flag bits -> MS_* (the same for the first few; relatime differs).
_ST_TO_MS = ((1, syscall.MS_RDONLY), (2, syscall.MS_NOSUID), (4, syscall.MS_NODEV), (8, syscall.MS_NOEXEC),
             (16, syscall.MS_SYNCHRONOUS), (1024, syscall.MS_NOATIME), (2048, syscall.MS_NODIRATIME),
             (4096, syscall.MS_RELATIME))


class MountError(NsboxError):
    """A container mount could not be made."""


# -- resolving targets inside the rootfs -------------------------------------------------------
def secure_join(root, path, max_symlinks=MAX_SYMLINKS):
    """``path`` resolved inside ``root`` as if ``root`` were ``/``: symlinks are followed with
    absolute targets restarting at ``root`` and ``..`` stopping at it, so the result is always
    ``root`` or below it. Components that do not exist are taken as plain names (a later mount
    creates them). ``root`` itself is not resolved (``/proc/<pid>/root`` works)."""
    root = os.path.abspath(root)
    todo = [p for p in reversed(path.split('/')) if p]
    done = []
    links = 0
    while todo:
        part = todo.pop()
        if part == '.':
            continue
        if part == '..':
            if done:
                done.pop()
            continue
        here = os.path.join(root, *done, part)
        try:
            mode = os.lstat(here).st_mode
        except (FileNotFoundError, NotADirectoryError):
            done.append(part)
            continue
        except OSError as exc:
            raise MountError.from_oserror('resolve', '%s in %s' % (path, root), exc) from None
        if not stat.S_ISLNK(mode):
            done.append(part)
            continue
        links += 1
        if links > max_symlinks:
            raise MountError('resolve', '%s in %s' % (path, root), 'too many levels of symbolic links', path=path, errno=errno.ELOOP)
        target = os.readlink(here)
        if target.startswith('/'):
            done = []
        todo.extend(p for p in reversed(target.split('/')) if p)
    return os.path.join(root, *done) if done else root


_RESOLVE = syscall.RESOLVE_IN_ROOT | syscall.RESOLVE_NO_SYMLINKS | syscall.RESOLVE_NO_MAGICLINKS
_openat2 = {'works': None}  # None: not tried yet in this process; then True or False


def open_in_root(root, path, kernel=LINUX):
    """An O_PATH fd of ``path`` (a :func:`secure_join` result: below ``root``, no symlink left in it), opened
    again without following any symlink: by the kernel (openat2 with RESOLVE_IN_ROOT and RESOLVE_NO_SYMLINKS)
    where it has openat2, else one component at a time with O_NOFOLLOW. A component that became a symlink
    since it was resolved (a swap by another process: a volume shared with another container) is refused, so
    a mount made through the fd (``/proc/self/fd/N``) lands exactly where it was resolved to, inside ``root``."""
    root = os.path.abspath(root)
    rel = os.path.relpath(path, root)
    if rel == '..' or rel.startswith('../') or os.path.isabs(rel):
        raise MountError('resolve', path, 'not below %s' % root, path=path)
    base = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    if rel == '.':
        return base
    try:
        if _openat2['works'] is not False:
            try:
                fd = kernel.openat2(base, rel, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, _RESOLVE)
                _openat2['works'] = True
                return _not_a_link(fd, path)
            except NsboxError as exc:
                if exc.errno not in (errno.ENOSYS, errno.EPERM) or _openat2['works']:
                    raise MountError('resolve', '%s in %s' % (path[len(root):] or '/', root),
                                     'a component is a symlink now (changed since it was resolved)' if exc.errno == errno.ELOOP else exc.cause,
                                     path=path, errno=exc.errno) from None
                _openat2['works'] = False  # no openat2 here (old kernel, or a seccomp filter refusing it)
        fd = os.dup(base)
        for part in rel.split('/'):
            try:
                nfd = os.open(part, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
            finally:
                os.close(fd)
            fd = _not_a_link(nfd, path)
        return fd
    except OSError as exc:
        raise MountError.from_oserror('resolve', '%s in %s' % (path[len(root):] or '/', root), exc) from None
    finally:
        os.close(base)


def _not_a_link(fd, path):
    if stat.S_ISLNK(os.fstat(fd).st_mode):
        os.close(fd)
        raise MountError('resolve', path, 'a component is a symlink now (changed since it was resolved)', path=path, errno=errno.ELOOP)
    return fd


def _mount(kernel, root, path, source, fstype, flags=0, data=None):
    """mount(2) onto ``path`` (inside ``root``) through an O_PATH fd of it (:func:`open_in_root`)."""
    fd = open_in_root(root, path, kernel)
    try:
        kernel.mount(source, '/proc/self/fd/%d' % fd, fstype, flags, data)
    except NsboxError as exc:
        raise MountError('mount', '%s on %s' % (fstype or source, path), exc.cause, path=path, errno=exc.errno) from None
    finally:
        os.close(fd)


def refuse_symlinked(root, names=('proc', 'sys', 'dev')):
    """The image's /proc, /sys and /dev must be directories (or absent): runtimes mount their own filesystems
    there, and an image that makes one a symlink (``/proc -> /``) asks for that mount somewhere else."""
    for name in names:
        path = os.path.join(root, name)
        if os.path.islink(path):
            raise MountError('mount', '/%s of the container' % name, 'the image makes /%s a symlink (to %r): refused, as runc does'
                             % (name, os.readlink(path)), path=path, errno=errno.ELOOP)


# -- options -----------------------------------------------------------------------------------
def parse_options(kind, options, readonly=False):
    """A mount's option list -> (flags, data string or None, propagation flags).

    bind: 'bind' (this mount only) or 'rbind' (default, as Docker), flag options, a propagation
    (default rprivate, as Docker); anything else is an error. tmpfs: flag options (default
    nosuid,nodev,noexec as Docker's --tmpfs; 'exec' etc. lift them), the rest (size=, mode=,
    uid=, nr_inodes= ...) is the filesystem's data.
    """
    if kind not in ('bind', 'tmpfs'):
        raise ConfigError('parse', 'mount type %r' % (kind,), 'supported: bind, tmpfs')
    flags = syscall.MS_BIND | syscall.MS_REC if kind == 'bind' else _NOSUID_NODEV_NOEXEC
    data, propagation = [], syscall.MS_PRIVATE | syscall.MS_REC if kind == 'bind' else 0
    for option in options or ():
        if not isinstance(option, str):
            raise ConfigError('parse', 'mount option %r' % (option,), 'options are strings')
        if option in _FLAG_OPTIONS:
            bit, on = _FLAG_OPTIONS[option]
            flags = flags | bit if on else flags & ~bit
        elif option in _PROPAGATION:
            propagation = _PROPAGATION[option]
        elif kind == 'bind' and option in ('bind', 'rbind'):
            flags = flags | syscall.MS_REC if option == 'rbind' else flags & ~syscall.MS_REC
        elif kind == 'tmpfs' and option and option not in ('bind', 'rbind'):
            data.append(option)
        else:
            raise ConfigError('parse', 'mount option %r' % option, 'not an option of a %s mount' % kind)
    if readonly:
        flags |= syscall.MS_RDONLY
    return flags, (','.join(data) or None), propagation


def mount_flags_of(path, kernel=LINUX):
    """The MS_* per-mount flags the mount at ``path`` has now (kept when remounting a bind)."""
    have = kernel.statvfs(path).f_flag
    return sum(ms for st, ms in _ST_TO_MS if have & st)


# -- the steps ---------------------------------------------------------------------------------
def _make_target(path, is_dir):
    """Create a missing mount target: a directory, or an empty file for a file bind."""
    if os.path.lexists(path):
        return
    os.makedirs(os.path.dirname(path), 0o755, exist_ok=True)
    if is_dir:
        os.mkdir(path, 0o755)
    else:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))


def _target(root, target, is_dir=True):
    if not isinstance(target, str) or not target.startswith('/'):
        raise ConfigError('use', 'mount target %r' % (target,), 'a target is an absolute path in the container')
    path = secure_join(root, target)
    try:
        _make_target(path, is_dir)
    except OSError as exc:
        raise MountError.from_oserror('create', 'mount target %s' % target, exc) from None
    return path


def _remount(kernel, path, flags, what, root=None):
    """Bind-remount ``path`` with ``flags`` added to what it has (never loosen a host mount's flags); inside
    ``root``: through an fd of it, opened now (the mount on top, made just before)."""
    fd = open_in_root(root, path, kernel) if root is not None else None
    at = '/proc/self/fd/%d' % fd if fd is not None else path
    try:
        keep = mount_flags_of(at, kernel)
        kernel.mount(None, at, None, syscall.MS_REMOUNT | syscall.MS_BIND | keep | flags)
    except NsboxError as exc:
        raise MountError('remount', what, exc.cause, path=path, errno=exc.errno) from None
    finally:
        if fd is not None:
            os.close(fd)


def _bind(kernel, root, source, target, flags, propagation=0, is_dir=None):
    """Bind ``source`` (a host path) at ``target``; remount for ro/nosuid/... flags."""
    try:
        is_dir = os.path.isdir(source) if is_dir is None else is_dir
        if not os.path.exists(source):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), source)
    except OSError as exc:
        raise MountError.from_oserror('bind', '%s at %s' % (source, target), exc) from None
    path = _target(root, target, is_dir)
    _mount(kernel, root, path, source, None, syscall.MS_BIND | (flags & syscall.MS_REC))
    extra = flags & ~(syscall.MS_BIND | syscall.MS_REC)
    if extra:
        _remount(kernel, path, extra, target, root)
    if propagation:
        _mount(kernel, root, path, None, None, propagation)
    return path


def check_devices(items):
    """The spec's ``devices`` checked in the caller (a bad entry never reaches the forked child)."""
    out = []
    for dev in items or ():
        ok = isinstance(dev, dict) and dev.get('type') in ('c', 'b') and isinstance(dev.get('container'), str)
        ok = ok and all(isinstance(dev.get(k), int) and dev[k] >= 0 for k in ('major', 'minor', 'mode', 'uid', 'gid'))
        path = os.path.normpath(dev['container']) if ok else ''
        if not ok or not path.startswith('/dev/') or '\0' in path:
            raise ConfigError('use', 'device %r' % (dev,), 'a device is {container: /dev/..., type: c|b, major, minor, mode, uid, gid, host}')
        out.append(dict(dev, container=path))
    return out


def _make_node(kernel, dev, node):
    """Make ``node`` in the container's fresh /dev tmpfs (``dev``): parent directories as real directories
    (nothing there is a symlink: the links are made after the nodes, and a planted one is refused), the node
    with the host node's type, numbers, mode and owner; without CAP_MKNOD the host node is bound instead."""
    parts = node['container'].split('/')[2:]
    here = dev
    for part in parts[:-1]:
        here = os.path.join(here, part)
        if not os.path.lexists(here):
            os.mkdir(here, 0o755)
        elif not stat.S_ISDIR(os.lstat(here).st_mode):
            raise MountError('make', 'device %s' % node['container'], '%s is not a directory' % here, path=here)
    path = os.path.join(here, parts[-1])
    if os.path.lexists(path):
        os.unlink(path)  # a standard node given again: the given one wins, as Docker
    kind = stat.S_IFCHR if node['type'] == 'c' else stat.S_IFBLK
    try:
        kernel.mknod(path, kind | node['mode'], os.makedev(node['major'], node['minor']))
    except PermissionError:
        _bind(kernel, dev, node['host'], node['container'][len('/dev'):], syscall.MS_BIND, is_dir=False)
        return
    os.chmod(path, node['mode'])
    kernel.lchown(path, node['uid'], node['gid'])


def _mount_dev(kernel, root, shm_size=None, devices=()):
    dev = _target(root, '/dev')
    _mount(kernel, root, dev, 'tmpfs', 'tmpfs', syscall.MS_NOSUID | syscall.MS_STRICTATIME, 'mode=755,size=65536k')
    for name, major, minor in DEV_NODES:
        path = os.path.join(dev, name)
        try:
            kernel.mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor))
            os.chmod(path, 0o666)
        except PermissionError:  # no CAP_MKNOD here: bind the host's node instead, as runc does
            _bind(kernel, dev, '/dev/' + name, '/' + name, syscall.MS_BIND, is_dir=False)
    for node in devices:
        _make_node(kernel, dev, node)
    for name, target in DEV_LINKS:
        if (name == 'core' and not os.path.exists('/proc/kcore')) or os.path.lexists(os.path.join(dev, name)):
            continue  # no kcore; or a device given at that path
        os.symlink(target, os.path.join(dev, name))
    pts = _target(root, '/dev/pts')
    _mount(kernel, root, pts, 'devpts', 'devpts', syscall.MS_NOSUID | syscall.MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620,gid=5')
    shm = _target(root, '/dev/shm')
    _mount(kernel, root, shm, 'shm', 'tmpfs', _NOSUID_NODEV_NOEXEC, 'mode=1777,size=%d' % (shm_size or 64 << 20))
    mqueue = _target(root, '/dev/mqueue')
    _mount(kernel, root, mqueue, 'mqueue', 'mqueue', _NOSUID_NODEV_NOEXEC)


def _mount_sys(kernel, root, writable=False):
    """sysfs read-only; where the kernel refuses a fresh sysfs (it must belong to the net
    namespace's owner: e.g. a joined net namespace of another user namespace) the host's /sys
    is bound recursively instead, read-only. On a pure cgroup v2 host, cgroup2 read-only at
    /sys/fs/cgroup (the container's cgroup namespace is its root); v1/hybrid hosts get nothing
    there (Docker binds each v1 hierarchy; no consumer here needs them yet). ``writable``: read-write
    (privileged)."""
    path = _target(root, '/sys')
    ro = (0 if writable else syscall.MS_RDONLY) | _NOSUID_NODEV_NOEXEC
    try:
        _mount(kernel, root, path, 'sysfs', 'sysfs', ro)
    except NsboxError as exc:
        if exc.errno not in (errno.EPERM, errno.EACCES):
            raise
        _bind(kernel, root, '/sys', '/sys', syscall.MS_BIND | syscall.MS_REC | (0 if writable else syscall.MS_RDONLY), syscall.MS_SLAVE | syscall.MS_REC)
        return
    if kernel.statfs_type('/sys/fs/cgroup') == 'cgroup2':
        _mount(kernel, root, _target(root, '/sys/fs/cgroup'), 'cgroup2', 'cgroup2', ro | syscall.MS_RELATIME)


def _user_mount(kernel, root, mount):
    if not isinstance(mount, dict):
        raise ConfigError('use', 'mount %r' % (mount,), 'a mount is a dict with type, source, target')
    kind, target = mount.get('type'), mount.get('target')
    flags, data, propagation = parse_options(kind, mount.get('options'), bool(mount.get('readonly')))
    if kind == 'bind':
        source = mount.get('source')
        if not isinstance(source, str) or not source.startswith('/'):
            raise ConfigError('use', 'the source of mount %s' % target, 'a bind source is an absolute host path')
        _bind(kernel, root, source, target, flags, propagation)
    else:
        path = _target(root, target)
        _mount(kernel, root, path, mount.get('source') or 'tmpfs', 'tmpfs', flags, data)
        if propagation:
            _mount(kernel, root, path, None, None, propagation)


def mask(root, path, null, kernel=LINUX):
    """Hide ``path``: ``null`` (an O_PATH fd of the container's /dev/null, checked by :func:`open_null`) over a
    file, an empty read-only tmpfs over a directory; a missing path is skipped (not every kernel has every
    /proc file). The target through an fd of it: nothing planted can redirect the mount (CVE-2025-31133)."""
    host = secure_join(root, path)
    try:
        mode = os.stat(host).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return
    if stat.S_ISDIR(mode):
        _mount(kernel, root, host, 'tmpfs', 'tmpfs', syscall.MS_RDONLY)
    else:
        _mount(kernel, root, host, '/proc/self/fd/%d' % null, None, syscall.MS_BIND)


def open_null(root, kernel=LINUX):
    """An O_PATH fd of the container's /dev/null, refused unless it is the real one (character device 1:3):
    masking binds it over files, and a /dev/null that is a symlink or another file would expose that instead."""
    fd = open_in_root(root, secure_join(root, '/dev/null'), kernel)
    st = kernel.fstat(fd)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise MountError('mask', 'paths with /dev/null', "the container's /dev/null is not the null device", path=os.path.join(root, 'dev/null'))
    return fd


def make_readonly(root, path, kernel=LINUX):
    """Bind ``path`` onto itself and remount it read-only (keeping its other flags); missing: skipped."""
    host = secure_join(root, path)
    if not os.path.exists(host):
        return
    fd = open_in_root(root, host, kernel)
    try:
        _mount(kernel, root, host, '/proc/self/fd/%d' % fd, None, syscall.MS_BIND | syscall.MS_REC)
    finally:
        os.close(fd)
    _remount(kernel, host, syscall.MS_RDONLY, path, root)


def prepare(spec, kernel=LINUX):
    """``spec``: the launch spec (launch/spec.Launch). Everything mounted before pivot_root (see the module docstring). Runs in the container
    process, in its own new mount namespace: never call it in a process that shares the host's."""
    root = spec.rootfs
    refuse_symlinked(root)
    kernel.mount(None, '/', None, syscall.MS_SLAVE | syscall.MS_REC)
    kernel.mount(root, root, None, syscall.MS_BIND | syscall.MS_REC)
    _mount(kernel, root, _target(root, '/proc'), 'proc', 'proc', _NOSUID_NODEV_NOEXEC)
    _mount_dev(kernel, root, spec.shm_size, spec.devices)
    _mount_sys(kernel, root, spec.writable_sys)
    for mount in spec.mounts:
        _user_mount(kernel, root, mount)
    if spec.init:
        _bind(kernel, root, spec.init, '/dev/init', syscall.MS_BIND | syscall.MS_RDONLY, is_dir=False)
    null = open_null(root, kernel)
    try:
        for path in spec.masked_paths:
            mask(root, path, null, kernel)
    finally:
        os.close(null)
    for path in spec.readonly_paths:
        make_readonly(root, path, kernel)


def remount_root_readonly(kernel=LINUX):
    """After pivot_root: the rootfs bind read-only (its other flags kept)."""
    _remount(kernel, '/', syscall.MS_RDONLY, 'the root filesystem')
