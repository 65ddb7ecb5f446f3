# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a container is, as the ``container_info`` module, ``nsbox ps``/``inspect`` and every converge's result show it:
its record, its state read from the kernel, its networks, its cgroup's usage, its last log lines."""
from __future__ import annotations

from ..errors import NsboxError
from ..kernel.idmap import map_dicts
from ..network import etc_files
from ..network.store import NetworkStore
from . import assemble, health as health_mod, idranges, logs, options
from .store import ContainerStore


def describe(cfg, container, log_lines=0):
    """The public form: id, name, state (from the kernel), the config, resource usage, last log lines."""
    status = container.status()
    if container.config.get('healthcheck'):
        status['health'] = health_mod.read(container) if status['running'] else None
    if container.config['namespaces'].get('network') == 'bridge':
        att = NetworkStore(cfg).attachment(container.id) if status['running'] else None
        status['networks'] = {ep['network']: {'address': ep['address'], 'prefixlen': ep['prefixlen'], 'gateway': ep['gateway'],
                                              'mac_address': ep.get('mac'),  # None: started before MACs were derived (random)
                                              'interface': 'eth%d' % i, 'host_interface': ep['veth'], 'aliases': ep.get('aliases') or []}
                              for i, ep in enumerate((att or {}).get('endpoints') or ())}
        status['ports'] = ['%s:%d->%d/%s' % (p['host_ip'], p['host_port'], p['container_port'], p['protocol'])
                           for p in (att or {}).get('ports') or ()]
    status['dns_source'] = etc_files.dns_source(assemble.read_in_root(container.path(), 'resolv.conf') or '')
    userns = container.config.get('userns') or idranges.HOST
    if userns['mode'] != 'host':
        maps = idranges.maps_of(cfg, container) if userns['mode'] != 'auto' or idranges.RangeStore(cfg).get(container.id) else None
        status['userns'] = {'mode': userns['mode'], 'uid_map': map_dicts(maps[0]) if maps else None,
                            'gid_map': map_dicts(maps[1]) if maps else None,
                            'rootfs': container.read_state().get('userns_rootfs')}
    out = {'id': container.id, 'name': container.name, 'image': container.config['image'], 'state': status,
           'config': options.display_config(container.config)}
    if status['running']:
        try:
            out['stats'] = assemble.cgroup_of(cfg, container).stats()
        except NsboxError:
            out['stats'] = None
    if log_lines:
        out['logs'] = logs.tail(container.log_path, log_lines, container.config['log']['max_files'])
    return out


def info(cfg, names=None, log_lines=0):
    store = ContainerStore(cfg)
    found = store.all() if not names else [c for c in (store.find(n) for n in names) if c is not None]
    return {'containers': [describe(cfg, c, log_lines) for c in found],
            'missing': [n for n in (names or []) if store.find(n) is None]}


def labelled(cfg, labels):
    """The containers whose labels include every one of ``labels`` (same value), by name: [{'name', 'depends_on'}]."""
    wanted = {key: str(value) for key, value in labels.items()}
    return sorted(({'name': c.name, 'depends_on': list(c.config.get('depends_on') or [])} for c in ContainerStore(cfg).all()
                   if wanted.items() <= {k: str(v) for k, v in (c.config.get('labels') or {}).items()}.items()),
                  key=lambda c: c['name'])
