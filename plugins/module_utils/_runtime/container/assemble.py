# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Assembling a container from its record, and taking it apart (DESIGN D2): ``prepare`` (rootfs mount,
network namespace and attachment, hostname/hosts/resolv.conf, volumes), ``launch`` (the typed spec to
``launch.process.start``, in its cgroup), ``teardown`` and ``finish`` (after the init ended: cgroup,
mounts, network gone, the exit recorded). The supervisor (supervisor.py) and the systemd runner
(runner.py) both launch and finish through here; exec (execute.py) enters what it made.
"""
from __future__ import annotations

import dataclasses
import os

from ..kernel import mountinfo, userns as userns_mod
from ..image import rootfs as rootfs_mod
from ..cgroups.factory import for_config
from ..cgroups.layout import Layout
from ..cgroups.v2 import CgroupV2Manager
from ..errors import NsboxError
from ..kernel.idmap import map_dicts
from ..image.store import ImageStore
from ..volume import volumes as volume_service
from ..volume.store import data_path as volume_data_path
from ..network import etc_files
from ..launch import devices as device_options, mounts, process
from ..launch.spec import Launch
from . import idranges, security, users
from .options import resources_of
from .spec import ContainerSpec
from .store import ContainerError, ContainerStore, now

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


def read_in_root(root, path):
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


def _containers_of(cfg):
    """The network room's view of this data-root's containers (it never imports this room)."""
    return lambda: {c.id: c for c in ContainerStore(cfg).all()}


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


def process_spec(store, container, user, userns=None):
    """The one translation of a container's typed spec (container/spec.py) into its launch spec (launch/spec.Launch,
    checked once), for a container whose rootfs is mounted; ``userns``: :func:`userns_settings`."""
    spec = ContainerSpec.of(container.config)
    ns = namespace_paths(store, container)
    env = list(spec.env)
    if not any(e.startswith('HOME=') for e in env):
        env.append('HOME=' + user['home'])
    hostname = spec.hostname or container.id[:12]
    own_uts = 'uts' in ns and ns['uts'] is None
    if own_uts:
        env.append('HOSTNAME=' + hostname)
    etc = [{'type': 'bind', 'source': container.path(name), 'target': '/etc/' + name, 'readonly': False, 'options': []}
           for name in ('hostname', 'hosts', 'resolv.conf')]
    user_mounts = [_launch_mount(store, m) for m in spec.mounts]
    return Launch.of({
        'rootfs': container.rootfs, 'readonly_rootfs': spec.read_only,
        'args': (['/dev/init', '--'] if spec.init else []) + list(spec.args), 'env': env,
        'cwd': spec.working_dir or '/', 'user': {k: user[k] for k in ('uid', 'gid', 'additional_gids')},
        'hostname': hostname if own_uts else None, 'namespaces': ns, 'loopback': 'net' in ns and ns['net'] is None,
        # Parents before children (Docker sorts by depth): a bind at /data then one at /data/x.
        'mounts': sorted(etc + user_mounts, key=lambda m: m['target'].rstrip('/').count('/')), 'init': INIT_PATH if spec.init else None,
        **security.process_settings(container.config),
        'sysctls': dict(DEFAULT_NET_SYSCTLS if spec.namespaces['network'] in ('none', 'bridge') else {}, **spec.sysctls),
        'rlimits': [dataclasses.asdict(u) for u in spec.ulimits], 'oom_score_adj': spec.oom_score_adj,
        'terminal': spec.tty, 'shm_size': spec.shm_size, 'devices': device_options.process_nodes(container.config),
        'userns': userns,
    })


def _launch_mount(store, mount):
    """A container's mount (container/spec.Mount) as process.start mounts it: a volume is a bind of its data."""
    if mount.type in ('bind', 'volume'):
        source = mount.source if mount.type == 'bind' else volume_data_path(store.data_root, mount.source)
        return {'type': 'bind', 'source': source, 'target': mount.target, 'readonly': mount.read_only,
                'options': [mount.propagation] if mount.propagation != 'rprivate' else []}
    opts = ['size=%d' % mount.tmpfs_size] if mount.tmpfs_size is not None else []
    opts += ['mode=%o' % mount.tmpfs_mode] if mount.tmpfs_mode is not None else []
    return {'type': 'tmpfs', 'source': 'tmpfs', 'target': mount.target, 'readonly': mount.read_only, 'options': opts}


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
        # Imported here: pyroute2 costs ~170 ms, paid only by a container that makes a network.
        from ..network import netns, networks as network_service  # pylint: disable=import-outside-toplevel
        netns.create(netns_path(container), cfg.kernel)
        attachment = network_service.attach(cfg, container, netns_path(container), _containers_of(cfg))
        peers = network_service.peers_of(network_service.NetworkStore(cfg), container.id, attachment)
    _write(container.path('hostname'), hostname + '\n')
    _write(container.path('hosts'), etc_files.hosts_text(container.config, hostname, attachment, peers or ()))
    host_resolv, source = etc_files.host_resolv_conf()
    own_loopback = container.config['namespaces']['network'] == 'host'  # the host's stub resolver is reachable there
    _write(container.path('resolv.conf'), etc_files.resolv_text(container.config, host_resolv, source, keep_loopback=own_loopback))
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
        user = users.resolve(container.config['user'], read_in_root(container.rootfs, '/etc/passwd'),
                             read_in_root(container.rootfs, '/etc/group'), container.config.get('group_add') or ())
        spec = process_spec(store, container, user, userns_settings(cfg, container))
        pid = process.start(spec, stdio, lambda p: manager.add_procs([p]), kernel=cfg.kernel)
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
    return 'idmapped' if userns_mod.idmap_supported(ImageStore(cfg.data_root, cfg['storage_driver']).layers_dir, cfg.kernel) else 'chown'


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
        # Imported here: pyroute2 costs ~170 ms, paid only by a container that had a network.
        from ..network import netns, networks as network_service  # pylint: disable=import-outside-toplevel
        try:
            network_service.detach(cfg, container.id, _containers_of(cfg), netns_path(container))
            netns.remove(netns_path(container), cfg.kernel)
        except NsboxError as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


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
