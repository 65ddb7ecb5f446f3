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
import time

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
    if getattr(args, 'data_root', None):
        cfg = cfg.override(data_root=args.data_root)
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


# -- the verbs for people and scripts: thin fronts on the library's services ----------------------
def _print_json(data):
    _out(json.dumps(data, indent=2, sort_keys=True))


def _views():
    from . import cli_views  # pylint: disable=import-outside-toplevel
    return cli_views


def cmd_ps(args):
    from .container import service  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    views = _views()
    found = [c for c in service.info(cfg)['containers'] if args.all or c['state'].get('running')]
    rows = views.ps_rows(found, time.time())
    if args.format == 'json':
        _print_json(rows)
    else:
        _out(views.ps_table(rows))
    return 0


def cmd_images(args):
    from .image import service  # pylint: disable=import-outside-toplevel
    views = _views()
    rows = views.image_rows(service.list_images(hostconfig.load(args.config)))
    if args.format == 'json':
        _print_json(rows)
    else:
        _out(views.images_table(rows))
    return 0


def _find(cfg, name, verb):
    from .container import service  # pylint: disable=import-outside-toplevel
    from .container.store import ContainerError  # pylint: disable=import-outside-toplevel
    container = service.open_store(cfg).find(name)
    if container is None:
        raise ContainerError(verb, 'container %s' % name, 'it does not exist')
    return container


def _write_entry(entry):
    stream = sys.stderr if entry['stream'] == 'stderr' else sys.stdout
    stream.write(entry['log'])
    stream.flush()


def cmd_logs(args):
    from .container import logs  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    container = _find(cfg, args.name, 'show the logs of')
    path, max_files = container.log_path, container.config['log']['max_files']
    follower = logs.Follower(path) if args.follow else None
    try:
        history = logs.tail(path, args.tail, max_files)
        for entry in history:
            _write_entry(entry)
        if follower is None:
            return 0
        follower.skip(history)
        while True:
            ended = not os.path.isdir(container.path()) or not _running(container)
            for entry in follower.read():  # after the end was seen: what was written before it
                _write_entry(entry)
            if ended:
                return 0
            time.sleep(0.2)
    except KeyboardInterrupt:
        return 0
    finally:
        if follower is not None:
            follower.close()


def _running(container):
    try:
        status = container.status()
    except NsboxError:
        return False
    return status['running'] or status['status'] == 'restarting'


def cmd_inspect(args):
    from .container import service  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    out = service.info(cfg, args.names)
    _print_json(out['containers'])
    if out['missing']:
        for name in out['missing']:
            _out('nsbox: no such container: %s' % name, sys.stderr)
        return EXIT_FAILED
    return 0


def _stats_sample(cfg, service):
    return {c['name']: (c.get('stats'), (c['config'].get('resources') or {}).get('memory'), time.monotonic())
            for c in service.info(cfg)['containers'] if c['state'].get('running')}


def cmd_stats(args):
    from .container import service  # pylint: disable=import-outside-toplevel
    from .container.store import ContainerStore  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    views = _views()
    store = ContainerStore(cfg)
    before = _stats_sample(cfg, service)
    try:
        while True:
            time.sleep(args.interval)
            after = _stats_sample(cfg, service)
            samples = []
            for name in sorted(after):
                stats, _shown, when = after[name]
                prior = before.get(name)
                container = store.find(name)
                limit = (container.config.get('resources') or {}).get('memory') if container else None
                samples.append((name, prior[0] if prior else None, stats, when - prior[2] if prior else 0, limit))
            rows = views.stats_rows(samples)
            if args.format == 'json':
                _print_json(rows)
            else:
                if not args.no_stream and sys.stdout.isatty():
                    sys.stdout.write('\033[2J\033[H')
                _out(views.stats_table(rows))
            sys.stdout.flush()
            if args.no_stream:
                return 0
            before = after
    except KeyboardInterrupt:
        return 0


def _lifecycle(args, act):
    """``act(cfg, store, container)`` on every named container, under the locks the container module takes."""
    from .container import service  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    store = service.open_store(cfg)
    code = 0
    for name in args.names:
        try:
            with store.lock():
                container = store.find(name)
                if container is None:
                    raise NsboxError({'rm': 'remove'}.get(args.command, args.command), 'container %s' % name, 'it does not exist')
                with container.lock():
                    act(cfg, store, container)
        except NsboxError as exc:
            _out('nsbox: %s' % exc.message, sys.stderr)
            code = EXIT_FAILED
            continue
        _out(name)
    return code


def cmd_start(args):
    from .container import service  # pylint: disable=import-outside-toplevel
    return _lifecycle(args, lambda cfg, _store, c: service.start(cfg, c))


def cmd_stop(args):
    from .container import service  # pylint: disable=import-outside-toplevel
    return _lifecycle(args, lambda cfg, _store, c: service.stop(cfg, c, timeout=args.time))


def cmd_rm(args):
    from .container import service  # pylint: disable=import-outside-toplevel

    def remove(cfg, store, container):
        status = container.status()
        if not args.force and (status['running'] or status['status'] == 'restarting'):
            raise NsboxError('remove', 'container %s' % container.name, 'it is %s (stop it first, or give -f)' % status['status'])
        service.remove(cfg, store, container, force=True)
    return _lifecycle(args, remove)


def cmd_exec(args):
    from .container import service  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    env = dict(item.partition('=')[::2] for item in args.env or ())
    out = service.exec_in(cfg, args.name, args.cmd, env=env or None, user=args.user, workdir=args.workdir)
    sys.stdout.write(out['stdout'])
    sys.stdout.flush()
    sys.stderr.write(out['stderr'])
    sys.stderr.flush()
    return out['rc']


def cmd_network_ls(args):
    from .network import service  # pylint: disable=import-outside-toplevel
    networks = service.info(hostconfig.load(args.config))['networks']
    if args.format == 'json':
        _print_json(networks)
    else:
        _out(_views().network_table(networks))
    return 0


def cmd_volume_ls(args):
    from .volume import service  # pylint: disable=import-outside-toplevel
    volumes = service.info(hostconfig.load(args.config))['volumes']
    if args.format == 'json':
        _print_json(volumes)
    else:
        _out(_views().volume_table(volumes))
    return 0


def _format_arg(sp):
    sp.add_argument('--format', choices=('table', 'json'), default='table', help='output format')


def _verb(sub, name, func, text):
    sp = sub.add_parser(name, help=text, description=text)
    sp.set_defaults(func=func)
    return sp


def _user_verbs(sub):
    sp = _verb(sub, 'ps', cmd_ps, 'list containers (running ones; -a: all)')
    sp.add_argument('-a', '--all', action='store_true', help='show stopped and created containers too')
    _format_arg(sp)
    _format_arg(_verb(sub, 'images', cmd_images, 'list the images in the store'))
    sp = _verb(sub, 'logs', cmd_logs, 'print a container\'s log (json-file): stdout and stderr as they came')
    sp.add_argument('-f', '--follow', action='store_true', help='keep printing until the container ends (or Ctrl-C)')
    sp.add_argument('--tail', type=int, default=None, metavar='N', help='only the last N lines')
    sp.add_argument('name', help='the container')
    sp = _verb(sub, 'inspect', cmd_inspect, 'show containers as JSON (state, config, usage)')
    sp.add_argument('names', nargs='+', metavar='NAME', help='the containers')
    sp = _verb(sub, 'stats', cmd_stats, 'show CPU, memory and pids of the running containers')
    sp.add_argument('--no-stream', action='store_true', help='print once and end')
    sp.add_argument('--interval', type=float, default=1.0, help='seconds between samples (default 1)')
    _format_arg(sp)
    for name, func, text in (('start', cmd_start, 'start stopped containers'), ('stop', cmd_stop, 'stop running containers')):
        sp = _verb(sub, name, func, text)
        sp.add_argument('names', nargs='+', metavar='NAME', help='the containers')
        if name == 'stop':
            sp.add_argument('-t', '--time', type=int, default=None, help='seconds to wait before SIGKILL (default: its stop_timeout)')
    sp = _verb(sub, 'rm', cmd_rm, 'remove containers')
    sp.add_argument('-f', '--force', action='store_true', help='remove running containers too (killed)')
    sp.add_argument('names', nargs='+', metavar='NAME', help='the containers')
    sp = _verb(sub, 'exec', cmd_exec, 'run a command in a running container (no tty); exits with its exit code')
    sp.add_argument('-e', '--env', action='append', metavar='KEY=VALUE', help='set an environment variable')
    sp.add_argument('-u', '--user', default=None, help='user[:group] to run as (default: the container\'s)')
    sp.add_argument('-w', '--workdir', default=None, help='working directory (default: the container\'s)')
    sp.add_argument('name', help='the container')
    sp.add_argument('cmd', nargs=argparse.REMAINDER, metavar='COMMAND', help='the command and its arguments')
    for noun, func in (('network', cmd_network_ls), ('volume', cmd_volume_ls)):
        sp = sub.add_parser(noun, help='manage %ss (ls)' % noun, description='%ss of this host' % noun)
        nsub = sp.add_subparsers(dest='subcommand', metavar='COMMAND')
        nsub.required = True
        _format_arg(_verb(nsub, 'ls', func, 'list %ss' % noun))


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
    _user_verbs(sub)
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
        sp.add_argument('--data-root', default=None, help='the data-root the unit\'s module ran with (default: the host config\'s)')
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
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
