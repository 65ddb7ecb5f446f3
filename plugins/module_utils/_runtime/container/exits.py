# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""After a container's init ended (supervisor.py's process, or the monitor it execs into): the exit
recorded (``assemble.finish``), then the restart policy (policy.py) with its back-off; a stop asked
for meanwhile always wins.
"""
from __future__ import annotations

import errno
import fcntl
import os
import sys
import time

from ..errors import NsboxError
from ..kernel.namespaces import boot_id, process_stamp
from . import assemble, policy
from .store import now

RESTARTS_KEPT = 5  # the last restarts a container's state keeps (container_info, nsbox inspect)


def stamp(pid):
    """The start time of process ``pid`` (with the boot id, what tells a live supervisor from a reused pid)."""
    found = process_stamp(pid)
    return found[1] if found else None


def lock_unless_stopping(container):
    """The container's lock, taken politely: a module that holds it may be waiting for this very process
    (a stop waits for the supervisor to end), so while it is busy, a stop asked for wins. Returns the
    locked fd, or None when a stop was asked for or the container is gone."""
    os.makedirs(container.run_dir, 0o700, exist_ok=True)
    fd = os.open(os.path.join(container.run_dir, 'lock'), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                os.close(fd)
                raise
            if _stop_asked(container):
                os.close(fd)
                return None
            time.sleep(0.05)
            continue
        if _stop_asked(container):
            os.close(fd)
            return None
        return fd


def _stop_asked(container):
    try:
        return bool(container.read_state().get('stop_requested')) or not os.path.isdir(container.path())
    except NsboxError:
        return True


def after_exit(cfg, container, code, manager=None, me=None):
    """The init ended with ``code``: record it (``finish``: this process is the only writer while the
    container runs, no lock), then the restart policy. Returns True when the container is to be started
    again now (the back-off already waited), False when this supervisor's work is done. A stop asked for
    meanwhile (state: stopped, a remove) always wins, and so does a start by a module meanwhile.

    When the policy may restart it, this supervisor stays recorded with the exit: a module that stops
    the container sees a live supervisor, records the stop and waits for it to end."""
    me = me or {'pid': os.getpid(), 'start_time': stamp(os.getpid()), 'boot_id': boot_id()}
    try:
        config = container.read_config()  # a stored update of the policy counts
    except NsboxError:
        config = container.config
    state = container.read_state()
    count = state.get('restart_count') or 0
    may_restart = policy.should_restart(config.get('restart_policy'), code, count, False)
    assemble.finish(cfg, container, code, manager, keep_supervisor=me if may_restart else None)
    if not may_restart:
        return False
    container.config = config
    fd = lock_unless_stopping(container)
    if fd is None:  # a module is stopping or removing it (and waits for this process to end)
        _give_up(container, me)
        return False
    try:
        state = container.read_state()
        if state.get('status') != 'exited' or state.get('supervisor') != me or state.get('stop_requested'):
            _give_up(container, me)
            return False  # started or stopped by a module meanwhile: not ours to restart
        ran = time.monotonic() - (state.get('started_monotonic') or 0.0)
        delay = policy.backoff(state.get('restart_delay'), ran)
        restart = {'time': now(), 'exit_code': code, 'oom_killed': bool(state.get('oom_killed')), 'backoff': round(delay, 3),
                   'count': count + 1}
        container.write_state(status='restarting', restart_count=count + 1, restart_delay=delay, supervisor=me,
                              restarts=(state.get('restarts') or [])[1 - RESTARTS_KEPT:] + [restart])
        sys.stderr.write('nsbox: container %s ended (exit code %s%s); restart %d in %.1fs, as its restart policy says\n' % (
            container.name, '?' if code is None else code, ', OOM-killed' if restart['oom_killed'] else '', count + 1, delay))
        sys.stderr.flush()
    finally:
        os.close(fd)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if _stop_asked(container):
            restart_cancelled(container)
            return False
        time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
    return True


def _give_up(container, me):
    """This supervisor ends without restarting: it is no longer recorded (unless another one is by now)."""
    if os.path.isdir(container.path()):
        try:
            if container.read_state().get('supervisor') == me:
                container.write_state(supervisor=None)
        except NsboxError:
            pass


def restart_cancelled(container):
    if os.path.isdir(container.path()):
        state = container.read_state()
        if state.get('status') == 'restarting':
            container.write_state(status='exited', supervisor=None)
