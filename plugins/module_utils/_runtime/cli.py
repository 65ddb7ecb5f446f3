# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``nsbox`` host command: a thin front on the library, for people and scripts.

Exit codes: 0 success, 1 the operation failed (message on stderr), 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys

from . import config as hostconfig
from .errors import NsboxError
from .version import VERSION

EXIT_FAILED = 1


def _out(text='', stream=None):
    (stream or sys.stdout).write(text + '\n')


def _archive():
    """The zipapp this process runs from, if any."""
    loader = globals().get('__loader__')
    archive = getattr(loader, 'archive', None)
    return os.path.realpath(archive) if archive else None


def cmd_version(args):
    info = {'version': VERSION, 'library': _archive(), 'python': sys.version.split()[0]}
    if args.format == 'json':
        _out(json.dumps(info, indent=2, sort_keys=True))
    else:
        _out('nsbox %s' % VERSION)
    return 0


def _rows(facts):
    cg = facts['cgroup']
    st = facts['storage']
    return [
        ('Version', VERSION),
        ('Library', facts['library'] or '(not installed: running from source)'),
        ('Config', '%s%s' % (facts['config'], '' if facts['config_exists'] else ' (absent: defaults)')),
        ('Data root', facts['data_root']),
        ('State dir', facts['state_dir']),
        ('Storage driver', '%s (on %s%s)' % (st['driver'], st['backing_fs'], '' if st['driver'] in st['drivers'] else '; NOT usable: %s' % st['reason'])),
        ('Cgroup version', cg['version']),
        ('Cgroup driver', cg['driver']),
        ('Cgroup controllers', ' '.join(cg['controllers']) or '-'),
        ('Systemd', 'yes (PID 1)' if facts['systemd'] else 'no'),
        ('Kernel', '%s %s' % (facts['kernel']['release'], facts['kernel']['machine'])),
        ('Overlay', 'yes' if facts['overlay'] else 'no'),
        ('Idmapped mounts', 'yes' if facts['idmapped_mounts'] else 'no'),
        ('Python', '%s %s' % (facts['python']['executable'], facts['python']['version'])),
    ]


def cmd_info(args):
    # Imported here: it costs ~1 MB, which the long-lived `ns-hold` should not carry.
    from . import hostinfo  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    facts = hostinfo.gather(cfg)
    facts.update(version=VERSION, library=_archive(), config=cfg.path, config_exists=cfg.exists)
    if args.format == 'json':
        _out(json.dumps(facts, indent=2, sort_keys=True))
        return 0
    rows = _rows(facts)
    width = max(len(k) for k, _v in rows) + 1
    for key, value in rows:
        _out('%-*s %s' % (width, key + ':', value))
    return 0


def cmd_ns_hold(args):
    """Internal: hold a persisted pid namespace open as its pid 1 (namespaces.py starts it).

    Says ``R`` on the sync socket once its signal handlers are in place, then waits for ``C``
    (the creator persisted and recorded it); anything else (the creator died or undid its
    work) ends it, so a failed creation never leaves a holder behind. As pid 1 it reaps every
    orphan of its namespace. SIGTERM/SIGINT/SIGHUP end it (pid 1 gets only the signals it has
    handlers for); SIGKILL from outside ends it and everything in its namespace. It imports
    nothing beyond this file's own imports: it lives as long as the namespace, and every module
    it does not load is memory it does not hold (docs/design.md).
    """
    def reap():
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    # Handlers make the kernel deliver these to a namespace's pid 1 at all; blocking them and
    # taking them with sigwaitinfo() closes the window in which a signal landing between
    # Python's pending-signal check and pause(2) was lost (the holder then ignored SIGTERM).
    ends = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    for sig in ends + (signal.SIGCHLD,):
        signal.signal(sig, lambda *_args: None)
    signal.pthread_sigmask(signal.SIG_BLOCK, ends + (signal.SIGCHLD,))
    with socket.socket(fileno=args.sync_fd) as sock:
        sock.sendall(b'R')
        if sock.recv(1) != b'C':
            return EXIT_FAILED
    while True:
        reap()
        if signal.sigwaitinfo(ends + (signal.SIGCHLD,)).si_signo in ends:
            os._exit(0)  # pylint: disable=protected-access


def _read_config_line(fd):
    """The host config a parent hands over on ``fd`` (a socket or a pipe): one JSON line {"config": ...}."""
    data = b''
    while not data.endswith(b'\n'):
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    return hostconfig.HostConfig(json.loads(data)['config']) if data.strip() else None


def cmd_supervise(args):
    """Internal: supervise one container (container/supervisor.py); its host config comes on the sync socket
    (or, restarted by the restart policy, on --config-fd)."""
    from .container import store as cstore, supervisor  # pylint: disable=import-outside-toplevel
    if args.sync_fd is None and args.config_fd is None:
        raise NsboxError('supervise', 'container %s' % args.id, 'give --sync-fd or --config-fd')
    if args.config_fd is not None:
        cfg = _read_config_line(args.config_fd)
        os.close(args.config_fd)
    else:
        cfg = _read_config_line(args.sync_fd)
    if cfg is None:
        return EXIT_FAILED
    return supervisor.supervise(cfg, cstore.ContainerStore(cfg), args.id, args.sync_fd, adopt=args.adopt, restart=args.restart)


def cmd_healthcheck(args):
    """Internal: run a container's healthcheck once and record the result (container/health.py)."""
    from .container import health  # pylint: disable=import-outside-toplevel
    cfg = _read_config_line(args.config_fd)
    os.close(args.config_fd)
    health.run_check(cfg, args.id, args.start_period)
    return 0


def _container_store(args):
    from .container import store as cstore  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    return cfg, cstore.ContainerStore(cfg)


def cmd_run_unit(args):
    """Start a container for a systemd unit (Type=notify): MAINPID is its init; this process then ends."""
    from .container import runner  # pylint: disable=import-outside-toplevel
    cfg, store = _container_store(args)
    runner.run_unit(cfg, store, args.name)
    return 0


def cmd_unit_stopped(args):
    """ExecStopPost= of a container's unit: record how it ended, remove its cgroup and rootfs mount."""
    from .container import runner  # pylint: disable=import-outside-toplevel
    cfg, store = _container_store(args)
    runner.unit_stopped(cfg, store, args.name)
    return 0


def parser():
    p = argparse.ArgumentParser(prog='nsbox', description='nsbox container runtime: host command.')
    p.add_argument('--config', default=None, help='host config file (default: $NSBOX_CONFIG or %s)' % hostconfig.CONFIG_PATH)
    sub = p.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name, func, text in (('info', cmd_info, 'show how this host is set up for nsbox'),
                             ('version', cmd_version, 'show the nsbox version')):
        sp = sub.add_parser(name, help=text, description=text)
        sp.add_argument('--format', choices=('table', 'json'), default='table', help='output format')
        sp.set_defaults(func=func)
    # Internal, so without help= (argparse then lists it nowhere): `ns-hold NAME --sync-fd FD`.
    hold = sub.add_parser('ns-hold')
    hold.add_argument('name', help='the namespace set held (shown by ps)')
    hold.add_argument('--sync-fd', type=int, required=True, help='socket to the creator')
    hold.set_defaults(func=cmd_ns_hold)
    sup = sub.add_parser('supervise')
    sup.add_argument('id', help='the container supervised (shown by ps)')
    sup.add_argument('--sync-fd', type=int, default=None, help='socket to the starter')
    sup.add_argument('--config-fd', type=int, default=None, help='pipe with the host config (a restart)')
    sup.add_argument('--adopt', action='store_true', help='take over a running container whose supervisor died')
    sup.add_argument('--restart', action='store_true', help='start it again (its restart policy)')
    sup.set_defaults(func=cmd_supervise)
    check = sub.add_parser('healthcheck')
    check.add_argument('id', help='the container checked (shown by ps)')
    check.add_argument('--config-fd', type=int, required=True, help='pipe with the host config')
    check.add_argument('--start-period', action='store_true', help='within the start period (a failure does not count)')
    check.set_defaults(func=cmd_healthcheck)
    for name, func, text in (('run-unit', cmd_run_unit, 'start a container as a systemd unit\'s main process (Type=notify)'),
                             ('unit-stopped', cmd_unit_stopped, 'record the end of a container\'s unit (ExecStopPost=)')):
        sp = sub.add_parser(name, help=text, description=text)
        sp.add_argument('name', help='the container')
        sp.set_defaults(func=func)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
    except NsboxError as exc:
        _out('nsbox: %s' % exc.message, sys.stderr)
        code = EXIT_FAILED
    except BrokenPipeError:
        # `nsbox info | head`: not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    raise SystemExit(code)
