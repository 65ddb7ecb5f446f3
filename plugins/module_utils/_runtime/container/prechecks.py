# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is checked before a container is made or replaced, so that nothing is stopped or changed for a start that
would fail: its networks, its bind sources, its user and groups in the image, its CPUs on this host."""
from __future__ import annotations

import os

from ..cgroups.resources import expand_list
from ..errors import ConfigError
from ..image import rootfs as rootfs_mod
from ..image.store import ImageStore
from ..network.store import NetworkStore
from . import users


def check_networks(cfg, config):
    """The networks a container joins exist (the default one is made on first use), as docker create checks."""
    if not config.get('networks'):
        return
    store = NetworkStore(cfg)
    for net in config['networks']:
        if net['name'] != store.default['name'] and store.get(net['name']) is None:
            raise ConfigError('use', 'network %s' % net['name'], 'no such network (create it with nsbox.runtime.network)')


def check_bind_sources(config):
    """Bind sources exist on the host: said before anything is made (the start would fail on them anyway)."""
    for m in config['mounts']:
        if m['type'] == 'bind' and not os.path.exists(m['source']):
            raise ConfigError('bind', '%s at %s' % (m['source'], m['target']), 'the source does not exist on the host')


def check_host_cpus(config, online='/sys/devices/system/cpu/online'):
    """cpuset_cpus names CPUs this host has (the kernel's answer, ERANGE, names no option)."""
    wanted = (config.get('resources') or {}).get('cpuset_cpus')
    try:
        with open(online) as f:
            have = expand_list(f.read().strip())
    except OSError:
        return
    if wanted and not expand_list(wanted) <= have:
        raise ConfigError('use', 'cpuset_cpus %s' % wanted, 'this host has CPUs %s' % _cpu_text(have))


def check_user(cfg, config):
    """The user and groups resolve in the image, read from its layers (its start would fail on them, after a
    recreate stopped the container it replaces). An image whose files cannot be read so is left to the start."""
    store = ImageStore(cfg.data_root, cfg['storage_driver'])
    record = store.index()['images'].get(config['image']['digest'])
    if record is None:
        return
    try:
        passwd, group = (rootfs_mod.read_file(store, record, path) for path in ('/etc/passwd', '/etc/group'))
    except (rootfs_mod.Unknown, OSError):
        return
    users.resolve(config['user'], passwd, group, config.get('group_add') or ())


def _cpu_text(cpus):
    return ','.join(str(c) for c in sorted(cpus)) if len(cpus) < 8 else '%d-%d' % (min(cpus), max(cpus))
