# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The making of a container process: ``start()`` a new container init, ``enter()`` a running one.

The handshake is drawn in docs/container.md ("The process model"). In short, for ``start``:
the caller forks A; A enters the pid namespace (joins one or unshares a new one: that moves
only A's children), forks B and sends B's host pid up a pipe, then exits. The caller reaps A,
puts B in its cgroup (``join_cgroup(pid)``) and writes "go". B joins and unshares the other
namespaces, mounts (mounts.py), pivot_roots, sets hostname, cwd, user, capabilities and
no_new_privs, resets signals, closes fds and execs. Any failure in B is written as JSON on an
O_CLOEXEC error pipe; EOF without data means the exec happened.

**The caller of start() must be a child subreaper** (:func:`become_subreaper`) to get B's exit
status: A exits, so B is re-parented to the nearest subreaper (else to the host's init) and the
caller then ``waitpid``s it (:func:`wait_status`). ``enter()`` needs no subreaper: A stays, waits
for B and ends with B's status. Both fork: call them from a single-threaded process (a thread
holding a lock at fork time would leave it held in the child). The forked children never return
into the caller's code: they exec or ``os._exit``.

The spec is typed (launch/spec.py: a :class:`Launch` for ``start``, an :class:`Exec` for ``enter``;
a dict of its fields is checked into one). Its fields:

- ``rootfs``: absolute host path of the mounted root filesystem (a plain directory works too:
  it is bound onto itself); ``readonly_rootfs``: bool.
- ``args``: argv; ``args[0]`` without a '/' is looked up in the PATH of ``env`` inside the new
  root (Docker's default PATH when env has none), as execvpe. ``env``: list of "K=V".
- ``cwd``: absolute path in the container, made when missing (Docker's WORKDIR); default "/".
- ``user``: {uid, gid, additional_gids}; default root with no extra groups.
- ``hostname``: str or None (needs a new uts namespace).
- ``namespaces``: {type: None | path} for mnt, uts, ipc, net, pid, cgroup. Absent: stay in the
  caller's; None: a new one; a path (/proc/<pid>/ns/<type> or a persisted file): join it. mnt
  is always new (pivot_root in a shared mount namespace would move the host's root); a path for
  mnt is refused. ``loopback``: bring ``lo`` up in a new net namespace.
- ``mounts``: [{type: bind|tmpfs, source, target, readonly, options: [...]}] (mounts.py).
- ``init``: host path of a static init (catatonit) bound read-only at /dev/init, or None (the
  caller puts '/dev/init', '--' in args).
- ``capabilities``: names (caps.py), default Docker's 14; ``no_new_privs``: bool.
- ``seccomp``: a profile in Docker's format (seccomp.py) or None (unconfined). The filter is built
  for ``capabilities`` and loaded as the last step before exec (after no_new_privs; without
  no_new_privs, before the user switch, while the process still has CAP_SYS_ADMIN).
- ``masked_paths``, ``readonly_paths``: lists; Docker's when absent. ``writable_sys``: /sys read-write.
- ``shm_size``: bytes of the /dev/shm tmpfs (64 MiB when absent).
- ``devices``: [{container, type: c|b, major, minor, mode, uid, gid, host}] nodes made in /dev beside the fixed
  ones (devices.py: the ``devices`` option; oci/spec.py: OCI's linux.devices).
- ``sysctls``: {dotted name: value} written in the new namespaces before the mounts (the caller
  checked they are namespaced: net.*, IPC, kernel.domainname).
- ``oom_score_adj``: int or None; ``terminal``: stdin is a terminal that B makes its controlling
  one (a new session, TIOCSCTTY); for ``enter`` too (``exec -t``).
- ``rlimits``: [{name, soft, hard}] (-1 unlimited), set before the user is switched.
- ``userns``: None, or {uid_map, gid_map, rootfs: {method, overlay: {layers, options}}}: a user namespace
  (docs/container.md, "User namespaces"). The caller makes it with its maps, and the new net, ipc and uts
  namespaces inside it (userns.create); B joins those as root of the host, makes its mount namespace and
  mounts as before (``rootfs.method`` idmapped: the overlay again from idmapped layers, in B's own mount
  namespace), and joins the user namespace last, after pivot_root.
- ``umask``: int or None (inherited from the caller); set before the exec.

``enter`` takes args, env, cwd (not created: as ``docker exec -w``), user, capabilities,
no_new_privs, seccomp, rlimits, umask and terminal.

**The barrier** (``start(..., barrier=PATH)``; the OCI runtime's create/start split, as runc's
exec.fifo): B opens the FIFO at PATH (O_PATH) before pivot_root, does everything but the exec,
reports "ready" and blocks opening the FIFO for writing. ``start`` returns then: the init exists
in its namespaces and cgroup but has not exec'd the command. Whoever opens the FIFO for reading
(``barrier.release``) lets it go on to the exec; a signal ends it while it waits.

**The console socket** (``start``/``enter(..., console_socket=PATH)``; OCI's --console-socket, as runc):
the caller connects to the unix socket at PATH; B, inside the container (after pivot_root; for
enter, in its mount namespace), opens a pty from the container's own devpts (/dev/ptmx), makes
the slave its stdio and controlling terminal (owned by the process's user) and sends the master
over the socket (SCM_RIGHTS, the slave's name as the message). ``stdio`` is then not used.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import resource
import select
import signal
import socket
import termios
import time

from ..kernel import syscall, userns as userns_mod
from ..kernel.syscall import LINUX
from ..errors import ConfigError, NsboxError
from ..kernel.namespaces import JOIN_ORDER, proc_namespaces, process_stamp
from . import barrier, caps, mounts
from .spec import RLIMITS, Exec, Launch, abs_path
from . import seccomp as seccomp_profiles

DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
TIMEOUT = 60.0  # seconds from "go" to exec: mounts of a slow filesystem may take a while
_NS_FLAGS = {'mnt': syscall.CLONE_NEWNS, 'uts': syscall.CLONE_NEWUTS, 'ipc': syscall.CLONE_NEWIPC,
             'net': syscall.CLONE_NEWNET, 'pid': syscall.CLONE_NEWPID, 'cgroup': syscall.CLONE_NEWCGROUP,
             'time': syscall.CLONE_NEWTIME, 'user': syscall.CLONE_NEWUSER}
_GO = b'go'
_READY = barrier.READY  # B at the barrier (not JSON: an error report is)


class ProcessError(NsboxError):
    """The container process could not be made (raised in the caller, from the child's report)."""


def _need_seccomp(spec):
    if spec.seccomp is not None:
        seccomp_profiles.library()  # imported here, in the caller: a missing binding is a clear error, not a child's


def env_dict(env):
    """["K=V", ...] -> {K: V}; a later duplicate wins, as Docker does."""
    return dict(e.split('=', 1) for e in env)


def find_executable(name, env):
    """``name`` as execvpe finds it: as given when it holds a '/', else the first executable
    regular file in PATH of ``env`` (a dict). Runs in the container (after pivot_root and the
    user switch, so access is checked as the container's user)."""
    if '/' in name:
        if not os.path.isfile(name):  # found out now, not by the exec (with a barrier, that is after create returned)
            raise ProcessError.from_oserror('exec', name, FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), name))
        return name
    denied = None
    for directory in (env.get('PATH') or DEFAULT_PATH).split(':'):
        path = os.path.join(directory or '.', name)
        if os.path.isfile(path):
            if os.access(path, os.X_OK):
                return path
            denied = path
    if denied:
        raise ProcessError('exec', denied, 'permission denied', path=denied, errno=errno.EACCES)
    raise ProcessError('find', 'the command %s' % name, 'executable file not found in $PATH (%s)' % (env.get('PATH') or DEFAULT_PATH),
                       path=name, errno=errno.ENOENT)


def exit_code(status):
    """A waitpid status -> the exit code Docker reports: the code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    if os.WIFEXITED(status):
        return os.WEXITSTATUS(status)
    return 128 + os.WSTOPSIG(status)


def wait_status(pid, kernel=LINUX):
    """Wait for child ``pid`` and return its exit code (128 + signal for a signal)."""
    return exit_code(kernel.waitpid(pid, 0)[1])


def become_subreaper(kernel=LINUX):
    """Make the calling process a child subreaper: orphans below it (a container's init once its
    intermediate exits) become its children, so it can waitpid them for their real status."""
    kernel.prctl(syscall.PR_SET_CHILD_SUBREAPER, 1, what='the child subreaper attribute')


# -- the wire between the children and the caller ----------------------------------------------
def error_to_wire(exc):
    """An exception in a child -> JSON bytes for the error pipe."""
    if isinstance(exc, NsboxError):
        data = {'action': exc.action, 'obj': exc.obj, 'cause': str(exc.cause), 'errno': exc.errno, 'path': exc.path}
    elif isinstance(exc, OSError):
        err = ProcessError.from_oserror('start', 'the container process', exc)
        return error_to_wire(err)
    else:
        data = {'action': 'start', 'obj': 'the container process', 'cause': '%s: %s' % (type(exc).__name__, exc)}
    if isinstance(data.get('path'), bytes):
        data['path'] = os.fsdecode(data['path'])
    return json.dumps(data).encode()


def error_from_wire(data):
    """JSON bytes from the error pipe -> a ProcessError."""
    try:
        info = json.loads(data.decode('utf-8', 'replace'))
        return ProcessError(info['action'], info['obj'], info['cause'], path=info.get('path'), errno=info.get('errno'))
    except (ValueError, KeyError, TypeError):
        return ProcessError('start', 'the container process', 'unreadable report from the child: %r' % data[:200])


def _report(fd, exc):  # pragma: no cover - runs in a forked child
    try:
        os.write(fd, error_to_wire(exc))
    except BaseException:  # pylint: disable=broad-except
        pass


def _read_all(fd, timeout, what):
    """Read ``fd`` to EOF; ProcessError when it stays open past ``timeout`` seconds."""
    chunks, deadline = [], time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise ProcessError('start', what, 'no answer within %.0f s' % timeout, errno=errno.ETIMEDOUT)
        data = os.read(fd, 65536)
        if not data:
            return b''.join(chunks)
        chunks.append(data)


def _read_ready(fd, timeout, what):
    """With a barrier: the first report is "ready" (B waits at the barrier) or an error (read to EOF)."""
    if not select.select([fd], [], [], timeout)[0]:
        raise ProcessError('start', what, 'no answer within %.0f s' % timeout, errno=errno.ETIMEDOUT)
    data = os.read(fd, 65536)
    if data == _READY:
        return b''
    if data.startswith(_READY):
        data = data[len(_READY):]
    return data + _read_all(fd, timeout, what) if data else b''


def _reap(pid, kernel=LINUX):
    """waitpid when ``pid`` is our child (B only is when we are a subreaper); quiet otherwise."""
    try:
        kernel.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _kill(pid, kernel=LINUX):
    try:
        kernel.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid, kernel)


def _close(*fds):
    for fd in fds:
        if fd is not None and fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


# -- start ---------------------------------------------------------------------------------------
def _connect_console(path):
    """The connected console socket's fd (O_CLOEXEC), or None; connected here, in the caller, where PATH is visible."""
    if path is None:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        raise ProcessError.from_oserror('connect to', 'the console socket %s' % path, exc) from None
    return sock.detach()


def _console_pty(sock_fd, uid, kernel=LINUX):  # pragma: no cover - forked child
    """In the container's mount namespace: a pty of its own devpts; the slave becomes stdio and the controlling
    terminal of a new session, the master goes over the console socket."""
    master, slave = kernel.open_pty('/dev/ptmx')
    os.fchown(slave, uid, -1)
    for target in (0, 1, 2):
        kernel.dup2(slave, target, inheritable=True)
    _take_terminal(kernel)
    sock = socket.socket(fileno=sock_fd)
    try:
        socket.send_fds(sock, [b'/dev/ptmx'], [master])  # the message is informational (runc sends the slave's name)
    finally:
        sock.close()
        _close(master, slave)


def _fork_intermediate(body, spec, join, stdio, side, ends):
    """Fork A, the intermediate, with its three pipes: errors (A and B write, we read), the go-ahead (we write once the
    cgroup is joined) and B's pid; ``body`` runs in A and never returns. Every fd made is added to ``ends`` (closed by
    the caller whatever happens); ours are returned: (A's pid, (errors, go-ahead, pid)). The console socket (``side``)
    is A's now and closed here."""
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    ends += [err_r, err_w]
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    ends += [sync_r, sync_w]
    pid_r, pid_w = os.pipe2(os.O_CLOEXEC)
    ends += [pid_r, pid_w]
    intermediate = side['kernel'].fork()
    if intermediate == 0:  # pragma: no cover - runs in the child
        body(spec, join, stdio, err_r, err_w, sync_r, sync_w, pid_r, pid_w, side)
    _close(err_w, sync_r, pid_w, side['console'])
    return intermediate, (err_r, sync_w, pid_r)


def start(spec, stdio, join_cgroup, timeout=TIMEOUT, barrier=None, console_socket=None, kernel=LINUX):
    """Start a container's init (see the module docstring); returns its host pid once it has
    exec'd (with ``barrier``, the path of a FIFO: once it waits there, before the exec; ``console_socket``:
    see the module docstring). ``stdio``:
    three host fds that become its 0, 1, 2. ``join_cgroup(pid)`` puts it in its cgroup before it
    unshares the cgroup namespace or execs. Raises ProcessError (or ConfigError for a bad spec);
    nothing of the child is left then."""
    spec = Launch.of(spec)
    _need_seccomp(spec)
    if barrier is not None:
        abs_path(barrier, 'the start barrier')
    ns = spec.namespaces
    join = {}
    ends = []
    try:
        console = _connect_console(console_socket)
        ends.append(console)
        for ns_type in JOIN_ORDER:
            if ns.get(ns_type) is not None:
                try:
                    join[ns_type] = os.open(ns[ns_type], os.O_RDONLY | os.O_CLOEXEC)
                except OSError as exc:
                    raise ProcessError.from_oserror('open', 'the %s namespace to join' % ns_type, exc) from None
        if spec.userns:  # made here, owning the new namespaces that hold no process; B joins them
            owned = ['user'] + [t for t in ('net', 'ipc', 'uts') if t in ns and ns[t] is None]
            join.update(userns_mod.create(spec.userns['uid_map'], spec.userns['gid_map'], owned, kernel))
        intermediate, (err_r, sync_w, pid_r) = _fork_intermediate(_start_intermediate, spec, join, stdio,
                                                                  {'barrier': barrier, 'console': console, 'kernel': kernel}, ends)
        ends = [err_r, sync_w, pid_r]
        try:
            pid_text = _read_all(pid_r, timeout, 'the container process')
        except BaseException:
            _kill(intermediate, kernel)
            raise
        _reap(intermediate, kernel)
        if not pid_text:
            raise error_from_wire(_read_all(err_r, timeout, 'the container process'))
        pid = int(pid_text)
        try:
            join_cgroup(pid)
            os.write(sync_w, _GO)
            _close(sync_w)
            ends.remove(sync_w)
            if barrier is None:
                report = _read_all(err_r, timeout, 'the container process')
            else:
                report = _read_ready(err_r, timeout, 'the container process')
        except BaseException:
            _kill(pid, kernel)
            raise
        if report:
            _reap(pid, kernel)
            raise error_from_wire(report)
        return pid
    finally:
        _close(*ends)
        _close(*join.values())


def _not_dumpable(kernel):  # pragma: no cover - forked child
    """Before a host process enters a container's namespaces: not dumpable (B inherits it until its exec), so a
    process of the container cannot open its /proc/<pid>/exe, mem or fds (the host's python3) unless it holds
    CAP_SYS_PTRACE (the CVE-2019-5736 class; see docs/container.md)."""
    kernel.prctl(syscall.PR_SET_DUMPABLE, 0, what='the dumpable attribute')


def _start_intermediate(spec, join, stdio, err_r, err_w, sync_r, sync_w, pid_r, pid_w, side):  # pragma: no cover - forked child
    """A: enter the pid namespace, fork B, send B's pid, exit (so B is orphaned to the subreaper)."""
    kernel = side['kernel']
    try:
        _close(err_r, sync_w, pid_r)
        _not_dumpable(kernel)
        ns = spec.namespaces
        if 'pid' in join:
            kernel.setns(join['pid'], syscall.CLONE_NEWPID, 'the pid namespace %s' % ns['pid'])
        elif 'pid' in ns:
            kernel.unshare(syscall.CLONE_NEWPID)
        child = kernel.fork()
        if child == 0:
            _close(pid_w)
            _container_child(spec, join, stdio, err_w, sync_r, side)
        os.write(pid_w, b'%d' % child)
        kernel.exit_process(0)
    except BaseException as exc:  # pylint: disable=broad-except
        _report(err_w, exc)
    kernel.exit_process(127)


def _container_child(spec, join, stdio, err_w, sync_r, side):  # pragma: no cover - forked child
    """B: wait for "go", then become the container (exec) or report why not; never returns."""
    kernel = side['kernel']
    try:
        err_w = _move_high(err_w)
        if os.read(sync_r, len(_GO)) != _GO:  # the caller gave up (EOF): nothing to report
            kernel.exit_process(1)
        _close(sync_r)
        barrier_fd = None
        if side['barrier'] is not None:  # opened now, while the host's tree is visible (O_PATH: no waiting)
            barrier_fd = _move_high(os.open(side['barrier'], os.O_PATH | os.O_CLOEXEC))
        console = _move_high(side['console']) if side['console'] is not None else None
        _make_container(spec, join, stdio, console, kernel)
        _become(spec, err_w, make_cwd=True, barrier_fd=barrier_fd, kernel=kernel)
    except BaseException as exc:  # pylint: disable=broad-except
        _report(err_w, exc)
    kernel.exit_process(127)


def _move_high(fd):  # pragma: no cover - forked child
    """Move ``fd`` above 2 (O_CLOEXEC) so installing stdio cannot overwrite it."""
    if fd > 2:
        return fd
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)
    os.close(fd)
    return high


def _install_stdio(stdio, kernel=LINUX):  # pragma: no cover - forked child
    """stdio[i] -> fd i. Through copies above 2 first, so (1, 0, 2) or a closed 0 both work."""
    if len(stdio) != 3:
        raise ConfigError('use', 'stdio', 'three file descriptors are needed')
    highs = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3) for fd in stdio]
    for target, fd in enumerate(highs):
        kernel.dup2(fd, target, inheritable=True)
    _close(*highs)


def _make_container(spec, join, stdio, console=None, kernel=LINUX):  # pragma: no cover - forked child
    """B, as root still: namespaces, stdio, mounts, pivot_root, read-only root, hostname."""
    ns = spec.namespaces
    for ns_type in JOIN_ORDER:
        if ns_type in join and ns_type not in ('pid', 'user'):  # the user namespace last, after pivot_root
            kernel.setns(join[ns_type], _NS_FLAGS[ns_type], 'the %s namespace %s' % (ns_type, ns.get(ns_type) or 'of the user namespace'))
    _close(*[fd for ns_type, fd in join.items() if ns_type != 'user'])
    _install_stdio(stdio, kernel)
    if spec.terminal and console is None:
        _take_terminal(kernel)
    flags = 0
    for ns_type, path in ns.items():
        if path is None and ns_type != 'pid' and ns_type not in join:
            flags |= _NS_FLAGS[ns_type]
    kernel.unshare(flags | syscall.CLONE_NEWNS)
    if spec.userns:
        _userns_rootfs(spec, join['user'], kernel)
    if spec.loopback and 'net' in ns and ns['net'] is None:
        kernel.link_up('lo')
    # /proc/sys/{net,kernel/ipc ones} are the opener's namespaces': these are the container's now.
    for name, value in spec.sysctls.items():
        _write_proc('/proc/sys/' + name.replace('.', '/'), value, 'sysctl %s' % name, kernel)
    if spec.oom_score_adj is not None:
        _write_proc('/proc/self/oom_score_adj', str(spec.oom_score_adj), 'oom_score_adj', kernel)
    mounts.prepare(spec, kernel)
    root = spec.rootfs
    kernel.chdir(root)
    kernel.pivot_root('.', '.')
    # The old root is now stacked on the new one: detach it (rslave, so the host keeps its mounts).
    kernel.umount('.', syscall.MNT_DETACH)
    kernel.chdir('/')
    if spec.readonly_rootfs:
        mounts.remount_root_readonly(kernel)
    if spec.hostname:
        kernel.sethostname(spec.hostname)
    if console is not None:
        _console_pty(console, spec.user.uid, kernel)
    if spec.userns:
        _enter_userns(spec.userns, join.pop('user'), kernel)


def _userns_rootfs(spec, userns_fd, kernel=LINUX):  # pragma: no cover - forked child
    """B, root of the host in its new mount namespace: the rootfs as the user namespace sees it. ``idmapped``: the
    overlay (which cannot be idmapped itself) mounted again from an idmapped clone of the layers directory, on the same
    upper dir (the caller unmounted its own: one overlay per upper dir at a time), in this mount namespace only.
    ``chown``: the caller shifted the files already."""
    plan = spec.userns['rootfs']
    if plan['method'] != 'idmapped':
        return
    kernel.mount(None, '/', None, syscall.MS_SLAVE | syscall.MS_REC)  # nothing made here reaches the host
    overlay = plan['overlay']
    userns_mod.idmapped_clone(overlay['layers'], userns_fd, overlay['layers'], kernel=kernel)
    kernel.chdir(overlay['layers'])  # the lower dirs are relative names, as rootfs.py mounts them
    kernel.mount('nsbox', spec.rootfs, 'overlay', 0, overlay['options'])
    kernel.chdir('/')


def _enter_userns(userns, fd, kernel=LINUX):  # pragma: no cover - forked child
    """B joins its user namespace (the last namespace: after it, B has no capability over the host's), then
    becomes its root where the map has one, so what it creates before the user switch is owned by mapped ids."""
    kernel.setns(fd, syscall.CLONE_NEWUSER, 'the user namespace of the container')
    _close(fd)
    if userns_mod.map_id(0, userns['uid_map']) is not None and userns_mod.map_id(0, userns['gid_map']) is not None:
        kernel.setresgid(0, 0, 0)
        kernel.setresuid(0, 0, 0)


def _take_terminal(kernel=LINUX):  # pragma: no cover - forked child
    """Make stdin (a terminal's slave) the controlling terminal of a new session led by this process."""
    kernel.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def _write_proc(path, value, what, kernel=LINUX):  # pragma: no cover - forked child
    try:
        fd = kernel.open(path, os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise ProcessError.from_oserror('set', what, exc) from None
    try:
        kernel.write(fd, value.encode())
    except OSError as exc:
        hint = ' (lowering it needs CAP_SYS_RESOURCE, which this host withholds)' if exc.errno == errno.EACCES and 'oom' in what else ''
        raise ProcessError('set', '%s to %s' % (what, value), (exc.strerror or str(exc)) + hint, errno=exc.errno) from None
    finally:
        kernel.close(fd)


def _set_rlimits(rlimits):  # pragma: no cover - forked child
    for item in rlimits:
        soft, hard = (resource.RLIM_INFINITY if v == -1 else v for v in (item['soft'], item['hard']))
        try:
            resource.setrlimit(RLIMITS[item['name']], (soft, hard))
        except (OSError, ValueError) as exc:
            now = resource.getrlimit(RLIMITS[item['name']])[1]
            raise ProcessError('set', 'ulimit %s to %s:%s' % (item['name'], item['soft'], item['hard']),
                               '%s (a hard limit above %s needs CAP_SYS_RESOURCE)' % (exc, 'unlimited' if now == resource.RLIM_INFINITY else now)) from None


def _wait_at_barrier(err_w, barrier_fd):  # pragma: no cover - forked child
    """Report "ready", then block until the FIFO is opened for reading (barrier.release), pass a byte."""
    os.write(err_w, _READY)
    fd = os.open('/proc/self/fd/%d' % barrier_fd, os.O_WRONLY | os.O_CLOEXEC)
    os.write(fd, b'0')
    _close(fd, barrier_fd)


def _become(spec, err_w, make_cwd, barrier_fd=None, kernel=LINUX):  # pragma: no cover - forked child
    """B of start: cwd, user, capabilities, no_new_privs, signals, fds, the barrier if any, seccomp, exec."""
    path, env, flt = _become_prepared(spec, err_w, make_cwd, barrier_fd, kernel)
    if flt is not None:
        seccomp_profiles.load(flt)  # the last step: nothing after it but execve
    _execve(path, list(spec.args), env, kernel)


def _execve(path, args, env, kernel=LINUX):  # pragma: no cover - forked child
    try:
        kernel.execve(path, args, env)
    except OSError as exc:
        raise ProcessError.from_oserror('exec', path, exc) from None


def _become_prepared(spec, err_w, make_cwd, barrier_fd=None, kernel=LINUX):  # pragma: no cover - forked child
    """Common to start and enter: cwd, rlimits, user, capabilities, no_new_privs, signals, umask, the
    barrier (start only), fds; returns (executable, env, seccomp filter still to load or None)."""
    cwd = spec.cwd
    try:
        if make_cwd:
            os.makedirs(cwd, 0o755, exist_ok=True)
        kernel.chdir(cwd)
    except OSError as exc:
        raise ProcessError.from_oserror('change to', 'working directory %s' % cwd, exc) from None
    _set_rlimits(spec.rlimits)
    flt = seccomp_profiles.build(spec.seccomp, spec.capabilities) if spec.seccomp is not None else None
    if flt is not None and not spec.no_new_privs:
        seccomp_profiles.load(flt)  # without no_new_privs a filter needs CAP_SYS_ADMIN: now, before the user switch
        flt = None
    user = spec.user
    try:
        # keepcaps: a non-root uid keeps its permitted set across setuid, for caps.apply.
        kernel.prctl(syscall.PR_SET_KEEPCAPS, 1, what='keep-capabilities')
        kernel.setgroups(user.additional_gids)
        kernel.setresgid(user.gid, user.gid, user.gid)
        kernel.setresuid(user.uid, user.uid, user.uid)
    except OSError as exc:
        raise ProcessError.from_oserror('switch to', 'user %d:%d' % (user.uid, user.gid), exc) from None
    caps.apply(spec.capabilities, user.uid, kernel)
    if spec.no_new_privs:
        kernel.prctl(syscall.PR_SET_NO_NEW_PRIVS, 1, what='no_new_privs')
    env = env_dict(spec.env)
    path = find_executable(spec.args[0], env)
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored disposition survives exec.
    for sig in signal.valid_signals():
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(sig, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    if spec.umask is not None:
        kernel.umask(spec.umask)
    if barrier_fd is not None:
        _wait_at_barrier(err_w, barrier_fd)
    _close_fds(keep=err_w)
    return path, env, flt


def _close_fds(keep):  # pragma: no cover - forked child
    """Close every fd above 2 but ``keep`` (O_CLOEXEC: it closes at exec, which the caller sees)."""
    try:
        fds = [int(fd) for fd in os.listdir('/proc/self/fd')]
    except OSError:
        fds = None
    if fds is None:
        os.closerange(3, keep)
        os.closerange(keep + 1, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
        return
    _close(*[fd for fd in fds if fd > 2 and fd != keep])


# -- enter (container_exec) -----------------------------------------------------------------------
def enter(target_pid, spec, stdio, join_cgroup, timeout=TIMEOUT, start_time=None, detach=False, console_socket=None, kernel=LINUX):
    """Run ``spec`` in the namespaces of the running process ``target_pid`` (docker exec).
    Returns the pid of A, which waits for the command and ends with its status: the caller
    (no subreaper needed) calls :func:`wait_status` on it. ``join_cgroup(pid)`` gets the
    command's own pid before it execs. ``start_time`` (clock ticks, /proc/<pid>/stat): when
    given, the target must still be that very process once its namespaces are open (a reused
    pid is refused). ``detach``: A does not wait; it exits once B runs, and B's pid is returned
    (B is orphaned to the caller's subreaper, as ``runc exec --detach``). ``console_socket``: see the
    module docstring. Raises ProcessError when
    the command cannot be run."""
    spec = Exec.of(spec)
    _need_seccomp(spec)
    own, theirs = proc_namespaces('self'), proc_namespaces(target_pid)
    if theirs.get('mnt') in (None, own.get('mnt')):
        # Gone (no namespaces to read), or not a container: never run the command on the host.
        raise ProcessError('enter', 'process %d' % target_pid, 'no such process' if not theirs else 'it shares our mount namespace',
                           errno=errno.ESRCH if not theirs else errno.EINVAL)
    join = {}
    ends = []
    try:
        for ns_type in JOIN_ORDER:
            if ns_type in theirs and theirs[ns_type] != own.get(ns_type):
                path = '/proc/%d/ns/%s' % (target_pid, ns_type)
                try:
                    join[ns_type] = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                except OSError as exc:
                    raise ProcessError.from_oserror('open', 'the %s namespace of process %d' % (ns_type, target_pid), exc) from None
        stamp = process_stamp(target_pid)
        if stamp is None or stamp[0] in ('Z', 'X', 'x') or (start_time is not None and stamp[1] != start_time):
            raise ProcessError('enter', 'process %d' % target_pid, 'it is no longer running', errno=errno.ESRCH)
        console = _connect_console(console_socket)
        ends.append(console)
        intermediate, (err_r, sync_w, pid_r) = _fork_intermediate(_enter_intermediate, spec, join, stdio,
                                                                  {'detach': detach, 'console': console, 'kernel': kernel}, ends)
        ends = [err_r, sync_w, pid_r]
        try:
            pid_text = _read_all(pid_r, timeout, 'the command in process %d' % target_pid)
            if pid_text:
                join_cgroup(int(pid_text))
                os.write(sync_w, _GO)
            _close(sync_w)
            ends.remove(sync_w)
            report = _read_all(err_r, timeout, 'the command in process %d' % target_pid)
        except BaseException:
            _kill(intermediate, kernel)
            raise
        if report:
            _reap(intermediate, kernel)
            raise error_from_wire(report)
        if detach:
            _reap(intermediate, kernel)
            return int(pid_text)
        return intermediate
    finally:
        _close(*ends)
        _close(*join.values())


def _enter_intermediate(spec, join, stdio, err_r, err_w, sync_r, sync_w, pid_r, pid_w, side):  # pragma: no cover - forked child
    """A: join every namespace of the target but its pid namespace, fork B, wait for it, end with its status.

    B joins the pid namespace for its own child C only, once it is the command's user with the command's
    capabilities, no_new_privs and seccomp filter: the container never sees a process of the host's python3
    with the host's capabilities (with CAP_SYS_PTRACE it could attach one; CVE-2019-5736 class). C is B's
    fork that execs at once."""
    kernel = side['kernel']
    try:
        _close(err_r, sync_w, pid_r)
        _not_dumpable(kernel)
        for ns_type in JOIN_ORDER:
            if ns_type in join and ns_type not in ('pid', 'user'):
                kernel.setns(join[ns_type], _NS_FLAGS[ns_type], 'the %s namespace of the container' % ns_type)
        # B joins these two: the pid namespace (for its child) while it is still root of the host, then the user namespace
        later = {ns_type: join.pop(ns_type) for ns_type in ('pid', 'user') if ns_type in join}
        _close(*join.values())
        child = kernel.fork()
        if child == 0:
            _close(pid_w)
            _enter_child(spec, stdio, err_w, sync_r, later, side['console'], kernel)
        _close(err_w, sync_r, side['console'], *later.values())
        _close_fds(keep=pid_w)  # hold none of the caller's pipes open while the command runs
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):  # forwarded, as docker exec
            signal.signal(sig, lambda signum, _frame: os.kill(child, signum))
        os.write(pid_w, b'%d' % child)
        _close(pid_w)
        if side['detach']:
            kernel.exit_process(0)
        _exit_like(kernel.waitpid(child, 0)[1], kernel)
    except BaseException as exc:  # pylint: disable=broad-except
        _report(err_w, exc)
    kernel.exit_process(127)


def _exit_like(status, kernel=LINUX):  # pragma: no cover - forked child
    """End this process as the waited one ended: same code, or killed by the same signal."""
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # the child already dumped core if it would
        if sig not in (signal.SIGKILL, signal.SIGSTOP):  # these two take no handler (EINVAL): always the default
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [sig])
        kernel.kill(os.getpid(), sig)
    kernel.exit_process(exit_code(status))


def _enter_child(spec, stdio, err_w, sync_r, later, console, kernel=LINUX):  # pragma: no cover - forked child
    """B: outside the container's pid namespace (invisible in it) become the command's user with its
    capabilities and filter, then fork C into the pid namespace, which execs; wait for C, end like it.
    ``later``: the pid namespace (joined for C, while B is still root of the host: a container with a user
    namespace has its pid namespace owned by the host's) and the user namespace (joined then)."""
    try:
        err_w = _move_high(err_w)
        if os.read(sync_r, len(_GO)) != _GO:
            kernel.exit_process(1)
        _close(sync_r)
        later = {ns_type: _move_high(fd) for ns_type, fd in later.items()}  # before stdio is installed over 0-2
        _install_stdio(stdio, kernel)
        if console is not None:  # the terminal is B's (C, its child, is in its session): made before the user switch
            _console_pty(_move_high(console), spec.user.uid, kernel)
        elif spec.terminal:
            _take_terminal(kernel)
        for ns_type in ('pid', 'user'):
            if ns_type in later:
                kernel.setns(later[ns_type], _NS_FLAGS[ns_type], 'the %s namespace of the container' % ns_type)  # pid: for C only
                _close(later[ns_type])
        path, env, flt = _become_prepared(spec, err_w, make_cwd=False, kernel=kernel)
        if flt is not None:
            seccomp_profiles.load(flt)  # B and C filtered: C runs nothing unfiltered before its exec
        command = kernel.fork()
        if command == 0:
            try:
                _execve(path, list(spec.args), env, kernel)
            except BaseException as exc:  # pylint: disable=broad-except
                _report(err_w, exc)
            kernel.exit_process(127)
        _close(err_w)  # C's copy reports; EOF once C has exec'd
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):  # forwarded from A
            signal.signal(sig, lambda signum, _frame: os.kill(command, signum))
        _exit_like(kernel.waitpid(command, 0)[1], kernel)
    except BaseException as exc:  # pylint: disable=broad-except
        _report(err_w, exc)
    kernel.exit_process(127)
