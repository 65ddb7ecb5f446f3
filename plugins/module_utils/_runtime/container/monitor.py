# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervisor's second life: watching a running container with as little memory as can be.

``nsbox supervise`` sets the container up (rootfs, cgroup, namespaces: the whole library is
loaded for that), answers the module, then execs ``python -I -S -c <monitor.main> PYZ monitor ID FD``: the
same process (same pid and start time, still the child subreaper, the init still its child,
the FIFOs still open), with a fresh interpreter that imports only this file and ``logs``. It
relays the logs and waits; once the init has ended it imports what the teardown needs. That
halves the resident cost per container (measured in docs/container.md).
"""
from __future__ import annotations

import json
import os
import select
import sys

from ..errors import NsboxError
from . import logs


def exec_monitor(cfg, container_id, pid, pid_start, fds, log_config, adopted):
    """Replace this process with ``nsbox monitor`` (from the zipapp this process runs), handing over state on a pipe.

    Returns only when this process was not started from the zipapp (tests): then the caller monitors in-process.
    """
    pyz = sys.argv[0] if sys.argv and sys.argv[0].endswith('.pyz') and os.path.isfile(sys.argv[0]) else None
    if pyz is None:
        return False
    handover = {'config': cfg.data, 'id': container_id, 'pid': pid, 'pid_start': pid_start, 'fds': fds,
                'log': log_config, 'adopted': adopted}
    r, w = os.pipe()
    os.write(w, json.dumps(handover).encode())  # far below a pipe's 64 KiB: never blocks
    os.close(w)
    for fd in list(fds.values()) + [r]:
        os.set_inheritable(fd, True)
    # Not through the CLI: argparse, the host config and their imports (tempfile, ipaddress, ...) cost
    # ~3 MB that a watcher never uses. -S: no site module either. argv[4:] shows what it watches.
    code = 'import sys; sys.path.insert(0, sys.argv[1]); from nsbox_runtime.container.monitor import main; sys.exit(main(sys.argv[3], int(sys.argv[4])))'
    os.execv(sys.executable, [sys.executable, '-I', '-S', '-c', code, pyz, 'monitor', container_id, str(r)])
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


def watch(pid, fds, log_config, log_path, adopted, pid_start=None):
    """Relay the FIFOs into the json-file log until the init ends; its exit code (None when adopted)."""
    log = logs.JsonFileLog(log_path, log_config.get('max_size'), log_config.get('max_files', 1))
    result = {}
    pidfd = None
    if adopted:
        try:
            pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pidfd = None

    def gone():
        try:
            with open('/proc/%d/stat' % pid) as f:
                rest = f.read().rpartition(')')[2].split()
        except OSError:
            return True
        return rest[0] in ('Z', 'X') or (pid_start is not None and int(rest[19]) != pid_start)

    def ended():
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
            if got == pid:
                # process.exit_code's rule, written out: this process does not load the process module
                result['code'] = 128 + os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    try:
        logs.relay(fds, log, ended)
        while not ended():
            select.select([], [], [], 0.2)
    finally:
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
    """``nsbox monitor``: watch, then finish (the heavy imports only now)."""
    data = read_handover(handover_fd)
    code = watch(data['pid'], {k: int(v) for k, v in data['fds'].items()}, data['log'],
                 os.path.join(data['config']['data_root'], 'containers', container_id, 'logs', '%s-json.log' % container_id),
                 data['adopted'], data.get('pid_start'))
    # pylint: disable=import-outside-toplevel
    from ..config import HostConfig
    from .store import ContainerStore
    from .supervisor import finish
    cfg = HostConfig(data['config'])
    container = ContainerStore(cfg).find(container_id)
    if container is not None:
        finish(cfg, container, code)
    return 0
