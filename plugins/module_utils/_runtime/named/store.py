# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named, persisted namespace sets: ``<state_dir>/ns/<name>/`` (kernel/namespaces.py says how a
namespace is persisted), and the *holder* that keeps a persisted pid namespace alive: a pause process
that is pid 1 inside, started by double fork + ``setsid`` + exec of the installed library
(``nsbox ns-hold``), recorded with its pid, process start time and boot id so that a dead or reused
pid is never taken for it. docs/design.md draws the whole handshake. The kernel is the store's ``kernel``
(syscall.py's :class:`~..kernel.syscall.Linux`; a recording fake in the unit tests).
"""
from __future__ import annotations

import contextlib
import errno as _errno
import os
import select
import signal
import socket

from ..errors import ConfigError, InstallError, NsboxError, SyscallError
from ..kernel import mountinfo, syscall
from ..kernel.syscall import LINUX
from ..kernel.fsutil import locked, read_json, write_json
from ..kernel.idmap import map_dicts, parse_id_map, parse_id_map_text
from ..kernel.namespaces import (
    CLONE, HOLDER_FILE, NAME_RE, SCHEMA_VERSION, TIMEOUT, TYPES, boot_id, _Channel, _error_to_wire, Holder, NamespaceError, parse_ns_link, persist,
    proc_namespaces, process_stamp, read_own_id_maps, _reap, run_in, unpersist, validate_name, validate_types, write_id_maps
)


# -- the holder: pid 1 of a persisted pid namespace -------------------------------------------
HOLDER_ENV = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8'}
# The holder (cli.cmd_ns_hold) says READY on its sync socket once its signal handlers are set,
# and holds on only when the creator answers COMMIT after persisting and recording it.
HOLDER_READY, HOLDER_COMMIT = b'R', b'C'


def _spawn_holder(argv, sock, kernel=LINUX):  # pragma: no cover - runs in a forked child
    """Fork the holder from the creator (which then exits: the double fork) and exec it."""
    pid = kernel.fork()
    if pid == 0:
        try:
            kernel.chdir('/')
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                kernel.dup2(null, fd)
            os.set_inheritable(sock.fileno(), True)
            kernel.execve(argv[0], argv, HOLDER_ENV)
        except BaseException as exc:  # pylint: disable=broad-except
            with contextlib.suppress(BaseException):
                sock.sendall(b'E' + ('exec %s: %s' % (argv[0], exc)).encode('utf-8', 'replace'))
        kernel.exit_process(127)
    return pid


def _creator_child(sock, flags, owner_fd, detach_root, holder_argv, hold_sock, kernel=LINUX):  # pragma: no cover - forked child
    """The creator (C in docs/design.md): unshare, wait for the maps, fork the holder, wait until persisted."""
    chan = _Channel(sock, 'nsbox')
    code = 0
    try:
        parent_mnt_id = _own_mnt_ns_id(kernel) if flags & syscall.CLONE_NEWNS else None
        if holder_argv:
            kernel.setsid()  # the holder gets a session of its own: no terminal, no group of the caller's
        if detach_root:
            # A first mount namespace of our own (still owned by the initial user namespace,
            # so the state dir's mount can be detached: in one owned by a new user namespace it
            # would be locked). The namespace created below copies this one, so it never
            # holds other names' persisted namespaces alive.
            kernel.unshare(syscall.CLONE_NEWNS)
            try:
                kernel.umount(detach_root, syscall.MNT_DETACH)
            except SyscallError as exc:
                if exc.errno != _errno.EINVAL:  # EINVAL: not a mount point here
                    raise
        if owner_fd is not None:
            kernel.setns(owner_fd, syscall.CLONE_NEWUSER, 'the user namespace the new ones belong to')
            os.close(owner_fd)
        kernel.unshare(flags)
        if flags & syscall.CLONE_NEWNS:
            _newer_mount_ns(parent_mnt_id, kernel)
        chan.send({'step': 'unshared'})
        chan.recv()
        holder = None
        if holder_argv:
            holder = _spawn_holder(holder_argv, hold_sock, kernel)
            hold_sock.close()
        chan.send({'step': 'ready', 'holder': holder})
        chan.recv(TIMEOUT * 2)
    except BaseException as exc:  # pylint: disable=broad-except
        code = 1
        with contextlib.suppress(BaseException):
            chan.send({'error': _error_to_wire(exc, 'the new namespaces')})
    kernel.exit_process(code)


def _own_mnt_ns_id(kernel=LINUX):
    fd = os.open('/proc/self/ns/mnt', os.O_RDONLY | os.O_CLOEXEC)
    try:
        return kernel.mnt_ns_id(fd)
    finally:
        os.close(fd)


def _newer_mount_ns(parent_id, kernel=LINUX):  # pragma: no cover - runs in the creator
    """Make sure the new mount namespace has a larger id than the persisting process's one.

    mount(2) refuses to bind a mount namespace whose id is not larger than the caller's own
    (its guard against reference loops: the namespace could hold itself). Since Linux 6.18
    namespace ids come from per-CPU batches, so a namespace made on one CPU can get a smaller
    id than an older one made on another: EINVAL at random (seen here in 2 of 6 runs). Retry
    the mount namespace alone (it stays owned by the same user namespace) on each CPU in turn
    until its id is larger; restore the affinity (the holder inherits it).
    """
    if parent_id is None or (_own_mnt_ns_id(kernel) or 0) > parent_id:
        return
    allowed = sorted(os.sched_getaffinity(0))
    try:
        for cpu in allowed + [c for c in range(os.cpu_count() or 1) if c not in allowed]:
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError:  # offline, or outside our cpuset
                continue
            kernel.unshare(syscall.CLONE_NEWNS)
            if _own_mnt_ns_id(kernel) > parent_id:
                return
    finally:
        os.sched_setaffinity(0, allowed)
    raise NamespaceError('create', 'a mount namespace that can be persisted',
                         'every new one got an id below %d, the id of the persisting mount namespace '
                         '(ids come from per-CPU batches)' % parent_id)


def _wait_holder(sock, name, timeout=TIMEOUT):
    what = 'the holder process of %s' % name
    if not select.select([sock], [], [], timeout)[0]:
        raise NamespaceError('start', what, 'it was not ready after %ds' % timeout)
    data = sock.recv(4096)
    if data == HOLDER_READY:
        return
    if data.startswith(b'E'):
        raise NamespaceError('start', what, data[1:].decode('utf-8', 'replace'))
    raise NamespaceError('start', what, 'it exited before it was ready')


class NamespaceState:
    """What one name has, read back from the kernel: live types with their inodes, files that
    are not (or no longer) usable namespaces, and its holder."""

    def __init__(self, name, directory):
        self.name, self.dir = name, directory
        self.types = {}       # type -> inode of a persisted, usable namespace
        self.stale = {}       # type -> why the file there is not one
        self.holder = None    # Holder record, or None
        self.holder_alive = False
        self.id_maps = None   # {'uid_map': [...], 'gid_map': [...]} when read

    @property
    def exists(self):
        return bool(self.types or self.stale or self.holder) or os.path.isdir(self.dir)

    def describe(self):
        out = {'name': self.name, 'path': self.dir, 'exists': self.exists,
               'types': {t: {'path': os.path.join(self.dir, t), 'inode': ino} for t, ino in sorted(self.types.items())},
               'holder': {'pid': self.holder.pid, 'start_time': self.holder.start_time} if self.holder_alive else None}
        if self.id_maps is not None:
            out.update(self.id_maps)
        return out


class NamespaceStore:
    """Named namespace sets under ``<state_dir>/ns``. Mutating calls are made under :meth:`lock`."""

    def __init__(self, state_dir, proc='/proc', mountinfo_path='/proc/self/mountinfo',
                 boot_id_path='/proc/sys/kernel/random/boot_id', library=None, kernel=LINUX):
        self.state_dir = os.path.realpath(state_dir)
        self.root = os.path.join(self.state_dir, 'ns')
        self.proc, self.mountinfo_path, self.boot_id_path = proc, mountinfo_path, boot_id_path
        self.library = library
        self.kernel = kernel

    def dir(self, name):
        return os.path.join(self.root, validate_name(name))

    def path(self, name, ns_type):
        return os.path.join(self.dir(name), ns_type)

    def names(self):
        try:
            return sorted(n for n in os.listdir(self.root) if NAME_RE.match(n) and os.path.isdir(os.path.join(self.root, n)))
        except FileNotFoundError:
            return []

    @contextlib.contextmanager
    def lock(self):
        """One lock for every name: creating takes ~0.1 s, and the root mount is shared by all."""
        try:
            if not os.path.isdir(self.state_dir):
                os.makedirs(self.state_dir, 0o711)
            with locked(os.path.join(self.state_dir, 'ns.lock')):
                yield
        except OSError as exc:
            raise NamespaceError.from_oserror('lock', 'the namespaces in %s' % self.root, exc)

    # -- inspect ---------------------------------------------------------------------------
    def inspect(self, name, with_maps=False):
        """The :class:`NamespaceState` of ``name`` (nothing is written)."""
        state = NamespaceState(name, self.dir(name))
        mounts = mountinfo.read(self.mountinfo_path)
        record = read_json(os.path.join(state.dir, HOLDER_FILE), 'the holder record of %s' % name, SCHEMA_VERSION)
        if record:
            state.holder = Holder.from_dict(record)
            state.holder_alive = bool(state.holder) and state.holder.alive(self.proc, self.boot_id_path)
        for ns_type in TYPES:
            path = os.path.join(state.dir, ns_type)
            why = self._check_file(path, ns_type, mountinfo.find(path, mounts=mounts), state)
            if isinstance(why, str):
                state.stale[ns_type] = why
            elif why is not None:
                state.types[ns_type] = why
        if state.holder and 'pid' not in state.types and 'pid' not in state.stale:
            state.stale['pid'] = 'a holder record without its pid namespace file'
        if with_maps and 'user' in state.types:
            state.id_maps = self.read_id_maps(name, state)
        return state

    def _check_file(self, path, ns_type, mnt, state):
        """The inode of a usable persisted namespace, a reason why it is not one, or None (no file)."""
        if mnt is None or mnt.fstype != 'nsfs':
            return 'a file without a namespace mounted on it' if os.path.lexists(path) else None
        try:
            kind, inode = parse_ns_link(mnt.root)
            if os.stat(path).st_ino != inode:
                return 'the mount table and stat disagree'
        except (NamespaceError, OSError) as exc:
            return 'unreadable (%s)' % exc
        if kind != ns_type:
            return 'holds a %s namespace' % kind
        if ns_type == 'pid':
            if not state.holder_alive:
                return 'its holder process is gone (a pid namespace ends with its pid 1)'
            if proc_namespaces(state.holder.pid, self.proc).get('pid') != inode:
                return 'its holder process %d is in another pid namespace' % state.holder.pid
        return inode

    def read_id_maps(self, name, state=None):
        """The uid/gid maps of the user namespace of ``name``: from its holder when it is in
        it, else from a child that joins it (a user namespace has no file of maps itself)."""
        state = state or self.inspect(name)
        inode = state.types.get('user')
        if inode is None:
            return None
        if state.holder_alive and proc_namespaces(state.holder.pid, self.proc).get('user') == inode:
            out = {}
            for kind in ('uid_map', 'gid_map'):
                try:
                    with open('%s/%d/%s' % (self.proc, state.holder.pid, kind)) as f:
                        out[kind] = map_dicts(parse_id_map_text(f.read()))
                except OSError as exc:
                    raise NamespaceError.from_oserror('read', 'the %s of %s' % (kind, name), exc)
            return out
        return run_in({'user': self.path(name, 'user')}, read_own_id_maps, kernel=self.kernel)

    # -- create ----------------------------------------------------------------------------
    def ensure_root(self):
        """Make ``<state_dir>/ns`` a mount point with private propagation (see the module doc)."""
        try:
            if not os.path.isdir(self.root):
                os.makedirs(self.root, 0o755)
        except OSError as exc:
            raise NamespaceError.from_oserror('create', 'the namespace directory %s' % self.root, exc)
        mnt = mountinfo.find(self.root, self.mountinfo_path)
        if mnt is None:
            self.kernel.mount(self.root, self.root, None, syscall.MS_BIND)
            self.kernel.mount(None, self.root, None, syscall.MS_PRIVATE | syscall.MS_REC)
        elif any(p.startswith(('shared:', 'master:')) for p in mnt.propagation):
            self.kernel.mount(None, self.root, None, syscall.MS_PRIVATE | syscall.MS_REC)

    def holder_argv(self, name):
        """The holder's command: the installed library (DESIGN D1), never the module's payload."""
        # Imported here: install pulls in hashlib and pkgutil, memory the holder need not carry.
        from ..host.install import library_argv  # pylint: disable=import-outside-toplevel
        try:
            return library_argv(['ns-hold', name], self.library, 'the holder process of %s' % name)
        except InstallError as exc:
            raise NamespaceError(exc.action, exc.obj, exc.cause, path=exc.path) from None

    def create(self, name, types, uid_map=None, gid_map=None):
        """Create and persist ``types`` for ``name``; returns {type: inode}. Call under :meth:`lock`.

        A name that already has a user namespace gets the new ones inside it (owned by it).
        Any failure undoes everything this call made: no file, mount or holder is left.
        """
        types = validate_types(types)
        uid_map, gid_map = parse_id_map(uid_map, 'uid_map'), parse_id_map(gid_map, 'gid_map')
        current = self.inspect(name)
        clash = [t for t in types if t in current.types or t in current.stale]
        if clash:
            raise NamespaceError('create', 'namespaces %s of %s' % (', '.join(clash), name), 'they exist already')
        if 'user' not in types and (uid_map or gid_map):
            raise ConfigError('validate', 'namespaces of %s' % name, 'uid_map and gid_map need the user type')
        if 'user' in types and current.types:
            raise NamespaceError('create', 'a user namespace for %s' % name, 'its namespaces %s exist already and would not belong '
                                 'to it: a user namespace is created together with the others' % ', '.join(sorted(current.types)))
        owner = self.path(name, 'user') if 'user' in current.types else None
        argv = self.holder_argv(name) if 'pid' in types else None
        self.ensure_root()
        made_dir = not os.path.isdir(self.dir(name))
        try:
            os.makedirs(self.dir(name), 0o755, exist_ok=True)
        except OSError as exc:
            raise NamespaceError.from_oserror('create', 'the directory of %s' % name, exc)
        progress = {'bound': [], 'holder': None}
        try:
            self._fork_and_persist(name, types, uid_map, gid_map, owner, argv, progress)
        except BaseException:
            self._undo(name, progress, made_dir)
            raise
        return {t: os.stat(self.path(name, t)).st_ino for t in types}

    def _fork_and_persist(self, name, types, uid_map, gid_map, owner, argv, progress):
        """The parent's side of the handshake drawn in docs/design.md; records in ``progress`` what it made."""
        flags = 0
        for ns_type in types:
            flags |= CLONE[ns_type]
        ctl, ctl_child = socket.socketpair()
        hold, hold_child = socket.socketpair() if argv else (None, None)
        if argv:
            argv = argv + ['--sync-fd', str(hold_child.fileno())]
        owner_fd = os.open(owner, os.O_RDONLY | os.O_CLOEXEC) if owner else None
        try:
            pid = self.kernel.fork()
            if pid == 0:  # pragma: no cover - the creator
                ctl.close()
                if hold:
                    hold.close()
                _creator_child(ctl_child, flags, owner_fd, self.root if 'mnt' in types else None, argv, hold_child, self.kernel)
        finally:
            ctl_child.close()
            if hold_child:
                hold_child.close()
            if owner_fd is not None:
                os.close(owner_fd)
        chan = _Channel(ctl, 'the creator of namespaces %s of %s' % (', '.join(types), name))
        try:
            chan.recv()
            if 'user' in types:
                self._write_maps(pid, name, uid_map, gid_map)
            chan.send({'step': 'mapped'})
            ready = chan.recv()
            holder = None
            if argv:
                stamp = process_stamp(ready['holder'], self.proc)
                if stamp is None:
                    raise NamespaceError('start', 'the holder process of %s' % name, 'it is gone')
                holder = progress['holder'] = Holder(ready['holder'], stamp[1], boot_id(self.boot_id_path), name)
                _wait_holder(hold, name)
            for ns_type in types:
                source = '%s/%d/ns/%s' % (self.proc, holder.pid if ns_type == 'pid' else pid,
                                          'time_for_children' if ns_type == 'time' else ns_type)
                self._bind(source, self.path(name, ns_type), ns_type, name)
                progress['bound'].append(ns_type)
            if holder:
                write_json(os.path.join(self.dir(name), HOLDER_FILE), holder.to_dict(), 0o644)
                hold.sendall(HOLDER_COMMIT)
            chan.send({'step': 'done'})
        finally:
            ctl.close()  # an unfinished creator reads EOF and exits; so does an uncommitted holder
            if hold:
                hold.close()
            _reap(pid, kernel=self.kernel)

    def _write_maps(self, pid, name, uid_map, gid_map):
        write_id_maps(pid, uid_map, gid_map, 'the user namespace of %s' % name, self.proc, self.kernel)

    def _bind(self, source, target, ns_type, name):
        persist(source, target, 'the %s namespace of %s' % (ns_type, name), self.kernel)

    def _undo(self, name, progress, made_dir):
        """Take back what a failed :meth:`create` made; errors here must not hide the first one."""
        for ns_type in progress['bound']:
            with contextlib.suppress(NsboxError, OSError):
                self._unbind(self.path(name, ns_type))
        if progress['holder'] is not None:
            with contextlib.suppress(NsboxError, OSError):
                self._kill_holder(progress['holder'])
                os.unlink(os.path.join(self.dir(name), HOLDER_FILE))
        if made_dir:
            with contextlib.suppress(OSError):
                os.rmdir(self.dir(name))
        with contextlib.suppress(NsboxError, OSError):
            self._release_root()

    # -- remove ----------------------------------------------------------------------------
    def _unbind(self, path):
        unpersist(path, self.mountinfo_path, self.kernel)

    def _kill_holder(self, holder, timeout=5.0):
        """SIGKILL the recorded holder (and so its whole pid namespace) and wait until it is gone.
        A pidfd pins the process between the identity check and the signal: a pid reused
        meanwhile is never hit."""
        try:
            pidfd = self.kernel.pidfd_open(holder.pid)
        except ProcessLookupError:
            return False
        except OSError as exc:
            raise NamespaceError.from_oserror('stop', 'the holder process %d' % holder.pid, exc)
        try:
            if not holder.alive(self.proc, self.boot_id_path):
                return False
            self.kernel.pidfd_send_signal(pidfd, signal.SIGKILL)
            if not select.select([pidfd], [], [], timeout)[0]:
                raise NamespaceError('stop', 'the holder process %d' % holder.pid, 'it is still there %ds after SIGKILL' % timeout)
        except ProcessLookupError:
            return False
        finally:
            os.close(pidfd)
        return True

    def remove_types(self, name, types, state=None):
        """Unpersist ``types`` of ``name`` (stale files too); ``pid`` also ends its holder. Under :meth:`lock`."""
        state = state or self.inspect(name)
        for ns_type in types:
            self._unbind(self.path(name, ns_type))
        if 'pid' in types and state.holder is not None:
            if state.holder_alive:
                self._kill_holder(state.holder)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(state.dir, HOLDER_FILE))

    def remove(self, name):
        """Unpersist every type of ``name``, end its holder, delete its directory. Under :meth:`lock`."""
        state = self.inspect(name)
        self.remove_types(name, [t for t in TYPES if t in state.types or t in state.stale or (t == 'pid' and state.holder)], state)
        try:
            os.rmdir(state.dir)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise NamespaceError.from_oserror('remove', 'the directory of %s' % name, exc)
        self._release_root()

    def _release_root(self):
        """With no name left, the root mount goes too: nothing of nsbox stays in the mount table."""
        if not self.names() and mountinfo.find(self.root, self.mountinfo_path) is not None:
            self.kernel.umount(self.root, syscall.MNT_DETACH)
