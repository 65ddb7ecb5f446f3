# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd front (DESIGN D2): ``nsbox run-unit NAME`` and ``nsbox unit-stopped NAME``.

A unit with ``Type=notify`` runs ``nsbox run-unit NAME``: it sets the container up (the same
``assemble.launch`` as the supervisor), tells systemd ``READY=1`` and ``MAINPID=<init>`` on
``$NOTIFY_SOCKET`` and exits — no process of ours stays per container. systemd then watches the
init (stdout and stderr go where the unit's go: the journal), and ``ExecStopPost=nsbox
unit-stopped NAME`` records how it ended from ``$EXIT_CODE``/``$EXIT_STATUS`` (set by systemd)
and removes the cgroup and the rootfs mount.

The unit has ``Delegate=yes``: on a cgroup v2 host under the systemd cgroup driver the container's
cgroup is ``<the unit's cgroup>/container`` (DESIGN D4: a unit's own delegated cgroup), so systemd
accounts, stops and kills the container as the unit. run-unit first moves itself to the unit's
``runner`` child (a cgroup with controllers enabled for its children holds no process, cgroup v2's
rule); ExecStopPost= runs in systemd's ``.control`` child. Elsewhere (cgroupfs: v1, hybrid, or
a host without systemd's driver) the container goes where the host config says, as without a unit.
"""
from __future__ import annotations

import os
import signal
import socket

from ..cgroups.layout import Layout, resolve_driver, systemd_booted
from ..cgroups.manager import read_text, write_text
from ..kernel.namespaces import boot_id, process_stamp
from . import assemble
from .store import ContainerError, now


def notify(message, env=None):
    """Send one sd_notify datagram to ``$NOTIFY_SOCKET`` (a path or an abstract @name)."""
    path = (env or os.environ).get('NOTIFY_SOCKET')
    if not path:
        raise ContainerError('notify', 'systemd', 'NOTIFY_SOCKET is not set: run-unit runs as a Type=notify unit\'s ExecStart')
    if path.startswith('@'):
        path = '\0' + path[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(path)
        sock.sendall(message.encode())


def delegated_cgroup(cfg, layout=None, booted=None, proc_cgroup='/proc/self/cgroup'):
    """The unit's own cgroup (v2 path such as /system.slice/nsbox-web.service) when the container's
    cgroup goes inside it: a v2 host under the systemd driver, this process in a .service cgroup. Else None."""
    layout = layout or Layout.detect()
    booted = systemd_booted() if booted is None else booted
    if layout.mode != 'v2' or resolve_driver(cfg['cgroup_driver'], layout.mode, booted) != 'systemd':
        return None
    own = next((line[3:] for line in (read_text(proc_cgroup, '') or '').splitlines() if line.startswith('0::')), '')
    return own if own.endswith('.service') else None


def _move_self(layout, path):
    """Into the child cgroup ``path`` of the unit's (made if needed)."""
    target = os.path.join(layout.unified, path.lstrip('/'))
    os.makedirs(target, exist_ok=True)
    write_text(os.path.join(target, 'cgroup.procs'), str(os.getpid()))


def run_unit(cfg, store, name):
    """Start container ``name`` for systemd; returns the init's host pid after notifying."""
    if not os.environ.get('NOTIFY_SOCKET'):
        raise ContainerError('start', 'container %s for systemd' % name,
                             'NOTIFY_SOCKET is not set: run-unit runs as a Type=notify unit\'s ExecStart')
    container = store.find(name)
    if container is None:
        raise ContainerError('start', 'container %s' % name, 'it does not exist (create it with state: present first)')
    with container.lock():
        status = container.status()
        if status['running']:
            raise ContainerError('start', 'container %s' % name, 'it runs already (pid %d)' % status['pid'])
        if container.read_state().get('status') == 'running':
            assemble.teardown(cfg, container)
        unit_cgroup = delegated_cgroup(cfg)
        if unit_cgroup:
            _move_self(Layout.detect(), unit_cgroup + '/runner')
        container.write_state(cgroup=unit_cgroup + '/container' if unit_cgroup else None)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            pid, _manager = assemble.launch(cfg, store, container, (null, 1, 2))
        finally:
            os.close(null)
        stamp = process_stamp(pid)
        container.write_state(status='running', pid=pid, pid_start=stamp[1] if stamp else None, boot_id=boot_id(), supervisor=None,
                              unit=True, started_at=now(), finished_at=None, exit_code=None, oom_killed=False, error=None)
    notify('READY=1\nMAINPID=%d\n' % pid)
    return pid


def _code_from_systemd(env):
    """$EXIT_CODE/$EXIT_STATUS of ExecStopPost= -> Docker's exit code (128 + signal), or None."""
    kind, value = env.get('EXIT_CODE'), env.get('EXIT_STATUS')
    if kind == 'exited' and value and value.isdigit():
        return int(value)
    if kind in ('killed', 'dumped') and value:
        sig = getattr(signal, value if value.startswith('SIG') else 'SIG' + value, None)
        if sig is not None:
            return 128 + int(sig)
    return None


def unit_stopped(cfg, store, name, env=None):
    """ExecStopPost=: record the end as systemd saw it, then kill leftovers and unmount."""
    env = os.environ if env is None else env
    container = store.find(name)
    if container is None:
        return None
    code = _code_from_systemd(env)
    with container.lock():
        assemble.finish(cfg, container, code, oom=env.get('SERVICE_RESULT') == 'oom-kill')
    return code
