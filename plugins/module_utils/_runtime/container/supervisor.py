# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The supervisor of one running container on a host without systemd (DESIGN D2).

``nsbox supervise ID --sync-fd FD`` is exec'd by ``service.start`` after a double fork and
``setsid``, so it belongs to no Ansible run. It is a child subreaper: the container's init,
forked by an intermediate (``process.start``), becomes its child and it gets the real exit
status. It answers on the sync fd once the container runs (``{"pid": N}``) or could not be
started (``{"error": {...}}``) — nothing is left behind then — and the module returns.

``--adopt`` takes over a container whose supervisor died: the init is not its child, so it
watches it with a pidfd and records an unknown exit code when it ends.

After the init ended, ``after_exit`` records it and applies the restart policy (policy.py);
``--restart`` is the same process starting the container again after the back-off.

Launch and teardown (``launch``/``teardown``) are also what ``runner`` (systemd) uses.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import signal
import socket
import time

from .. import mountinfo, rootfs as rootfs_mod, userns as userns_mod
from ..cgroups.layout import Layout, for_config
from ..cgroups.v2 import CgroupV2Manager
from ..errors import NsboxError
from ..idmap import map_dicts
from ..image.store import ImageStore
from ..namespaces import boot_id, process_stamp
from ..volume import service as volume_service
from ..volume.store import data_path as volume_data_path
from ..network import etc_files
from . import devices as device_options, health as health_mod, idranges, monitor, mounts, policy, process, security, users
from .options import resources_of
from .store import ContainerError, now

INIT_PATH = '/usr/bin/catatonit'
# Set in a network namespace of the container's own, as Docker does (unless the config says otherwise):
# ports below 1024 and ICMP echo sockets without a capability.
DEFAULT_NET_SYSCTLS = {'net.ipv4.ip_unprivileged_port_start': '0', 'net.ipv4.ping_group_range': '0 2147483647'}


def cgroup_of(cfg, container):
    """The container's cgroup manager: the one its state records (a child of its unit's own cgroup, see
    runner.delegated_cgroup), else the host config's parent and driver."""
    layout = Layout.detect()
    own = container.read_state().get('cgroup')
    if own and layout.unified:
        return CgroupV2Manager(own, layout.unified)
    return for_config(cfg, container.id, None, layout)


def _read_in_root(root, path):
    try:
        with open(mounts.secure_join(root, path), errors='replace') as f:
            return f.read()
    except OSError:
        return None


def _write(path, text):
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
        f.write(text)
    os.rename(tmp, path)


def netns_path(container):
    """Where a bridged container's network namespace is persisted (made before its init, network/netns.py)."""
    return os.path.join(container.run_dir, 'netns')


def namespace_paths(store, container):
    """The spec's namespaces: {type: None (new) | path (join)}; types absent stay the host's."""
    config = container.config
    out = {'mnt': None, 'cgroup': None}
    table = {'network': 'net', 'pid': 'pid', 'ipc': 'ipc', 'uts': 'uts'}
    for key, ns_type in table.items():
        mode = config['namespaces'][key]
        if mode == 'bridge':
            out[ns_type] = netns_path(container)
        elif mode in ('private', 'none'):
            out[ns_type] = None
        elif mode == 'host':
            continue
        elif mode.startswith('container:'):
            other = store.find(mode.split(':', 1)[1])
            status = other.status() if other else None
            if not status or not status['running']:
                raise ContainerError('join', 'the %s namespace of container %s' % (ns_type, mode.split(':', 1)[1]),
                                     'that container does not exist or is not running')
            out[ns_type] = '/proc/%d/ns/%s' % (status['pid'], ns_type)
        else:  # ns:NAME, a persisted namespace (namespace module)
            path = os.path.join(store.state_dir, 'ns', mode.split(':', 1)[1], ns_type)
            if not os.path.exists(path):
                raise ContainerError('join', 'the %s namespace %s' % (ns_type, mode.split(':', 1)[1]),
                                     'no persisted %s namespace at %s (create it with the namespace module)' % (ns_type, path))
            out[ns_type] = path
    return out


def process_spec(store, container, user):
    """The ``process.start`` spec for a container whose rootfs is mounted."""
    config = container.config
    ns = namespace_paths(store, container)
    env = list(config['env'])
    if not any(e.startswith('HOME=') for e in env):
        env.append('HOME=' + user['home'])
    hostname = config.get('hostname') or container.id[:12]
    if 'uts' in ns and ns['uts'] is None:
        env.append('HOSTNAME=' + hostname)
    args = list(config['args'])
    if config.get('init'):
        args = ['/dev/init', '--'] + args
    etc = []
    for name in ('hostname', 'hosts', 'resolv.conf'):
        etc.append({'type': 'bind', 'source': container.path(name), 'target': '/etc/' + name, 'readonly': False, 'options': []})
    user_mounts = []
    for m in config['mounts']:
        if m['type'] in ('bind', 'volume'):
            source = m['source'] if m['type'] == 'bind' else volume_data_path(store.data_root, m['source'])
            user_mounts.append({'type': 'bind', 'source': source, 'target': m['target'], 'readonly': m['read_only'],
                                'options': [m['propagation']] if m.get('propagation') else []})
        else:
            opts = []
            if m.get('tmpfs_size') is not None:
                opts.append('size=%d' % m['tmpfs_size'])
            if m.get('tmpfs_mode') is not None:
                opts.append('mode=%o' % m['tmpfs_mode'])
            user_mounts.append({'type': 'tmpfs', 'source': 'tmpfs', 'target': m['target'], 'readonly': m['read_only'], 'options': opts})
    return {
        'rootfs': container.rootfs, 'readonly_rootfs': bool(config.get('read_only')), 'args': args, 'env': env,
        'cwd': config.get('working_dir') or '/', 'user': {k: user[k] for k in ('uid', 'gid', 'additional_gids')},
        'hostname': hostname if ('uts' in ns and ns['uts'] is None) else None,
        'namespaces': ns, 'loopback': 'net' in ns and ns['net'] is None,
        # Parents before children (Docker sorts by depth): a bind at /data then one at /data/x.
        'mounts': sorted(etc + user_mounts, key=lambda m: m['target'].rstrip('/').count('/')), 'init': INIT_PATH if config.get('init') else None,
        **security.process_settings(config),
        'sysctls': dict(DEFAULT_NET_SYSCTLS if config['namespaces']['network'] in ('none', 'bridge') else {}, **(config.get('sysctls') or {})),
        'rlimits': list(config.get('ulimits') or []), 'oom_score_adj': config.get('oom_score_adj'),
        'terminal': bool(config.get('tty')), 'shm_size': config.get('shm_size'), 'devices': device_options.process_nodes(config),
    }


def check_propagation(config, mountinfo_path='/proc/self/mountinfo'):
    """A bind with shared or slave propagation receives the host's later mounts only if its source is on a
    shared mount (slave: shared or a slave itself); refused otherwise, as Docker does, rather than silently private."""
    wanted = [m for m in config.get('mounts') or () if m.get('propagation') in ('shared', 'rshared', 'slave', 'rslave')]
    if not wanted:
        return
    table = mountinfo.read(mountinfo_path)
    for m in wanted:
        source = os.path.realpath(m['source'])
        under = [t for t in table if source == t.mount_point or source.startswith(t.mount_point.rstrip('/') + '/')]
        if not under:
            continue
        top = max(under, key=lambda t: len(t.mount_point))  # the last (topmost) of the longest mount point
        top = [t for t in under if t.mount_point == top.mount_point][-1]
        tags = ' '.join(top.propagation)
        ok = 'shared:' in tags or (m['propagation'].endswith('slave') and 'master:' in tags)
        if not ok:
            raise ContainerError('bind', '%s at %s with %s propagation' % (m['source'], m['target'], m['propagation']),
                                 'its source is on mount %s, which is not %s (make it so: mount --make-%s %s)' % (
                                     top.mount_point, 'shared' if 'shared' in m['propagation'] else 'shared or a slave',
                                     'shared', top.mount_point), path=m['source'])


def prepare(cfg, store, container):
    """Mount the rootfs, create the cgroup with the config's limits, write the /etc files. Returns the cgroup manager."""
    if container.config.get('init') and not os.path.isfile(INIT_PATH):
        raise ContainerError('start', 'container %s' % container.name,
                             'init: true needs catatonit at %s (Debian package catatonit; the host role installs it)' % INIT_PATH)
    check_propagation(container.config)
    rootfs_mod.ensure(cfg, container.rootfs, image=container.config['image']['digest'], upper=container.path('upper'),
                      work=container.path('work'))
    volume_service.prepare(cfg, container.config, container.rootfs, mounts.secure_join)  # first use: the image's content copied in
    workdir = container.config.get('working_dir') or '/'
    if workdir != '/':  # made in the writable layer before a read-only root could refuse it (Docker's WORKDIR)
        os.makedirs(mounts.secure_join(container.rootfs, workdir), 0o755, exist_ok=True)
    hostname = container.config.get('hostname') or container.id[:12]
    attachment = peers = None
    if container.config['namespaces']['network'] == 'bridge':  # its network namespace, made and wired before the init
        from ..network import netns, service as network_service  # pylint: disable=import-outside-toplevel
        netns.create(netns_path(container))
        attachment = network_service.attach(cfg, container, netns_path(container))
        peers = network_service.peers_of(network_service.NetworkStore(cfg), container.id, attachment)
    _write(container.path('hostname'), hostname + '\n')
    _write(container.path('hosts'), etc_files.hosts_text(container.config, hostname, attachment, peers or ()))
    _write(container.path('resolv.conf'), etc_files.resolv_text(container.config, etc_files.host_resolv_conf()))
    manager = cgroup_of(cfg, container)
    if not manager.exists():
        manager.create()
    manager.apply(resources_of(container.config))
    return manager


def launch(cfg, store, container, stdio):
    """Prepare and start the container's init; returns (pid, cgroup manager). Undoes itself on failure."""
    manager = None
    try:
        manager = prepare(cfg, store, container)
        user = users.resolve(container.config['user'], _read_in_root(container.rootfs, '/etc/passwd'),
                             _read_in_root(container.rootfs, '/etc/group'), container.config.get('group_add') or ())
        spec = process_spec(store, container, user)
        spec['userns'] = userns_settings(cfg, container)
        pid = process.start(spec, stdio, lambda p: manager.add_procs([p]))
    except BaseException:
        teardown(cfg, container, manager)
        raise
    return pid, manager


def userns_method(cfg):
    """How the rootfs is made usable in the user namespace: the host config's ``userns.rootfs``; ``auto`` is
    ``idmapped`` where the kernel idmaps the layers' filesystem, else ``chown``. The vfs driver always shifts
    its copy (chown): it is the container's own, and an idmapped clone of it would refuse root of the host
    making the container's mount points in it (EOVERFLOW: host id 0 is not in the map)."""
    if cfg['storage_driver'] != 'overlay':
        return 'chown'
    method = cfg['userns']['rootfs']
    if method != 'auto':
        return method
    return 'idmapped' if userns_mod.idmap_supported(ImageStore(cfg.data_root, cfg['storage_driver']).layers_dir) else 'chown'


def userns_settings(cfg, container):
    """The spec's ``userns`` (None without one), the rootfs prepared for its method (docs/container.md, "User
    namespaces"). idmapped (overlay): the host's overlay is unmounted (the init mounts its own, of idmapped layers,
    on the same upper dir) and what the upper dir holds owned by unmapped ids (its root dir; what root of the host
    made there, such as the working dir) is shifted to the mapped ones. chown: every file of the mounted rootfs is
    shifted (overlay: copied up; the shared layers are never changed)."""
    maps = idranges.maps_of(cfg, container)
    if maps is None:
        return None
    uid_map, gid_map = maps
    method = userns_method(cfg)
    rootfs = {'method': method}
    if method == 'idmapped':
        spec = rootfs_mod.for_image(ImageStore(cfg.data_root, cfg['storage_driver']), container.config['image']['digest'],
                                    container.rootfs, container.path('upper'), container.path('work'))
        rootfs['overlay'] = {'layers': spec.cwd, 'options': spec.options()}
        rootfs_mod.ensure(cfg, container.rootfs, upper=container.path('upper'), work=container.path('work'), state='unmounted')
        userns_mod.shift_tree(container.path('upper'), uid_map, gid_map)
    elif method == 'chown':
        userns_mod.shift_tree(container.rootfs, uid_map, gid_map)
    container.write_state(userns_rootfs=method)
    return {'uid_map': map_dicts(uid_map), 'gid_map': map_dicts(gid_map), 'rootfs': rootfs}


def oom_kills(manager):
    """OOM kills counted in the container's cgroup (memory.events on v2, memory.oom_control on v1)."""
    try:
        return int((manager.stats().get('memory') or {}).get('oom_kills') or 0)
    except (NsboxError, OSError, ValueError, TypeError):
        return 0


def teardown(cfg, container, manager=None):
    """Kill what is left in the cgroup, remove it, unmount the rootfs. Safe to repeat."""
    manager = manager or cgroup_of(cfg, container)
    errors = []
    try:
        if manager.exists():
            manager.remove()
    except NsboxError as exc:
        if manager.exists():  # gone meanwhile (another teardown): done, not an error
            errors.append(exc)
    try:
        rootfs_mod.ensure(cfg, container.rootfs, upper=container.path('upper'), work=container.path('work'), state='unmounted')
    except NsboxError as exc:
        errors.append(exc)
    if container.config['namespaces'].get('network') == 'bridge' or os.path.exists(netns_path(container)):
        from ..network import netns, service as network_service  # pylint: disable=import-outside-toplevel
        try:
            network_service.detach(cfg, container.id, netns_path(container))
            netns.remove(netns_path(container))
        except NsboxError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


def _stamp(pid):
    stamp = process_stamp(pid)
    return stamp[1] if stamp else None


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
        pid, manager = launch(cfg, store, container, stdio)
    except BaseException:
        for fd in fds.values():
            os.close(fd)
        raise
    finally:
        for fd in set(stdio):
            os.close(fd)
    health_mod.reset(container)
    container.write_state(status='running', pid=pid, pid_start=_stamp(pid), boot_id=me['boot_id'], supervisor=me,
                          started_at=now(), started_monotonic=time.monotonic(), finished_at=None, exit_code=None,
                          oom_killed=False, error=None)
    return fds, pid, manager


def _lock_unless_stopping(container):
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
    me = me or {'pid': os.getpid(), 'start_time': _stamp(os.getpid()), 'boot_id': boot_id()}
    try:
        config = container.read_config()  # a stored update of the policy counts
    except NsboxError:
        config = container.config
    state = container.read_state()
    count = state.get('restart_count') or 0
    may_restart = policy.should_restart(config.get('restart_policy'), code, count, False)
    finish(cfg, container, code, manager, keep_supervisor=me if may_restart else None)
    if not may_restart:
        return False
    container.config = config
    fd = _lock_unless_stopping(container)
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
        container.write_state(status='restarting', restart_count=count + 1, restart_delay=delay, supervisor=me)
    finally:
        os.close(fd)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline:
        if _stop_asked(container):
            _restart_cancelled(container)
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


def _restart_cancelled(container):
    if os.path.isdir(container.path()):
        state = container.read_state()
        if state.get('status') == 'restarting':
            container.write_state(status='exited', supervisor=None)


def supervise(cfg, store, cid, sync_fd=None, adopt=False, restart=False, console=None):
    """The supervisor's life (``nsbox supervise``); returns an exit code for the CLI.

    ``console``: the first start's stdio (service.start's), closed once the init has it; a restart makes its own.
    ``restart``: started again by the restart policy (no one waits for an answer): the container's
    lock is taken first, and a stop asked for meanwhile ends it without starting anything.
    """
    sock = socket.socket(fileno=sync_fd) if sync_fd is not None else None
    container = store.find(cid)
    if container is None:
        _answer(sock, {'error': {'action': 'supervise', 'obj': 'container %s' % cid, 'cause': 'it does not exist'}})
        return 1
    process.become_subreaper()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    me = {'pid': os.getpid(), 'start_time': _stamp(os.getpid()), 'boot_id': boot_id()}
    while True:
        manager = None
        try:
            os.makedirs(container.run_dir, 0o700, exist_ok=True)
            if adopt:
                state = container.read_state()
                pid = state['pid']
                fds = _open_fifos(container, create=False)
                manager = cgroup_of(cfg, container)
                container.write_state(supervisor=me)
            elif restart:
                lock = _lock_unless_stopping(container)
                if lock is None:
                    _restart_cancelled(container)
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
            _answer(sock, {'error': {'action': 'supervise', 'obj': 'container %s' % container.name, 'cause': repr(exc)}})
            return 1
        _answer(sock, {'pid': pid})
        sock = None
        pid_start = container.read_state().get('pid_start')
        check = container.config.get('healthcheck')
        if monitor.exec_monitor(cfg, container.id, pid, pid_start, fds, container.config['log'], adopt, check):
            return 0  # pragma: no cover - exec_monitor execs
        timer = monitor.HealthTimer(check, monitor.health_spawner(cfg.data, container.id, None)) if check else None
        code = monitor.watch(pid, fds, container.config['log'], container.log_path, adopt, pid_start, timer)
        if not after_exit(cfg, container, code, manager, me):
            return 0
        container = store.find(cid)
        if container is None:
            return 0
        adopt, restart = False, True


def finish(cfg, container, code, manager=None, oom=False, keep_supervisor=None):
    """After the init ended: OOM kills counted, the cgroup and rootfs mount gone, ``exited`` recorded.
    ``keep_supervisor``: this supervisor stays recorded (it may restart the container: a module that
    stops it must see it and wait for it)."""
    manager = manager or cgroup_of(cfg, container)
    oom = oom or (oom_kills(manager) > 0 if manager.exists() else False)
    error = None
    try:
        teardown(cfg, container, manager)
    except NsboxError as exc:
        error = 'cleanup after exit: %s' % exc.message
    container.write_state(status='exited', pid=None, exit_code=code, oom_killed=oom, finished_at=now(), error=error,
                          supervisor=keep_supervisor)
