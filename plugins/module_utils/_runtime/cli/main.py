# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``nsbox`` host command: a thin front on the library, for people and scripts.

Exit codes: 0 success, 1 the operation failed (message on stderr), 2 bad usage; ``exec`` and ``run``
exit with their command's code, and with 125/126/127 for their own failures (cli/run.py).

Deferred imports: each verb imports the rooms it needs inside its function, so ``nsbox version`` and the
long-lived ``ns-hold`` holder pay for nothing else (start-up cost and memory).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import sys
import time

from ..host import config as hostconfig
from ..errors import NsboxError
from ..version import VERSION

EXIT_FAILED = 1


def _out(text='', stream=None):
    (stream or sys.stdout).write(text + '\n')


def _archive():
    """The installed tree this process runs from (``<lib dir>/<version>-<sha>``), if any."""
    if __package__.split('.', maxsplit=1)[0] != 'nsbox_runtime':  # a checkout, a module's payload
        return None
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # <tree>/nsbox_runtime/cli/main.py
    return os.path.realpath(root) if os.path.isfile(os.path.join(root, '__main__.py')) else None


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
        ('Containers', '%d (running %d, stopped %d)' % (facts['containers']['total'], facts['containers']['running'], facts['containers']['stopped'])),
        ('Images', facts['images']),
        ('Security options', ' '.join(facts['security']['options'])),
    ]


def _counts(cfg):
    """How many containers (running or not, as their status is re-derived) and images the data-root holds."""
    from ..container import converge  # pylint: disable=import-outside-toplevel
    from ..image import images  # pylint: disable=import-outside-toplevel
    running = stopped = 0
    for container in converge.open_store(cfg).all():
        try:
            up = container.status()['running']
        except NsboxError:
            up = False
        running, stopped = running + bool(up), stopped + (not up)
    return {'containers': {'total': running + stopped, 'running': running, 'stopped': stopped},
            'images': len(images.list_images(cfg))}


def _security():
    """What a container gets unless its config says otherwise (container/security.py), and whether seccomp can be had here."""
    from ..container import security  # pylint: disable=import-outside-toplevel
    from ..launch import seccomp  # pylint: disable=import-outside-toplevel
    try:
        seccomp.library()
        binding = True
    except NsboxError:
        binding = False
    default = security.DEFAULT_SECURITY
    options = ['seccomp' + ('' if binding else ' (binding missing: python3-seccomp)'), 'profile=%s' % default['seccomp'],
               'no_new_privs' + ('' if default['no_new_privileges'] else '=false')]
    return {'seccomp': {'available': binding, 'default_profile': default['seccomp']},
            'no_new_privs_default': default['no_new_privileges'], 'options': options}


def cmd_info(args):
    # Imported here: it costs ~1 MB, which the long-lived `ns-hold` should not carry.
    from ..host import hostinfo  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    facts = hostinfo.gather(cfg)
    facts.update(version=VERSION, library=_archive(), config=cfg.path, config_exists=cfg.exists)
    facts.update(_counts(cfg), security=_security())
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


def _read_handoff(fd):
    """The starter's line on the sync socket {"config": ..., "console": bool}, and the terminal fd it carried (or None)."""
    sock = socket.socket(fileno=os.dup(fd))
    data, fds = b'', []
    try:
        while not data.endswith(b'\n'):
            chunk, got, _flags, _addr = socket.recv_fds(sock, 65536, 1)
            fds += got
            if not chunk:
                break
            data += chunk
    finally:
        sock.close()
    if not data.strip():
        for extra in fds:
            os.close(extra)
        return None, None
    line = json.loads(data)
    console = fds.pop(0) if line.get('console') and fds else None
    for extra in fds:
        os.close(extra)
    if console is not None:
        os.set_inheritable(console, False)
    return hostconfig.HostConfig(line['config']), console


def cmd_supervise(args):
    """Internal: supervise one container (container/supervisor.py); its host config comes on the sync socket
    (with a terminal for its init from ``run -t``), or, restarted by the restart policy, on --config-fd."""
    from ..container import store as cstore, supervisor  # pylint: disable=import-outside-toplevel
    if args.sync_fd is None and args.config_fd is None:
        raise NsboxError('supervise', 'container %s' % args.id, 'give --sync-fd or --config-fd')
    console = None
    if args.config_fd is not None:
        cfg = _read_config_line(args.config_fd)
        os.close(args.config_fd)
    else:
        cfg, console = _read_handoff(args.sync_fd)
    if cfg is None:
        return EXIT_FAILED
    return supervisor.supervise(cfg, cstore.ContainerStore(cfg), args.id, args.sync_fd, adopt=args.adopt, restart=args.restart,
                                console=console)


def cmd_healthcheck(args):
    """Internal: run a container's healthcheck once and record the result (container/health.py)."""
    from ..container import health  # pylint: disable=import-outside-toplevel
    cfg = _read_config_line(args.config_fd)
    os.close(args.config_fd)
    health.run_check(cfg, args.id, args.start_period)
    return 0


def _container_store(args):
    from ..container import store as cstore  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    if getattr(args, 'data_root', None):
        cfg = cfg.override(data_root=args.data_root)
    return cfg, cstore.ContainerStore(cfg)


def cmd_run_unit(args):
    """Start a container for a systemd unit (Type=notify): MAINPID is its init; this process then ends."""
    from ..container import runner  # pylint: disable=import-outside-toplevel
    cfg, store = _container_store(args)
    runner.run_unit(cfg, store, args.name)
    return 0


def cmd_unit_stopped(args):
    """ExecStopPost= of a container's unit: record how it ended, remove its cgroup and rootfs mount."""
    from ..container import runner  # pylint: disable=import-outside-toplevel
    cfg, store = _container_store(args)
    runner.unit_stopped(cfg, store, args.name)
    return 0


# -- the verbs for people and scripts: thin fronts on the library's services ----------------------
def _print_json(data):
    _out(json.dumps(data, indent=2, sort_keys=True))


def _views():
    from . import views  # pylint: disable=import-outside-toplevel
    return views


def cmd_ps(args):
    from ..container import info as container_info  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    views = _views()
    found = [c for c in container_info.info(cfg)['containers'] if args.all or c['state'].get('running')]
    rows = views.ps_rows(found, time.time())
    if args.format == 'json':
        _print_json(rows)
    else:
        _out(views.ps_table(rows))
        lost = [c['name'] for c in found if c['state'].get('running') and c['state'].get('supervised') is False]
        if lost:  # said where a person reads it: its restart policy is off until it is adopted
            _out('nsbox: %s running without a supervisor: nsbox start %s adopts %s (restart policy, healthcheck, log)'
                 % (', '.join(lost), ' '.join(lost), 'it' if len(lost) == 1 else 'them'), sys.stderr)
    return 0


def cmd_images(args):
    from ..image import images  # pylint: disable=import-outside-toplevel
    views = _views()
    rows = views.image_rows(images.list_images(hostconfig.load(args.config)))
    if args.format == 'json':
        _print_json(rows)
    else:
        _out(views.images_table(rows))
    return 0


def _find(cfg, name, verb):
    from ..container import converge  # pylint: disable=import-outside-toplevel
    from ..container.store import ContainerError  # pylint: disable=import-outside-toplevel
    container = converge.open_store(cfg).find(name)
    if container is None:
        raise ContainerError(verb, 'container %s' % name, 'it does not exist')
    return container


def _interactive():
    from . import run  # pylint: disable=import-outside-toplevel
    return run


def cmd_logs(args):
    cfg = hostconfig.load(args.config)
    container = _find(cfg, args.name, 'show the logs of')
    try:
        _interactive().print_log(container, args.tail, args.follow)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_exec(args):
    return _interactive().exec_verb(args)


def cmd_run(args):
    return _interactive().run_verb(args)


def cmd_inspect(args):
    from ..container import info as container_info  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    out = container_info.info(cfg, args.names)
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
    from ..container import info as container_info  # pylint: disable=import-outside-toplevel
    from ..container.store import ContainerStore  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    views = _views()
    store = ContainerStore(cfg)
    before = _stats_sample(cfg, container_info)
    try:
        while True:
            time.sleep(args.interval)
            after = _stats_sample(cfg, container_info)
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
    from ..container import converge  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    store = converge.open_store(cfg)
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
    from ..container import converge  # pylint: disable=import-outside-toplevel
    return _lifecycle(args, lambda cfg, _store, c: converge.start(cfg, c))


def cmd_stop(args):
    from ..container import converge  # pylint: disable=import-outside-toplevel
    return _lifecycle(args, lambda cfg, _store, c: converge.stop(cfg, c, timeout=args.time))


def cmd_rm(args):
    from ..container import converge  # pylint: disable=import-outside-toplevel

    def remove(cfg, store, container):
        status = container.status()
        if not args.force and (status['running'] or status['status'] == 'restarting'):
            raise NsboxError('remove', 'container %s' % container.name, 'it is %s (stop it first, or give -f)' % status['status'])
        converge.remove(cfg, store, container, force=True)
    return _lifecycle(args, remove)


def cmd_pull(args):
    """``image``'s pull (the host config's registries and mirrors), drawn: a bar per layer on a terminal,
    one line per layer and step otherwise, only the reference with ``--quiet``."""
    from ..image import images  # pylint: disable=import-outside-toplevel
    from . import term  # pylint: disable=import-outside-toplevel
    views = _views()
    cfg = hostconfig.load(args.config)
    board = None if args.quiet or not sys.stdout.isatty() else term.Board(sys.stdout)
    steps = {}

    def progress(digest, status, done, total):
        if args.quiet:
            return
        if board is not None:  # a new step is drawn at once; a download's bytes at most every 0.1 s
            if board.set(digest, views.pull_line(digest, status, done, total)):
                board.draw(force=steps.get(digest) != status)
            steps[digest] = status
            return
        line = views.pull_plain(digest, status, done, total)
        if line is not None:
            _out(line)
            sys.stdout.flush()
    if not args.quiet:
        _out('Pulling %s' % args.ref)
    out = images.pull(cfg, args.ref, platform=args.platform, progress=progress)
    if board is not None:
        board.draw(force=True)
    if args.quiet:
        _out(args.ref)
    else:
        for line in views.pull_summary(args.ref, out['image']['digest'], out['changed']):
            _out(line)
    return 0


def cmd_prune(args):
    """Stopped containers, then images by their references (dangling, or with --all every one no container
    uses) and the blobs and layers nothing refers to, unused networks, with --volumes unused volumes."""
    from ..container import converge as containers  # pylint: disable=import-outside-toplevel
    from ..image import images  # pylint: disable=import-outside-toplevel
    from ..network import networks  # pylint: disable=import-outside-toplevel
    from ..volume import volumes  # pylint: disable=import-outside-toplevel
    from ..usage import References  # pylint: disable=import-outside-toplevel
    if not args.force and not _confirm(_views().prune_warning(args.all, args.volumes)):
        _out('nsbox: nothing removed (answer y, or give -f)', sys.stderr)
        return EXIT_FAILED
    cfg = hostconfig.load(args.config)
    out = {'containers': containers.prune(cfg)}
    refs = References(cfg)
    out['images'] = images.prune(cfg, all_unused=args.all, refs=refs)
    out['networks'] = networks.prune(cfg, refs=refs)
    out['volumes'] = volumes.prune(cfg, refs=refs) if args.volumes else []
    out['reclaimed'] = sum(c['size'] for c in out['containers']) + out['images']['size'] + sum(v['size'] for v in out['volumes'])
    if args.format == 'json':
        _print_json(out)
    else:
        _out(_views().prune_text(out))
    return 0


def _confirm(warning):
    sys.stderr.write(warning + '\nAre you sure you want to continue? [y/N] ')
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ('y', 'yes')


def cmd_network_ls(args):
    from ..network import networks  # pylint: disable=import-outside-toplevel
    found = networks.info(hostconfig.load(args.config))['networks']
    if args.format == 'json':
        _print_json(found)
    else:
        _out(_views().network_table(found))
    return 0


def cmd_volume_ls(args):
    from ..volume import volumes  # pylint: disable=import-outside-toplevel
    from ..usage import References  # pylint: disable=import-outside-toplevel
    cfg = hostconfig.load(args.config)
    found = volumes.info(cfg, refs=References(cfg))['volumes']
    if args.format == 'json':
        _print_json(found)
    else:
        _out(_views().volume_table(found))
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
    sp = _verb(sub, 'exec', cmd_exec, 'run a command in a running container; exits with its exit code '
               '(125 nsbox failed, 126 the command cannot be run, 127 not found)')
    sp.add_argument('-i', '--interactive', action='store_true', help='keep stdin open: the command reads this command\'s input')
    sp.add_argument('-t', '--tty', action='store_true', help='give the command a terminal (a pty in the container)')
    sp.add_argument('-e', '--env', action='append', metavar='KEY=VALUE', help='set an environment variable')
    sp.add_argument('-u', '--user', default=None, help='user[:group] to run as (default: the container\'s)')
    sp.add_argument('-w', '--workdir', default=None, help='working directory (default: the container\'s)')
    sp.add_argument('name', help='the container')
    sp.add_argument('cmd', nargs=argparse.REMAINDER, metavar='COMMAND', help='the command and its arguments')
    _run_verb(sub)
    sp = _verb(sub, 'prune', cmd_prune, 'remove stopped containers, unused images, layers and networks (and volumes)')
    sp.add_argument('-a', '--all', action='store_true', help='every image no container uses (not only untagged ones)')
    sp.add_argument('--volumes', action='store_true', help='also the volumes no container mounts')
    sp.add_argument('-f', '--force', action='store_true', help='do not ask')
    _format_arg(sp)
    sp = _verb(sub, 'pull', cmd_pull, 'pull an image from its registry (a progress bar per layer on a terminal)')
    sp.add_argument('-q', '--quiet', action='store_true', help='print only the reference when done')
    sp.add_argument('--platform', default=None, help='os/arch[/variant] (default: this host\'s)')
    sp.add_argument('ref', metavar='REFERENCE', help='the image, as registry/repository:tag or @sha256:...')
    for noun, func in (('network', cmd_network_ls), ('volume', cmd_volume_ls)):
        sp = sub.add_parser(noun, help='manage %ss (ls)' % noun, description='%ss of this host' % noun)
        nsub = sp.add_subparsers(dest='subcommand', metavar='COMMAND')
        nsub.required = True
        _format_arg(_verb(nsub, 'ls', func, 'list %ss' % noun))


def _run_verb(sub):
    sp = _verb(sub, 'run', cmd_run, 'create and start a container (pulling its image when missing); attached, exits with its exit code '
               '(125 nsbox failed)')
    sp.add_argument('-d', '--detach', action='store_true', help='start it and print its id (else: stream its output until it ends)')
    sp.add_argument('--name', default=None, help='the container\'s name (default: run-<random hex>)')
    sp.add_argument('--rm', action='store_true', help='remove it when it ends (attached only)')
    sp.add_argument('-e', '--env', action='append', metavar='KEY=VALUE', help='set an environment variable')
    sp.add_argument('-p', '--publish', action='append', metavar='[IP:]HOST:CONTAINER[/PROTO]', help='publish a port (bridge networks)')
    sp.add_argument('-v', '--volume', action='append', metavar='SRC:DST[:OPTS]', help='a volume name or host path, and where it goes')
    sp.add_argument('--network', default=None, metavar='MODE|NETWORK', help='none, host, bridge or a network\'s name (default: the host config\'s)')
    sp.add_argument('-i', '--interactive', action='store_true', help='keep the container\'s stdin open (attached: fed from this command\'s)')
    sp.add_argument('-t', '--tty', action='store_true', help='give the container a terminal (its output is logged as one stream)')
    sp.add_argument('image', help='the image reference')
    sp.add_argument('cmd', nargs=argparse.REMAINDER, metavar='COMMAND', help='the command (default: the image\'s)')


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
    sub.add_parser('oci', help='the OCI runtime command line (nsbox oci --help; also nsbox-oci)', add_help=False)
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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ['oci']:  # the OCI runtime command line (nsbox-oci): a front of its own
        from .oci import main as oci_main  # pylint: disable=import-outside-toplevel
        oci_main(argv[1:])
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
    except OSError as exc:  # what the library did not word itself: said, never as a traceback
        _out('nsbox: %s%s' % (exc.strerror or exc, ' (%s)' % exc.filename if exc.filename else ''), sys.stderr)
        code = EXIT_FAILED
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
