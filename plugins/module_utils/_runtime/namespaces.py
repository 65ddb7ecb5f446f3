# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Linux namespaces: create, persist, inspect, join and remove them by name.

A named set lives in ``<state_dir>/ns/<name>/``: one file per type, each a bind mount of
``/proc/<pid>/ns/<type>`` (as ``ip netns add`` does), so the namespace outlives every
process in it. ``<state_dir>/ns`` is a mount point of its own with *private* propagation:
a persisted mount namespace cannot be bound under a mount that propagates into that very
namespace (the kernel refuses: it would be a reference loop), and private also keeps our
bind mounts from spreading into other mount namespaces.

Nothing here changes the namespaces of the calling process (the Ansible worker): creating
is ``unshare`` in a forked child, joining is ``setns`` in a forked child that runs a
function and sends its result back (:func:`run_in`). A pid namespace dies with its pid 1,
so a persisted one has a *holder*: a pause process that is pid 1 inside, started by double
fork + ``setsid`` + exec of the installed library (``nsbox ns-hold``), recorded with its
pid, process start time and boot id so that a dead or reused pid is never taken for it.
docs/design.md draws the whole handshake.
"""
from __future__ import annotations

import contextlib
import errno as _errno
import importlib.util
import json
import os
import re
import select
import signal
import socket
import time

from . import mountinfo, syscall
from .errors import ConfigError, InstallError, NsboxError, SyscallError
from .fsutil import locked, read_json, write_json
from .idmap import format_id_map, map_dicts, parse_id_map, parse_id_map_text

TYPES = ('mnt', 'uts', 'ipc', 'net', 'pid', 'user', 'cgroup', 'time')
CLONE = {
    'mnt': syscall.CLONE_NEWNS, 'uts': syscall.CLONE_NEWUTS, 'ipc': syscall.CLONE_NEWIPC, 'net': syscall.CLONE_NEWNET,
    'pid': syscall.CLONE_NEWPID, 'user': syscall.CLONE_NEWUSER, 'cgroup': syscall.CLONE_NEWCGROUP, 'time': syscall.CLONE_NEWTIME,
}
# Joining as root of the initial user namespace: every other type first (root may enter a
# namespace owned by any descendant user namespace), the user namespace last (after it the
# process has no capability left over namespaces owned by the initial one). mnt late among
# the rest: paths were opened before any setns, and nothing after it resolves a host path.
JOIN_ORDER = ('cgroup', 'ipc', 'uts', 'net', 'pid', 'time', 'mnt', 'user')
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$')
HOLDER_FILE = 'holder.json'
SCHEMA_VERSION = 1
TIMEOUT = 30.0                # seconds for a child's or holder's answer
_NS_LINK_RE = re.compile(r'^([a-z_]+):\[(\d+)\]$')


class NamespaceError(NsboxError):
    """A namespace could not be created, persisted, joined, inspected or removed."""


# -- validation (pure: no kernel; the uid/gid maps are in idmap.py) ---------------------------
def validate_name(name):
    """A name is one path component: letters, digits, ``_.-``, at most 63 characters."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError('validate', 'namespace name %r' % (name,),
                          'use 1-63 letters, digits, "_", "." or "-", starting with a letter or digit (no "/")')
    return name


def validate_types(types):
    """The given types, deduplicated, in TYPES order; at least one."""
    if isinstance(types, str):
        types = [t.strip() for t in types.split(',')]
    if not types:
        raise ConfigError('validate', 'namespace types', 'give at least one of %s' % ', '.join(TYPES))
    bad = [t for t in types if t not in TYPES]
    if bad:
        raise ConfigError('validate', 'namespace types', 'unknown %s (known: %s)' % (', '.join(map(repr, bad)), ', '.join(TYPES)))
    return tuple(t for t in TYPES if t in types)


# -- readers of /proc (path parameters: testable on captured trees) ---------------------------
def parse_ns_link(text):
    """``net:[4026531840]`` (a /proc/<pid>/ns link, or the root of an nsfs mount) -> ('net', 4026531840)."""
    m = _NS_LINK_RE.match(text.strip())
    if not m:
        raise NamespaceError('read', 'namespace link %r' % text, 'expected "<type>:[<inode>]"')
    return m.group(1), int(m.group(2))


def proc_namespaces(pid='self', proc='/proc'):
    """{type: inode} of a process's namespaces (types the kernel has)."""
    out = {}
    for ns_type in TYPES:
        try:
            out[ns_type] = parse_ns_link(os.readlink('%s/%s/ns/%s' % (proc, pid, ns_type)))[1]
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise NamespaceError.from_oserror('read', 'the namespaces of process %s' % pid, exc)
    return out


def parse_stat(text):
    """/proc/<pid>/stat -> (state, start time in clock ticks since boot). The command name
    may hold spaces and parentheses, so fields are counted from its last ')'."""
    rest = text.rpartition(')')[2].split()
    if len(rest) < 20:
        raise NamespaceError('read', 'a process status line', 'too few fields in %r' % text[:80])
    return rest[0], int(rest[19])


def process_stamp(pid, proc='/proc'):
    """(state, start time) of ``pid``, or None when there is no such process."""
    try:
        with open('%s/%d/stat' % (proc, pid)) as f:
            return parse_stat(f.read())
    except (FileNotFoundError, ProcessLookupError):
        return None


def boot_id(path='/proc/sys/kernel/random/boot_id'):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as exc:
        raise NamespaceError.from_oserror('read', 'the boot id', exc)


class Holder:
    """The record of a holder process: pid + start time + boot id identify it for sure."""

    def __init__(self, pid, start_time, boot, name=None):
        self.pid, self.start_time, self.boot_id, self.name = pid, start_time, boot, name

    @classmethod
    def from_dict(cls, data):
        try:
            return cls(int(data['pid']), int(data['start_time']), str(data['boot_id']), data.get('name'))
        except (KeyError, TypeError, ValueError):
            return None

    def to_dict(self):
        return {'schema_version': SCHEMA_VERSION, 'pid': self.pid, 'start_time': self.start_time, 'boot_id': self.boot_id,
                'name': self.name}

    def alive(self, proc='/proc', boot_id_path='/proc/sys/kernel/random/boot_id'):
        """True only for the very process recorded: same boot, same pid, same start time, not a zombie."""
        if self.boot_id != boot_id(boot_id_path):
            return False
        stamp = process_stamp(self.pid, proc)
        return stamp is not None and stamp[1] == self.start_time and stamp[0] not in ('Z', 'X', 'x')


# -- a tiny message channel between a parent and its forked child -----------------------------
class _Channel:
    """JSON messages, one per line, over one end of a socketpair."""

    def __init__(self, sock, what):
        self.sock, self.what, self.buf = sock, what, b''

    def send(self, obj):
        self.sock.sendall(json.dumps(obj).encode() + b'\n')

    def recv(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while b'\n' not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                raise NamespaceError('wait for', self.what, 'no answer after %ds' % timeout)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise NamespaceError('wait for', self.what, 'it exited without answering')
            self.buf += chunk
        line, _sep, self.buf = self.buf.partition(b'\n')
        msg = json.loads(line.decode())
        if 'error' in msg:
            raise _error_from_wire(msg['error'])
        return msg


_WIRE_CLASSES = {cls.__name__: cls for cls in (NsboxError, NamespaceError, SyscallError, ConfigError)}


def _error_to_wire(exc, what):
    if isinstance(exc, NsboxError):
        return {'class': type(exc).__name__, 'action': exc.action, 'obj': exc.obj, 'cause': str(exc.cause),
                'path': exc.path, 'errno': exc.errno}
    return {'class': 'NamespaceError', 'action': 'run', 'obj': what, 'cause': '%s: %s' % (type(exc).__name__, exc),
            'path': None, 'errno': getattr(exc, 'errno', None)}


def _error_from_wire(data):
    cls = _WIRE_CLASSES.get(data.get('class'), NamespaceError)
    return cls(data.get('action', 'run'), data.get('obj', 'a child process'), data.get('cause', 'unknown error'),
               path=data.get('path'), errno=data.get('errno'))


def _reap(pid, timeout=TIMEOUT):
    """Wait for our own child ``pid``; SIGKILL it when it does not end in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return os.waitpid(pid, 0)[1]
        time.sleep(0.005)


# -- join: run a function in a forked child that has joined namespaces -----------------------
def run_in(namespaces, func, *args, timeout=TIMEOUT):
    """Call ``func(*args)`` in a forked child that joined ``namespaces`` ({type: path of a
    persisted file or /proc/<pid>/ns/<type>}) and return its result (JSON-able), or raise
    the error it raised, typed. The caller's own namespaces never change.

    With a pid namespace the function runs in a grandchild (setns on pid moves children
    only), which is then a member of that namespace, like ``nsenter --pid``.
    """
    what = '%s in namespaces %s' % (getattr(func, '__name__', 'a function'), ', '.join(sorted(namespaces)))
    bad = [t for t in namespaces if t not in TYPES]
    if bad:
        raise ConfigError('validate', 'namespaces to join', 'unknown types %s' % ', '.join(bad))
    fds = {}
    try:
        for ns_type in (t for t in JOIN_ORDER if t in namespaces):
            try:
                fds[ns_type] = os.open(namespaces[ns_type], os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise NamespaceError.from_oserror('open', 'the %s namespace to join' % ns_type, exc)
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            ours.close()
            _joined_child(theirs, fds, func, args, what)
        theirs.close()
    finally:
        for fd in fds.values():
            os.close(fd)
    chan = _Channel(ours, what)
    try:
        return chan.recv(timeout)['result']
    finally:
        ours.close()
        _reap(pid, 1.0)


def _joined_child(sock, fds, func, args, what):  # pragma: no cover - runs in a forked child
    """setns in JOIN_ORDER, then run (in a grandchild for pid), send {'result'} or {'error'}; always _exit."""
    chan = _Channel(sock, what)
    code = 0
    try:
        for ns_type, fd in fds.items():
            syscall.setns(fd, CLONE[ns_type], 'the %s namespace' % ns_type)
            os.close(fd)
        if 'pid' in fds:
            grandchild = os.fork()
            if grandchild != 0:
                status = os.waitpid(grandchild, 0)[1]
                os._exit(os.waitstatus_to_exitcode(status) & 0xff)  # pylint: disable=protected-access
        chan.send({'result': func(*args)})
    except BaseException as exc:  # pylint: disable=broad-except
        code = 1
        with contextlib.suppress(BaseException):
            chan.send({'error': _error_to_wire(exc, what)})
    os._exit(code)  # pylint: disable=protected-access


def write_id_maps(pid, uid_map, gid_map, what, proc='/proc'):
    """Write the maps of process ``pid``'s new user namespace from outside it: uid_map, then gid_map, each in
    one write (the kernel takes one). Root of the parent namespace may map any ids with setgroups left at
    "allow"; anyone else must deny setgroups(2) before writing a gid_map (user_namespaces(7)). Used for
    named namespaces (below) and for containers (userns.py)."""
    writes = [('uid_map', uid_map), ('gid_map', gid_map)]
    if gid_map and os.geteuid() != 0:
        writes.insert(1, ('setgroups', 'deny'))
    for kind, value in writes:
        if not value:
            continue
        text = value if isinstance(value, str) else format_id_map(value)  # 'deny' for setgroups
        try:
            fd = os.open('%s/%d/%s' % (proc, pid, kind), os.O_WRONLY | os.O_CLOEXEC)
            try:
                os.write(fd, text.encode())
            finally:
                os.close(fd)
        except OSError as exc:
            raise NamespaceError.from_oserror('write', 'the %s of %s' % (kind, what), exc)


# -- functions run inside joined namespaces ---------------------------------------------------
def read_own_id_maps():
    """Inside a user namespace: its maps as the parent namespace sees them."""
    out = {}
    for kind in ('uid_map', 'gid_map'):
        with open('/proc/self/%s' % kind) as f:
            out[kind] = [e.to_dict() for e in parse_id_map_text(f.read())]
    return out


def have_pyroute2():
    """Whether pyroute2 can be imported (without paying for the import)."""
    return importlib.util.find_spec('pyroute2') is not None


def loopback(bring_up=False):
    """Inside a net namespace: is ``lo`` up? Brings it up first when asked. pyroute2 is
    imported here only: this runs in a forked child, so the caller never pays for it."""
    try:
        from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise NamespaceError('bring up', 'the loopback interface',
                             'the Python library pyroute2 is missing (Debian: python3-pyroute2)') from None
    with IPRoute() as ipr:
        links = ipr.link_lookup(ifname='lo')
        if not links:
            raise NamespaceError('find', 'the loopback interface', 'no "lo" in this network namespace')
        if bring_up:
            ipr.link('set', index=links[0], state='up')
        flags = ipr.link('get', index=links[0])[0]['flags']
    return bool(flags & 1)  # IFF_UP


# -- the holder: pid 1 of a persisted pid namespace -------------------------------------------
HOLDER_ENV = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8'}
# The holder (cli.cmd_ns_hold) says READY on its sync socket once its signal handlers are set,
# and holds on only when the creator answers COMMIT after persisting and recording it.
HOLDER_READY, HOLDER_COMMIT = b'R', b'C'


def _spawn_holder(argv, sock):  # pragma: no cover - runs in a forked child
    """Fork the holder from the creator (which then exits: the double fork) and exec it."""
    pid = os.fork()
    if pid == 0:
        try:
            os.chdir('/')
            null = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(null, fd)
            os.set_inheritable(sock.fileno(), True)
            os.execve(argv[0], argv, HOLDER_ENV)
        except BaseException as exc:  # pylint: disable=broad-except
            with contextlib.suppress(BaseException):
                sock.sendall(b'E' + ('exec %s: %s' % (argv[0], exc)).encode('utf-8', 'replace'))
        os._exit(127)  # pylint: disable=protected-access
    return pid


def _creator_child(sock, flags, owner_fd, detach_root, holder_argv, hold_sock):  # pragma: no cover - forked child
    """The creator (C in docs/design.md): unshare, wait for the maps, fork the holder, wait until persisted."""
    chan = _Channel(sock, 'nsbox')
    code = 0
    try:
        parent_mnt_id = _own_mnt_ns_id() if flags & syscall.CLONE_NEWNS else None
        if holder_argv:
            os.setsid()  # the holder gets a session of its own: no terminal, no group of the caller's
        if detach_root:
            # A first mount namespace of our own (still owned by the initial user namespace,
            # so the state dir's mount can be detached: in one owned by a new user namespace it
            # would be locked). The namespace created below copies this one, so it never
            # holds other names' persisted namespaces alive.
            syscall.unshare(syscall.CLONE_NEWNS)
            try:
                syscall.umount(detach_root, syscall.MNT_DETACH)
            except SyscallError as exc:
                if exc.errno != _errno.EINVAL:  # EINVAL: not a mount point here
                    raise
        if owner_fd is not None:
            syscall.setns(owner_fd, syscall.CLONE_NEWUSER, 'the user namespace the new ones belong to')
            os.close(owner_fd)
        syscall.unshare(flags)
        if flags & syscall.CLONE_NEWNS:
            _newer_mount_ns(parent_mnt_id)
        chan.send({'step': 'unshared'})
        chan.recv()
        holder = None
        if holder_argv:
            holder = _spawn_holder(holder_argv, hold_sock)
            hold_sock.close()
        chan.send({'step': 'ready', 'holder': holder})
        chan.recv(TIMEOUT * 2)
    except BaseException as exc:  # pylint: disable=broad-except
        code = 1
        with contextlib.suppress(BaseException):
            chan.send({'error': _error_to_wire(exc, 'the new namespaces')})
    os._exit(code)  # pylint: disable=protected-access


def _own_mnt_ns_id():
    fd = os.open('/proc/self/ns/mnt', os.O_RDONLY | os.O_CLOEXEC)
    try:
        return syscall.mnt_ns_id(fd)
    finally:
        os.close(fd)


def _newer_mount_ns(parent_id):  # pragma: no cover - runs in the creator
    """Make sure the new mount namespace has a larger id than the persisting process's one.

    mount(2) refuses to bind a mount namespace whose id is not larger than the caller's own
    (its guard against reference loops: the namespace could hold itself). Since Linux 6.18
    namespace ids come from per-CPU batches, so a namespace made on one CPU can get a smaller
    id than an older one made on another: EINVAL at random (seen here in 2 of 6 runs). Retry
    the mount namespace alone (it stays owned by the same user namespace) on each CPU in turn
    until its id is larger; restore the affinity (the holder inherits it).
    """
    if parent_id is None or (_own_mnt_ns_id() or 0) > parent_id:
        return
    allowed = sorted(os.sched_getaffinity(0))
    try:
        for cpu in allowed + [c for c in range(os.cpu_count() or 1) if c not in allowed]:
            try:
                os.sched_setaffinity(0, {cpu})
            except OSError:  # offline, or outside our cpuset
                continue
            syscall.unshare(syscall.CLONE_NEWNS)
            if _own_mnt_ns_id() > parent_id:
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


class Unsharer:
    """A forked child that unshares ``stages`` (CLONE_* flags; 0: nothing) one after the other, the first at once and
    each next one on the caller's :meth:`next`, and holds what it made until :meth:`close` (SIGKILL and reap): the
    caller works on ``/proc/<pid>/ns/*`` between stages (writes a new user namespace's maps, opens or persists the
    namespaces). A context manager. A stage that fails raises ``error`` with the child's reason; nothing is left."""

    def __init__(self, stages, what, error=NsboxError):
        self.what, self.error = what, error
        up_r, up_w = os.pipe2(os.O_CLOEXEC)
        down_r, down_w = os.pipe2(os.O_CLOEXEC)
        self.pid = os.fork()
        if self.pid == 0:  # pragma: no cover - the child: never returns into the caller's code
            code = 0
            try:
                os.close(up_r)
                os.close(down_w)
                for index, flags in enumerate(stages):
                    if index and os.read(down_r, 1) != b'n':
                        break  # the caller gave up
                    if flags:
                        syscall.unshare(flags)
                    os.write(up_w, b'+')
                os.read(down_r, 1)  # EOF: the caller is done with us
            except BaseException as exc:  # pylint: disable=broad-except
                with contextlib.suppress(OSError):
                    os.write(up_w, b'E' + (exc.message if isinstance(exc, NsboxError) else str(exc)).encode('utf-8', 'replace'))
                code = 1
            os._exit(code)  # pylint: disable=protected-access
        os.close(up_w)
        os.close(down_r)
        self._up, self._down = up_r, down_w

    def ready(self):
        """Wait until the child has made the current stage."""
        data = os.read(self._up, 4096)
        if data[:1] != b'+':
            raise self.error('create', self.what, data[1:].decode('utf-8', 'replace') or 'its helper ended early')

    def next(self):
        """Let the child make the next stage, and wait until it has."""
        os.write(self._down, b'n')
        self.ready()

    def close(self):
        for fd in (self._up, self._down):
            with contextlib.suppress(OSError):
                os.close(fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# -- the persisted namespaces of a host --------------------------------------------------------
def persist(source, target, what):
    """Persist the namespace at ``source`` (/proc/<pid>/ns/<type>): an empty file at ``target`` with it
    bind-mounted on it (as ``ip netns add``). Nothing is left when it fails."""
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.close(fd)
    except OSError as exc:
        raise NamespaceError.from_oserror('persist', what, exc)
    try:
        syscall.mount(source, target, None, syscall.MS_BIND)
    except SyscallError as exc:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise NamespaceError('persist', what, exc.cause, path=target, errno=exc.errno)


def unpersist(path, mountinfo_path='/proc/self/mountinfo'):
    """Unmount every namespace stacked on ``path`` (a failed run may have left two), then unlink it."""
    for _attempt in range(16):
        if mountinfo.find(path, mountinfo_path) is None:
            break
        syscall.umount(path, syscall.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


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
                 boot_id_path='/proc/sys/kernel/random/boot_id', library=None):
        self.state_dir = os.path.realpath(state_dir)
        self.root = os.path.join(self.state_dir, 'ns')
        self.proc, self.mountinfo_path, self.boot_id_path = proc, mountinfo_path, boot_id_path
        self.library = library

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
        return run_in({'user': self.path(name, 'user')}, read_own_id_maps)

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
            syscall.mount(self.root, self.root, None, syscall.MS_BIND)
            syscall.mount(None, self.root, None, syscall.MS_PRIVATE | syscall.MS_REC)
        elif any(p.startswith(('shared:', 'master:')) for p in mnt.propagation):
            syscall.mount(None, self.root, None, syscall.MS_PRIVATE | syscall.MS_REC)

    def holder_argv(self, name):
        """The holder's command: the installed library (DESIGN D1), never the module's payload."""
        # Imported here: install pulls in hashlib and pkgutil, memory the holder need not carry.
        from .install import library_argv  # pylint: disable=import-outside-toplevel
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
            pid = os.fork()
            if pid == 0:  # pragma: no cover - the creator
                ctl.close()
                if hold:
                    hold.close()
                _creator_child(ctl_child, flags, owner_fd, self.root if 'mnt' in types else None, argv, hold_child)
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
            _reap(pid)

    def _write_maps(self, pid, name, uid_map, gid_map):
        write_id_maps(pid, uid_map, gid_map, 'the user namespace of %s' % name, self.proc)

    def _bind(self, source, target, ns_type, name):
        persist(source, target, 'the %s namespace of %s' % (ns_type, name))

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
        unpersist(path, self.mountinfo_path)

    def _kill_holder(self, holder, timeout=5.0):
        """SIGKILL the recorded holder (and so its whole pid namespace) and wait until it is gone.
        A pidfd pins the process between the identity check and the signal: a pid reused
        meanwhile is never hit."""
        try:
            pidfd = os.pidfd_open(holder.pid)
        except ProcessLookupError:
            return False
        except OSError as exc:
            raise NamespaceError.from_oserror('stop', 'the holder process %d' % holder.pid, exc)
        try:
            if not holder.alive(self.proc, self.boot_id_path):
                return False
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
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
            syscall.umount(self.root, syscall.MNT_DETACH)
