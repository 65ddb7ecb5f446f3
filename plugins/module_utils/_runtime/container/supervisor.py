# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervisor of one running container on a host without systemd (DESIGN D2).

``nsbox supervise ID --sync-fd FD`` is exec'd by ``converge.start`` after a double fork and
``setsid``, so it belongs to no Ansible run. It is a child subreaper: the container's init,
forked by an intermediate (``process.start``), becomes its child and it gets the real exit
status. It answers on the sync fd once the container runs (``{"pid": N}``) or could not be
started (``{"error": {...}}``) — nothing is left behind then — and the module returns.

``--adopt`` takes over a container whose supervisor died: the init is not its child, so it
watches it with a pidfd and records an unknown exit code when it ends.

After the init ended, ``exits.after_exit`` records it and applies the restart policy (policy.py);
``--restart`` is the same process starting the container again after the back-off.

Assembly and teardown are in assemble.py (``runner``, for systemd, uses them too); what follows an
exit is in exits.py (the monitor this process execs into runs it too).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import time

from ..errors import NsboxError
from ..kernel.namespaces import boot_id
from ..launch import process
from . import assemble, exits, health as health_mod, monitor
from .store import now


def _answer(sock, obj):
    if sock is not None:
        try:
            sock.sendall(json.dumps(obj).encode() + b'\n')
        except OSError:
            pass
        sock.close()


def _open_fifos(container, create):
    """The read ends of the container's output FIFOs ({stream: fd}); none for a tty (its master died with the supervisor)."""
    fds = {}
    if container.config.get('tty'):
        return fds
    for stream in ('stdout', 'stderr'):
        path = container.fifo(stream)
        if create:
            if os.path.lexists(path):
                os.unlink(path)
            os.mkfifo(path, 0o600)
        fds[stream] = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    return fds


def container_stdio(container, console=None):
    """({stream: fd} to relay into the log, (stdin, stdout, stderr) for the init, closed by the caller after the start).

    ``console``: a terminal's slave from whoever started it (``nsbox run -t``): all three, nothing to relay.
    ``tty``: a pseudo-terminal; the init gets the slave as all three (its controlling terminal),
    the master is relayed as stdout (Docker's tty logs). Otherwise FIFOs for stdout and stderr;
    stdin is /dev/null, or with ``interactive`` a FIFO the init holds open for reading and
    writing, so a read waits for input instead of seeing end-of-file (``docker run -i``).
    """
    if console is not None:
        return {}, (console, console, console)
    if container.config.get('tty'):
        master, slave = os.openpty()
        os.set_inheritable(master, False)
        return {'stdout': master}, (slave, slave, slave)
    fds = _open_fifos(container, create=True)
    writers = [os.open(container.fifo(s), os.O_WRONLY | os.O_CLOEXEC) for s in ('stdout', 'stderr')]
    if container.config.get('interactive'):
        path = os.path.join(container.run_dir, 'stdin')
        if os.path.lexists(path):
            os.unlink(path)
        os.mkfifo(path, 0o600)
        stdin = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    else:
        stdin = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    return fds, (stdin, writers[0], writers[1])


def _record_start(cfg, store, container, me, stdio_for=None, console=None):
    """Launch the init and record it running; returns (fds to relay, pid, cgroup manager)."""
    fds, stdio = container_stdio(container, console)
    try:
        pid, manager = assemble.launch(cfg, store, container, stdio)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    finally:
        for fd in set(stdio):
            os.close(fd)
    health_mod.reset(container)
    container.write_state(status='running', pid=pid, pid_start=exits.stamp(pid), boot_id=me['boot_id'], supervisor=me,
                          started_at=now(), started_monotonic=time.monotonic(), finished_at=None, exit_code=None,
                          oom_killed=False, error=None)
    return fds, pid, manager


def supervise(cfg, store, cid, sync_fd=None, adopt=False, restart=False, console=None):
    """The supervisor's life (``nsbox supervise``); returns an exit code for the CLI.

    ``console``: the first start's stdio (service.start's), closed once the init has it; a restart makes its own.
    ``restart``: started again by the restart policy (no one waits for an answer): the container's
    lock is taken first, and a stop asked for meanwhile ends it without starting anything.
    """
    sock = socket.socket(fileno=sync_fd) if sync_fd is not None else None
    container = store.find(cid)
    if container is None:
        _answer(sock, {'error': {'action': 'supervise', 'object': 'container %s' % cid, 'cause': 'it does not exist'}})
        return 1
    process.become_subreaper()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    me = {'pid': os.getpid(), 'start_time': exits.stamp(os.getpid()), 'boot_id': boot_id()}
    while True:
        manager = None
        try:
            os.makedirs(container.run_dir, 0o700, exist_ok=True)
            if adopt:
                state = container.read_state()
                pid = state['pid']
                fds = _open_fifos(container, create=False)
                manager = assemble.cgroup_of(cfg, container)
                container.write_state(supervisor=me)
            elif restart:
                lock = exits.lock_unless_stopping(container)
                if lock is None:
                    exits.restart_cancelled(container)
                    return 0
                try:
                    fds, pid, manager = _record_start(cfg, store, container, me)
                finally:
                    os.close(lock)
            else:
                fds, pid, manager = _record_start(cfg, store, container, me, console=console)
                console = None  # _record_start closed it (the init holds it)
        except NsboxError as exc:
            if not adopt:
                container.write_state(status='exited', pid=None, exit_code=None, error=exc.message, finished_at=now(),
                                      supervisor=None)
            _answer(sock, {'error': exc.to_dict()})
            return 1
        except BaseException as exc:  # pylint: disable=broad-except
            _answer(sock, {'error': {'action': 'supervise', 'object': 'container %s' % container.name, 'cause': repr(exc)}})
            return 1
        _answer(sock, {'pid': pid})
        sock = None
        pid_start = container.read_state().get('pid_start')
        check = container.config.get('healthcheck')
        if monitor.exec_monitor(cfg, container.id, pid, pid_start, fds, container.config['log'], adopt, check):
            return 0  # pragma: no cover - exec_monitor execs
        timer = monitor.HealthTimer(check, monitor.health_spawner(cfg.data, container.id, None)) if check else None
        code = monitor.watch(pid, fds, container.config['log'], container.log_path, adopt, pid_start, timer)
        if not exits.after_exit(cfg, container, code, manager, me):
            return 0
        container = store.find(cid)
        if container is None:
            return 0
        adopt, restart = False, True
