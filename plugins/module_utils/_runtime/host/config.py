# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host configuration, ``/etc/nsbox/config.json`` (DESIGN D5).

Every front (modules, CLI, runner) reads it through :func:`load`; module options
override single keys with :func:`HostConfig.override`.
"""
from __future__ import annotations

import copy
import ipaddress
import os

from ..errors import ConfigError
from ..kernel.fsutil import read_json

CONFIG_PATH = '/etc/nsbox/config.json'
CONFIG_ENV = 'NSBOX_CONFIG'
SCHEMA_VERSION = 1

DEFAULTS = {
    'data_root': '/var/lib/nsbox',
    'state_dir': '/run/nsbox',
    'storage_driver': 'overlay',
    'cgroup_driver': 'auto',
    'cgroup_parent': None,
    'default_network': {'name': 'nsbox0', 'subnet': '10.77.0.0/16'},
    'default_network_mode': 'bridge',
    'log_driver': 'json-file',
    'registries': {'mirrors': {}, 'insecure': [], 'ca_files': {}},
    'proxies': {'http_proxy': None, 'https_proxy': None, 'no_proxy': None},
    # userns_mode auto: the pool of host ids ("start:count", as /etc/subuid without names; container/idranges.py)
    # and how a rootfs is made usable in a user namespace (auto: idmapped mounts where the kernel has them, else chown).
    'userns': {'pool': ['2147483648:1073741824'], 'rootfs': 'auto'},
}
USERNS_ROOTFS = ('auto', 'idmapped', 'chown')

CHOICES = {
    'storage_driver': ('overlay', 'vfs'),
    'cgroup_driver': ('auto', 'cgroupfs', 'systemd'),
    'log_driver': ('json-file', 'journald'),
    'default_network_mode': ('bridge', 'none', 'host'),
}


def config_path():
    """Where the host config lives: ``$NSBOX_CONFIG`` or ``/etc/nsbox/config.json``."""
    return os.environ.get(CONFIG_ENV) or CONFIG_PATH


def _check_abs(key, value):
    if not isinstance(value, str) or not os.path.isabs(value) or value.rstrip('/') == '':
        raise ConfigError('validate', 'host config', '%s must be an absolute path other than /, got %r' % (key, value))
    return os.path.normpath(value)


def _check_str_map(key, value, value_type):
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, value_type) for k, v in value.items()):
        raise ConfigError('validate', 'host config', '%s must be a mapping of strings' % key)


def validate(data):
    """Return a complete, checked copy of ``data`` merged over the defaults."""
    if not isinstance(data, dict):
        raise ConfigError('validate', 'host config', 'expected a mapping, got %s' % type(data).__name__)
    unknown = sorted(set(data) - set(DEFAULTS) - {'schema_version'})
    if unknown:
        raise ConfigError('validate', 'host config', 'unknown keys: %s (known: %s)' % (', '.join(unknown), ', '.join(sorted(DEFAULTS))))
    cfg = copy.deepcopy(DEFAULTS)
    for key, value in data.items():
        if key == 'schema_version' or value is None and DEFAULTS.get(key) is not None:
            continue
        if isinstance(DEFAULTS[key], dict):
            if not isinstance(value, dict):
                raise ConfigError('validate', 'host config', '%s must be a mapping' % key)
            bad = sorted(set(value) - set(DEFAULTS[key]))
            if bad:
                raise ConfigError('validate', 'host config', 'unknown keys in %s: %s' % (key, ', '.join(bad)))
            cfg[key].update({k: v for k, v in value.items() if v is not None or DEFAULTS[key][k] is None})
        else:
            cfg[key] = value
    cfg['data_root'] = _check_abs('data_root', cfg['data_root'])
    cfg['state_dir'] = _check_abs('state_dir', cfg['state_dir'])
    if cfg['data_root'] == cfg['state_dir']:
        raise ConfigError('validate', 'host config', 'data_root and state_dir must differ')
    for key, choices in CHOICES.items():
        if cfg[key] not in choices:
            raise ConfigError('validate', 'host config', '%s must be one of %s, got %r' % (key, ', '.join(choices), cfg[key]))
    if cfg['cgroup_parent'] is not None and (not isinstance(cfg['cgroup_parent'], str) or not cfg['cgroup_parent']):
        raise ConfigError('validate', 'host config', 'cgroup_parent must be a non-empty string')
    net = cfg['default_network']
    if not isinstance(net['name'], str) or not 0 < len(net['name']) <= 15:
        raise ConfigError('validate', 'host config', 'default_network.name must be 1-15 characters (a Linux interface name)')
    try:
        ipaddress.ip_network(net['subnet'])
    except (TypeError, ValueError) as exc:
        raise ConfigError('validate', 'host config', 'default_network.subnet: %s' % exc)
    reg = cfg['registries']
    _check_str_map('registries.mirrors', reg['mirrors'], list)
    _check_str_map('registries.ca_files', reg['ca_files'], str)
    if not isinstance(reg['insecure'], list) or not all(isinstance(x, str) for x in reg['insecure']):
        raise ConfigError('validate', 'host config', 'registries.insecure must be a list of registry hosts')
    userns = cfg['userns']
    if userns['rootfs'] not in USERNS_ROOTFS:
        raise ConfigError('validate', 'host config', 'userns.rootfs must be one of %s, got %r' % (', '.join(USERNS_ROOTFS), userns['rootfs']))
    if not isinstance(userns['pool'], list) or not userns['pool'] or not all(isinstance(x, str) and x.count(':') == 1 for x in userns['pool']):
        raise ConfigError('validate', 'host config', 'userns.pool must be a list of "start:count" ranges')
    for key, value in cfg['proxies'].items():
        if value is not None and not isinstance(value, str):
            raise ConfigError('validate', 'host config', 'proxies.%s must be a string' % key)
    return cfg


class HostConfig:
    """A validated host configuration and where it came from."""

    def __init__(self, data, path=None, exists=False, kernel=None):
        self.data = validate(data)
        self.path = path
        self.exists = exists
        self._kernel = kernel

    @property
    def kernel(self):
        """The kernel the library calls for this host (kernel/syscall.py's Linux; the unit tests give a recording fake):
        carried here because every step that reaches the kernel (assemble, converge, exec) already receives the config."""
        if self._kernel is None:
            from ..kernel.syscall import LINUX  # imported here: ctypes is start-up cost for commands that never reach the kernel
            self._kernel = LINUX
        return self._kernel

    def __getitem__(self, key):
        return self.data[key]

    @property
    def data_root(self):
        return self.data['data_root']

    @property
    def state_dir(self):
        return self.data['state_dir']

    def override(self, **options):
        """A copy with the non-None ``options`` applied (module options win over the file)."""
        data = copy.deepcopy(self.data)
        data.update({k: v for k, v in options.items() if v is not None})
        return HostConfig(data, self.path, self.exists, self._kernel)

    def to_file(self):
        """The file form: every key, plus schema_version."""
        out = copy.deepcopy(self.data)
        out['schema_version'] = SCHEMA_VERSION
        return out


def load(path=None):
    """Read the host config; a missing file means all defaults."""
    path = path or config_path()
    data = read_json(path, 'host config %s' % path, SCHEMA_VERSION)
    return HostConfig(data or {}, path, exists=data is not None)
