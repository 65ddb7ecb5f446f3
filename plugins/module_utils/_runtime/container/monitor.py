# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervisor's second life: watching a running container with as little memory as can be.

``nsbox supervise`` sets the container up (rootfs, cgroup, namespaces: the whole library is
loaded for that), answers the module, then execs ``python -I -B -S -c <monitor.main> LIB monitor ID FD``: the
same process (same pid and start time, still the child subreaper, the init still its child,
the FIFOs still open), with a fresh interpreter that imports only this file and ``logs``. It
relays the logs and waits; once the init has ended it imports what the teardown needs. That
halves the resident cost per container (measured in docs/container.md).

It also runs the healthcheck (a short-lived ``nsbox healthcheck`` child per check, so the
watcher stays small) and, once the init ended, applies the restart policy: after the back-off
it execs ``nsbox supervise --restart`` — again the same process, which sets the container up
anew and comes back here.

Deferred imports: imported only now, after the init ended (or in a forked check): the monitor holds as
little memory as it can while it watches.
"""
from __future__ import annotations

import json
import os
import select
import signal
import sys
import time

from ..errors import NsboxError
from . import logs


def pipe_with(data):
    """The read end of a pipe that holds ``data`` (a JSON-able object; small: never blocks)."""
    r, w = os.pipe()
    os.write(w, json.dumps(data).encode())
    os.close(w)
    return r


def _library():
    """The installed tree this process was started from (``python -I -B <tree> ...``), or None (tests, a payload)."""
    lib = sys.argv[0] if sys.argv else ''
    return lib if lib and os.path.isfile(os.path.join(lib, '__main__.py')) else None


def exec_monitor(cfg, container_id, pid, pid_start, fds, log_config, adopted, health=None):
    """Replace this process with ``nsbox monitor`` (from the installed tree this process runs), handing over state on a pipe.

    Returns only when this process was not started from the installed tree (tests): then the caller monitors in-process.
    """
    lib = _library()
    if lib is None:
        return False
    handover = {'config': cfg.data, 'id': container_id, 'pid': pid, 'pid_start': pid_start, 'fds': fds,
                'log': log_config, 'adopted': adopted, 'library': lib, 'health': health}
    r = pipe_with(handover)
    for fd in list(fds.values()) + [r]:
        os.set_inheritable(fd, True)
    # Not through the CLI: argparse, the host config and their imports (tempfile, ipaddress, ...) cost
    # ~3 MB that a watcher never uses. -S: no site module either. argv[4:] shows what it watches.
    code = 'import sys; sys.path.insert(0, sys.argv[1]); from nsbox_runtime.container.monitor import main; sys.exit(main(sys.argv[3], int(sys.argv[4])))'
    os.execv(sys.executable, [sys.executable, '-I', '-B', '-S', '-c', code, lib, 'monitor', container_id, str(r)])
    return True  # pragma: no cover - execv does not return


def read_handover(fd):
    chunks = []
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        chunks.append(chunk)
    os.close(fd)
    return json.loads(b''.join(chunks))


class HealthTimer:
    """Runs the container's healthcheck every ``interval`` seconds (counted from the end of the
    previous check, as Docker), one check at a time, each in a child: ``spawn(in_start_period)``
    returns its pid. A check that outlives its timeout by 10 s is killed (the child enforces the
    timeout itself; this is the backstop)."""

    def __init__(self, check, spawn, clock=time.monotonic):
        self.check, self.spawn, self.clock = check, spawn, clock
        self.started = clock()
        self.due = self.started + check['interval']
        self.child = None
        self.child_deadline = None

    def tick(self):
        now = self.clock()
        if self.child is not None:
            self.reap(os.WNOHANG)
            if self.child is not None and now > self.child_deadline:
                self.kill()
        if self.child is None and now >= self.due:
            self.child = self.spawn(now - self.started < self.check['start_period'])
            self.child_deadline = now + self.check['timeout'] + 10

    def reaped(self, pid):
        """``pid`` was reaped by the caller: whether it was the check's child."""
        if pid != self.child:
            return False
        self.child = None
        self.due = self.clock() + self.check['interval']
        return True

    def reap(self, flags=0):
        try:
            got, _status = os.waitpid(self.child, flags)
        except ChildProcessError:
            got = self.child
        if got:
            self.reaped(got)

    def kill(self):
        """End a running check (the container ended, or it hangs)."""
        if self.child is None:
            return
        try:
            os.kill(self.child, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.reap()


def health_spawner(config, container_id, lib):
    """``spawn(in_start_period)`` for HealthTimer: fork; the child execs ``nsbox healthcheck`` from the installed tree
    (or, without one, runs the check in-process: tests) and ends."""
    def spawn(in_start_period):
        pid = os.fork()
        if pid:
            return pid
        try:  # pragma: no cover - forked child
            args = ['healthcheck', container_id] + (['--start-period'] if in_start_period else [])
            if lib:
                fd = pipe_with({'config': config})
                os.closerange(3, fd)  # the FIFOs: a check holds no end of the container's output
                os.closerange(fd + 1, 1 << 16)
                os.set_inheritable(fd, True)
                os.execv(sys.executable, [sys.executable, '-I', '-B', lib] + args + ['--config-fd', str(fd)])
            from ..host.config import HostConfig  # pylint: disable=import-outside-toplevel
            from .health import run_check  # pylint: disable=import-outside-toplevel
            run_check(HostConfig(config), container_id, in_start_period)
            os._exit(0)  # pylint: disable=protected-access
        except BaseException:  # pylint: disable=broad-except
            pass
        os._exit(1)  # pylint: disable=protected-access
    return spawn


def watch(pid, fds, log_config, log_path, adopted, pid_start=None, health=None):
    """Relay the FIFOs into the json-file log until the init ends; its exit code (None when adopted).

    ``health``: a HealthTimer, ticked while the container runs, its running check killed at the end.
    """
    log = logs.JsonFileLog(log_path, log_config.get('max_size'), log_config.get('max_files', 1))
    result = {}
    try:  # readable once the init has ended (ours or adopted): its end is seen at once, not at the next poll
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # Python < 3.9, Linux < 5.3, or already gone
        pidfd = None

    def gone():
        try:
            with open('/proc/%d/stat' % pid) as f:
                rest = f.read().rpartition(')')[2].split()
        except OSError:
            return True
        return rest[0] in ('Z', 'X') or (pid_start is not None and int(rest[19]) != pid_start)

    def ended():
        if health is not None:
            health.tick()
        if adopted:
            if pidfd is not None:
                return bool(select.select([pidfd], [], [], 0)[0])
            return gone()
        while True:  # reap every orphan that landed on us (host pid mode); remember the init's status
            try:
                got, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return 'code' in result
            if got == 0:
                return 'code' in result
            if health is not None and health.reaped(got):
                continue
            if got == pid:
                # process.exit_code's rule, written out: this process does not load the process module
                result['code'] = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    try:
        logs.relay(fds, log, ended, wake=pidfd)
        while not ended():
            select.select([pidfd] if pidfd is not None else [], [], [], 0.2)
    finally:
        if health is not None:
            health.kill()
        try:
            log.close()  # a full disk must not keep the exit from being recorded
        except (NsboxError, OSError) as exc:
            sys.stderr.write('nsbox monitor: closing the log: %s\n' % exc)
        for fd in fds.values():
            os.close(fd)
        if pidfd is not None:
            os.close(pidfd)
    return result.get('code')


def main(container_id, handover_fd):
    """``nsbox monitor``: watch, then finish (the heavy imports only now) and restart as the policy says."""
    data = read_handover(handover_fd)
    check = data.get('health')
    timer = HealthTimer(check, health_spawner(data['config'], container_id, data.get('library'))) if check else None
    code = watch(data['pid'], {k: int(v) for k, v in data['fds'].items()}, data['log'],
                 os.path.join(data['config']['data_root'], 'containers', container_id, 'logs', '%s-json.log' % container_id),
                 data['adopted'], data.get('pid_start'), timer)
    # pylint: disable=import-outside-toplevel
    import site  # started with -S: the system's site-packages (pyroute2, nftables) only now, for the teardown
    site.main()
    from ..host.config import HostConfig
    from .store import ContainerStore
    from .exits import after_exit
    cfg = HostConfig(data['config'])
    container = ContainerStore(cfg).find(container_id)
    if container is not None and after_exit(cfg, container, code) and data.get('library'):
        fd = pipe_with({'config': data['config']})
        os.set_inheritable(fd, True)
        os.execv(sys.executable, [sys.executable, '-I', '-B', data['library'], 'supervise', container_id, '--config-fd', str(fd), '--restart'])
    return 0
