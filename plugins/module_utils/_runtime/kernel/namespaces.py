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

The kernel is reached through ``kernel`` (syscall.py's :class:`~.syscall.Linux`, a recording fake in the unit
tests): unshare, setns, the persisting bind mounts, fork/waitpid/kill of the helpers, the id map writes.
"""
from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import select
import signal
import socket
import time

from . import mountinfo, syscall
from .syscall import LINUX
from ..errors import ConfigError, NsboxError, SyscallError
from .idmap import format_id_map, parse_id_map_text

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
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z')
HOLDER_FILE = 'holder.json'
SCHEMA_VERSION = 1
TIMEOUT = 30.0                # seconds for a child's or holder's answer
_NS_LINK_RE = re.compile(r'^([a-z_]+):\[(\d+)\]\Z')


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


def _reap(pid, timeout=TIMEOUT, kernel=LINUX):
    """Wait for our own child ``pid``; SIGKILL it when it does not end in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, status = kernel.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return status
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                kernel.kill(pid, signal.SIGKILL)
            return kernel.waitpid(pid, 0)[1]
        time.sleep(0.005)


# -- join: run a function in a forked child that has joined namespaces -----------------------
def run_in(namespaces, func, *args, timeout=TIMEOUT, kernel=LINUX):
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
        pid = kernel.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            ours.close()
            _joined_child(theirs, fds, func, args, what, kernel)
        theirs.close()
    finally:
        for fd in fds.values():
            os.close(fd)
    chan = _Channel(ours, what)
    try:
        return chan.recv(timeout)['result']
    finally:
        ours.close()
        _reap(pid, 1.0, kernel)


def _joined_child(sock, fds, func, args, what, kernel=LINUX):  # pragma: no cover - runs in a forked child
    """setns in JOIN_ORDER, then run (in a grandchild for pid), send {'result'} or {'error'}; always _exit."""
    chan = _Channel(sock, what)
    code = 0
    try:
        for ns_type, fd in fds.items():
            kernel.setns(fd, CLONE[ns_type], 'the %s namespace' % ns_type)
            os.close(fd)
        if 'pid' in fds:
            grandchild = kernel.fork()
            if grandchild != 0:
                status = kernel.waitpid(grandchild, 0)[1]
                kernel.exit_process(os.waitstatus_to_exitcode(status) & 0xff)
        chan.send({'result': func(*args)})
    except BaseException as exc:  # pylint: disable=broad-except
        code = 1
        with contextlib.suppress(BaseException):
            chan.send({'error': _error_to_wire(exc, what)})
    kernel.exit_process(code)


def write_id_maps(pid, uid_map, gid_map, what, proc='/proc', kernel=LINUX):
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
            fd = kernel.open('%s/%d/%s' % (proc, pid, kind), os.O_WRONLY | os.O_CLOEXEC)
            try:
                kernel.write(fd, text.encode())
            finally:
                kernel.close(fd)
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


class Unsharer:
    """A forked child that unshares ``stages`` (CLONE_* flags; 0: nothing) one after the other, the first at once and
    each next one on the caller's :meth:`next`, and holds what it made until :meth:`close` (SIGKILL and reap): the
    caller works on ``/proc/<pid>/ns/*`` between stages (writes a new user namespace's maps, opens or persists the
    namespaces). A context manager. A stage that fails raises ``error`` with the child's reason; nothing is left."""

    def __init__(self, stages, what, error=NsboxError, kernel=LINUX):
        self.what, self.error, self.kernel = what, error, kernel
        up_r, up_w = os.pipe2(os.O_CLOEXEC)
        down_r, down_w = os.pipe2(os.O_CLOEXEC)
        self.pid = kernel.fork()
        if self.pid == 0:  # pragma: no cover - the child: never returns into the caller's code
            _unsharer_child(kernel, stages, (up_r, up_w), (down_r, down_w))
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
            self.kernel.kill(self.pid, signal.SIGKILL)
        self.kernel.waitpid(self.pid, 0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _unsharer_child(kernel, stages, up, down):  # pragma: no cover - the forked child of Unsharer
    """Each stage on the caller's word (``n``), reported with ``+`` (or ``E`` and why); then wait for EOF and end."""
    code = 0
    (up_r, up_w), (down_r, down_w) = up, down
    try:
        os.close(up_r)
        os.close(down_w)
        for index, flags in enumerate(stages):
            if index and os.read(down_r, 1) != b'n':
                break  # the caller gave up
            if flags:
                kernel.unshare(flags)
            os.write(up_w, b'+')
        os.read(down_r, 1)  # EOF: the caller is done with us
    except BaseException as exc:  # pylint: disable=broad-except
        with contextlib.suppress(OSError):
            os.write(up_w, b'E' + (exc.message if isinstance(exc, NsboxError) else str(exc)).encode('utf-8', 'replace'))
        code = 1
    kernel.exit_process(code)


# -- the persisted namespaces of a host --------------------------------------------------------
def persist(source, target, what, kernel=LINUX):
    """Persist the namespace at ``source`` (/proc/<pid>/ns/<type>): an empty file at ``target`` with it
    bind-mounted on it (as ``ip netns add``). Nothing is left when it fails."""
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444)
        os.close(fd)
    except OSError as exc:
        raise NamespaceError.from_oserror('persist', what, exc)
    try:
        kernel.mount(source, target, None, syscall.MS_BIND)
    except SyscallError as exc:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise NamespaceError('persist', what, exc.cause, path=target, errno=exc.errno)


def unpersist(path, mountinfo_path='/proc/self/mountinfo', kernel=LINUX):
    """Unmount every namespace stacked on ``path`` (a failed run may have left two), then unlink it."""
    for _attempt in range(16):
        if mountinfo.find(path, mountinfo_path) is None:
            break
        kernel.umount(path, syscall.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
