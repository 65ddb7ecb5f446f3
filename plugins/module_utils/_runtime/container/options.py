# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container's options as one declarative table, and their resolution into a config.

Each option says how a difference is handled:

- ``live``: applied to the running container in place (cgroup limits), no restart;
- ``stored``: only the stored config changes (labels, stop signal and timeout: read when used);
- ``recreate``: the container is removed and created again (image, command, env, mounts, namespaces).

The module's argument spec and its diff come from this table; comparison is always against
the stored, resolved config that the runtime reads back (plus the cgroup files for ``live``
ones), never against a command line. Options of later issues are not in the table: Ansible
rejects them as unsupported, the library's parser as unknown — never accepted and ignored.
"""
from __future__ import annotations

import ipaddress
import json
import os
import re
import shlex
import signal

from ..cgroups.resources import Resources, display
from ..kernel.units import parse_size
from ..errors import ConfigError
from ..volume.store import validate_name as validate_volume_name
from ..launch import caps, devices as device_options
from . import idranges, policy, security

SCHEMA_VERSION = 1
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$')  # Docker's container names
DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
NS_MODES = ('network', 'pid', 'ipc', 'uts')
SUPERVISORS = ('nsbox', 'systemd', 'auto')


class Option:
    """One option: Ansible type, how a difference is applied, and where it lives in the config.

    ``field`` is a path in the stored config (``resources.memory``); options that fill one field
    together (``mounts`` and ``volumes``, ``env`` and ``env_file``) share it, and are compared as one.
    """

    def __init__(self, name, type_, update, elements=None, default=None, choices=None, field=None):
        self.name, self.type, self.update, self.elements = name, type_, update, elements
        self.default, self.choices, self.field = default, choices, field or name

    def argspec(self):
        spec = {'type': self.type}
        for key, value in (('elements', self.elements), ('default', self.default), ('choices', self.choices)):
            if value is not None:
                spec[key] = value
        return spec


TABLE = (
    Option('image', 'str', 'recreate'),
    Option('command', 'raw', 'recreate'),
    Option('entrypoint', 'list', 'recreate', elements='str'),
    Option('env', 'dict', 'recreate'),
    Option('env_file', 'path', 'recreate', field='env'),
    Option('working_dir', 'str', 'recreate'),
    Option('user', 'str', 'recreate'),
    Option('group_add', 'list', 'recreate', elements='str'),
    Option('hostname', 'str', 'recreate'),
    Option('labels', 'dict', 'stored'),
    Option('annotations', 'dict', 'stored'),
    Option('mounts', 'list', 'recreate', elements='dict'),
    Option('volumes', 'list', 'recreate', elements='str', field='mounts'),
    Option('read_only', 'bool', 'recreate'),
    Option('shm_size', 'str', 'recreate'),
    Option('tty', 'bool', 'recreate'),
    Option('interactive', 'bool', 'recreate'),
    Option('memory', 'str', 'live', field='resources.memory'),
    Option('memory_reservation', 'str', 'live', field='resources.memory_reservation'),
    Option('memory_swap', 'str', 'live', field='resources.memory_swap'),
    Option('cpus', 'float', 'live', field='resources.cpus'),
    Option('cpu_shares', 'int', 'live', field='resources.cpu_shares'),
    Option('cpuset_cpus', 'str', 'live', field='resources.cpuset_cpus'),
    Option('pids_limit', 'int', 'live', field='resources.pids_limit'),
    Option('blkio_weight', 'int', 'live', field='resources.blkio_weight'),
    Option('ulimits', 'list', 'recreate', elements='str'),
    Option('oom_score_adj', 'int', 'recreate'),
    Option('sysctls', 'dict', 'recreate'),
    Option('network_mode', 'str', 'recreate', field='namespaces.network'),
    Option('networks', 'list', 'recreate', elements='raw'),
    Option('published_ports', 'list', 'recreate', elements='str'),
    Option('dns', 'list', 'recreate', elements='str'),
    Option('dns_search', 'list', 'recreate', elements='str'),
    Option('dns_options', 'list', 'recreate', elements='str'),
    Option('extra_hosts', 'raw', 'recreate'),
    Option('pid_mode', 'str', 'recreate', field='namespaces.pid'),
    Option('ipc_mode', 'str', 'recreate', field='namespaces.ipc'),
    Option('uts_mode', 'str', 'recreate', field='namespaces.uts'),
    Option('stop_signal', 'str', 'stored'),
    Option('stop_timeout', 'int', 'stored'),
    Option('restart_policy', 'str', 'stored'),
    Option('restart_retries', 'int', 'stored', field='restart_policy'),
    Option('healthcheck', 'dict', 'recreate'),
    Option('init', 'bool', 'recreate'),
    Option('cap_add', 'list', 'recreate', elements='str'),
    Option('cap_drop', 'list', 'recreate', elements='str'),
    Option('privileged', 'bool', 'recreate'),
    Option('security_opt', 'list', 'recreate', elements='str'),
    Option('devices', 'list', 'recreate', elements='str'),
    Option('log', 'dict', 'recreate'),
    Option('userns_mode', 'str', 'recreate', choices=list(idranges.MODES), field='userns.mode'),
    Option('uidmap', 'list', 'recreate', elements='str', field='userns.uid_map'),
    Option('gidmap', 'list', 'recreate', elements='str', field='userns.gid_map'),
    Option('supervisor', 'str', 'recreate', choices=SUPERVISORS),
    Option('enabled', 'bool', 'stored'),
    Option('depends_on', 'list', 'stored', elements='str'),
)
OPTIONS = {opt.name: opt for opt in TABLE}
RESOURCE_OPTIONS = tuple(opt.name for opt in TABLE if opt.field.startswith('resources.'))
RESOURCE_FIELDS = ('memory', 'memory_reservation', 'memory_swap', 'cpus', 'cpu_period', 'cpu_shares', 'cpuset_cpus', 'pids_limit',
                   'blkio_weight')  # stored under resources: the options plus cpu_period (from cpus)
COMPARISONS = ('strict', 'ignore', 'allow_more_present')
ULIMITS = ('as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio',
           'rttime', 'sigpending', 'stack')
# Namespaced sysctls a container may set (Docker's list): IPC ones need a private ipc namespace,
# net.* a network namespace of the container's own; kernel.domainname a private uts namespace.
IPC_SYSCTLS = ('kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
               'kernel.shmmni', 'kernel.shm_rmid_forced')
SYSCTL_RE = re.compile(r'^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$')
DEFAULT_SHM_SIZE = 64 << 20


def argument_spec():
    """The module's options from the table (state and the like are the module's own)."""
    return {opt.name: opt.argspec() for opt in TABLE}


def validate_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError('use', 'container name %r' % (name,), 'names are 1-128 of [A-Za-z0-9_.-], starting with a letter or digit')
    return name


# -- single options ----------------------------------------------------------------------------
def _argv(value, what):
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise ConfigError('parse', what, str(exc)) from None
    if isinstance(value, (list, tuple)) and all(isinstance(a, (str, int, float)) for a in value):
        return [str(a) for a in value]
    raise ConfigError('parse', what, 'expected a string or a list of strings, not %r' % (value,))


def parse_signal(value):
    """'SIGTERM', 'TERM', 'term' or 15 -> 'SIGTERM' (the stored form)."""
    text = str(value).strip().upper()
    if text.isdigit():
        try:
            return signal.Signals(int(text)).name
        except ValueError:
            pass
    else:
        name = text if text.startswith('SIG') else 'SIG' + text
        if name in signal.Signals.__members__ and not name.startswith('SIG_'):
            return name
    raise ConfigError('use', 'stop_signal %r' % (value,), 'not a signal name or number (e.g. SIGTERM, SIGQUIT, 3)')


def _namespace_mode(option, value):
    """'' / private / none / host / container:NAME / ns:NAME -> a normalised mode string (network_mode: also
    bridge, which check() resolves first)."""
    value = (value or '').strip()
    if option == 'network_mode':
        if value in ('none', 'bridge'):
            return value
    elif value in ('', 'private'):
        return 'private'
    if value == 'host':
        return 'host'
    kind, _sep, target = value.partition(':')
    if kind in ('container', 'ns') and target:
        validate_name(target)
        return '%s:%s' % (kind, target)
    raise ConfigError('use', '%s %r' % (option, value), 'expected private, host, container:NAME or ns:NAME')


PROPAGATIONS = ('private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave')
MOUNT_KEYS = {
    'bind': {'propagation'},
    'volume': {'no_copy', 'volume_nocopy'},
    'tmpfs': {'tmpfs_size', 'tmpfs_mode'},
}


def _mount(item, index):
    """One ``mounts`` entry -> its stored form (defaults left out, so configs stored before an option
    existed still compare equal: a bind's ``propagation`` only when not rprivate, ``no_copy`` only when true)."""
    where = 'mounts[%d]' % index
    if not isinstance(item, dict):
        raise ConfigError('use', where, 'expected a dict with type, source, target')
    known = {'type', 'source', 'target', 'read_only'} | set().union(*MOUNT_KEYS.values())
    unknown = set(item) - known
    if unknown:
        raise ConfigError('use', where, 'unknown keys %s (known: %s)' % (', '.join(sorted(unknown)), ', '.join(sorted(known))))
    kind = item.get('type', 'bind')
    if kind not in MOUNT_KEYS:
        raise ConfigError('use', where, 'type is bind, volume or tmpfs, not %r' % (kind,))
    foreign = sorted(k for k in set(item) & set().union(*MOUNT_KEYS.values()) - MOUNT_KEYS[kind] if item[k] is not None)
    if foreign:
        raise ConfigError('use', where, '%s %s not an option of a %s mount' % (', '.join(foreign), 'is' if len(foreign) == 1 else 'are', kind))
    target = item.get('target')
    if not isinstance(target, str) or not target.startswith('/') or target == '/':
        raise ConfigError('use', where, 'target must be an absolute path other than /, not %r' % (target,))
    out = {'type': kind, 'target': _norm_path(target), 'read_only': bool(item.get('read_only', False))}
    if kind == 'bind':
        source = item.get('source')
        if not isinstance(source, str) or not source.startswith('/'):
            raise ConfigError('use', where, 'a bind mount needs an absolute host path as source, not %r' % (source,))
        out['source'] = _norm_path(source)
        propagation = item.get('propagation') or 'rprivate'
        if propagation not in PROPAGATIONS:
            raise ConfigError('use', '%s.propagation' % where, 'expected one of %s, not %r' % (', '.join(PROPAGATIONS), propagation))
        if propagation != 'rprivate':
            out['propagation'] = propagation
    elif kind == 'volume':
        source = item.get('source')
        if not source:
            raise ConfigError('use', where, 'a volume mount needs source, the name of a volume (anonymous volumes are not supported)')
        if isinstance(source, str) and source.startswith('/'):
            raise ConfigError('use', where, 'the source of a volume mount is a volume name, not a host path %r (use type bind)' % source)
        try:
            out['source'] = validate_volume_name(source)
        except ConfigError as exc:
            raise ConfigError('use', '%s source' % where, exc.cause) from None
        no_copy = [item[k] for k in ('no_copy', 'volume_nocopy') if item.get(k) is not None]
        if len(set(map(bool, no_copy))) > 1:
            raise ConfigError('use', where, 'no_copy and volume_nocopy (the same option) disagree')
        if no_copy and no_copy[0]:
            out['no_copy'] = True
    else:
        if item.get('source'):
            raise ConfigError('use', where, 'a tmpfs mount has no source')
        if item.get('tmpfs_size') is not None:
            out['tmpfs_size'] = parse_size(item['tmpfs_size'], '%s.tmpfs_size' % where)
        if item.get('tmpfs_mode') is not None:
            mode = item['tmpfs_mode']
            try:
                out['tmpfs_mode'] = int(mode, 8) if isinstance(mode, str) else int(mode)
            except ValueError:
                raise ConfigError('use', '%s.tmpfs_mode' % where, 'expected an octal mode such as 1777, not %r' % (mode,)) from None
    return out


def _volume(text, index):
    """Docker's short form: ``/host/path:/ctr[:OPTS]`` (a bind) or ``NAME:/ctr[:OPTS]`` (a named volume);
    OPTS a comma list of ro or rw, nocopy (volumes), a propagation (binds)."""
    text = str(text)
    where = 'volumes[%d] %r' % (index, text)
    parts = text.split(':')
    if len(parts) == 1:
        raise ConfigError('use', where, 'anonymous volumes are not supported: give NAME:%s or /host/path:%s' % (text, text))
    if len(parts) > 3:
        raise ConfigError('use', where, 'expected /host/path:/container/path[:ro] or NAME:/container/path[:ro]')
    source, target = parts[0], parts[1]
    kind = 'bind' if source.startswith('/') else 'volume'
    item = {'type': kind, 'source': source, 'target': target}
    opts = parts[2].split(',') if len(parts) == 3 else []
    allowed = {'ro', 'rw'} | ({'nocopy'} if kind == 'volume' else set(PROPAGATIONS))
    bad = [o for o in opts if o not in allowed]
    if bad or len(opts) != len(set(opts)) or {'ro', 'rw'} <= set(opts):
        raise ConfigError('use', where, 'the options of a %s are %s, given at most once (ro or rw)' % (
            'named volume' if kind == 'volume' else 'bind mount', ', '.join(sorted(allowed))))
    item['read_only'] = 'ro' in opts
    if 'nocopy' in opts:
        item['no_copy'] = True
    propagation = [o for o in opts if o in PROPAGATIONS]
    if propagation:
        item['propagation'] = propagation[0]
    try:
        return _mount(item, index)
    except ConfigError as exc:
        raise ConfigError('use', where, exc.cause) from None


def _network_mode(mode, networks, defaults):
    """(namespaces.network, networks) from network_mode and networks: bridge gets the networks
    (default: the host's default network); a network name as network_mode is bridge on it (Docker's --network NAME)."""
    defaults = defaults or {}
    mode = (mode or '').strip() or ('bridge' if networks else defaults.get('network_mode') or 'bridge')
    if mode in ('none', 'host') or mode.startswith(('container:', 'ns:')):
        if networks:
            raise ConfigError('use', 'networks', 'containers join networks with network_mode bridge, not %s' % mode)
        return _namespace_mode('network_mode', mode), []
    parsed = [_network_entry(n, i) for i, n in enumerate(networks or [])]
    if mode != 'bridge':
        _validate_network_name(mode, 'network_mode')
        if parsed and parsed[0]['name'] != mode:
            raise ConfigError('use', 'network_mode %s' % mode, 'it names the first network, and networks starts with %s' % parsed[0]['name'])
        parsed = parsed or [{'name': mode, 'ipv4_address': None, 'aliases': []}]
    if not parsed:
        parsed = [{'name': defaults.get('network') or 'nsbox0', 'ipv4_address': None, 'aliases': []}]
    names = [n['name'] for n in parsed]
    if len(set(names)) != len(names):
        raise ConfigError('use', 'networks', 'each network once: %s' % ', '.join(sorted({n for n in names if names.count(n) > 1})))
    return 'bridge', parsed


def _validate_network_name(name, what):
    if not isinstance(name, str) or not re.match(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$', name):
        raise ConfigError('use', '%s %r' % (what, name), 'expected none, host, bridge, container:NAME, ns:NAME or a network name')
    return name


def _network_entry(item, index):
    where = 'networks[%d]' % index
    if isinstance(item, str):
        item = {'name': item}
    if not isinstance(item, dict):
        raise ConfigError('use', where, 'expected a network name or a dict with name, ipv4_address, aliases')
    unknown = set(item) - {'name', 'ipv4_address', 'aliases'}
    if unknown:
        raise ConfigError('use', where, 'unknown keys %s (known: name, ipv4_address, aliases)' % ', '.join(sorted(map(str, unknown))))
    name = _validate_network_name(item.get('name'), where + ' name')
    address = _ip(item['ipv4_address'], where + ' ipv4_address') if item.get('ipv4_address') else None
    aliases = item.get('aliases') or []
    if not isinstance(aliases, list):
        raise ConfigError('use', where + ' aliases', 'expected a list of names')
    return {'name': name, 'ipv4_address': address, 'aliases': sorted({_hostname(a, where + ' aliases') for a in aliases})}


def _ip(value, what):
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ConfigError('use', '%s %r' % (what, value), 'expected an IPv4 address such as 10.77.0.10') from None
    if address.version != 4:
        raise ConfigError('use', '%s %r' % (what, value), 'only IPv4 for now')
    return str(address)


def _hostname(value, what):
    text = str(value).strip()
    if not re.match(r'^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$', text) or isinstance(value, bool):
        raise ConfigError('use', '%s %r' % (what, value), 'expected a host name of [A-Za-z0-9.-]')
    return text


def _domain(value, what):
    return _hostname(value, what)


def _word(value, what):
    text = str(value).strip()
    if not text or any(c.isspace() for c in text) or isinstance(value, bool):
        raise ConfigError('use', '%s %r' % (what, value), 'expected one word such as ndots:2')
    return text


def _extra_hosts(value):
    """{host: address} or Docker's ["host:address"] -> {host: address}."""
    if value is None:
        return {}
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = []
        for entry in value:
            host, sep, address = str(entry).partition(':')
            if not sep:
                raise ConfigError('use', 'extra_hosts %r' % (entry,), 'expected host:address')
            items.append((host, address))
    else:
        raise ConfigError('use', 'extra_hosts', 'expected a dict {host: address} or a list of host:address')
    return dict(sorted((_hostname(h, 'extra_hosts'), _ip(a, 'extra_hosts %s' % h)) for h, a in items))


PROTOCOLS = ('tcp', 'udp')


def _port_range(text, what):
    first, sep, last = str(text).partition('-')
    try:
        lo, hi = int(first), int(last) if sep else int(first)
    except ValueError:
        raise ConfigError('use', what, 'ports are numbers 1-65535 or ranges such as 8000-8010') from None
    if not 1 <= lo <= hi <= 65535:
        raise ConfigError('use', what, 'ports are numbers 1-65535 or ranges such as 8000-8010')
    return list(range(lo, hi + 1))


def _published_ports(items):
    """Docker's [[IP:]HOST:]CONTAINER[/PROTO] with ranges -> [{host_ip, host_port, container_port, protocol}]."""
    out = []
    for text in items:
        text = str(text).strip()
        what = 'published_ports %r' % text
        spec, _sep, proto = text.partition('/')
        proto = proto or 'tcp'
        if proto not in PROTOCOLS:
            raise ConfigError('use', what, 'the protocol is tcp or udp')
        parts = spec.rsplit(':', 2)
        if len(parts) == 1 or (len(parts) == 3 and not parts[1]):
            raise ConfigError('use', what, 'give the host port too (HOST:CONTAINER): a port chosen at random is not supported yet')
        host_ip = _ip(parts[0], what) if len(parts) == 3 else '0.0.0.0'
        host, ctr = _port_range(parts[-2], what), _port_range(parts[-1], what)
        if len(host) != len(ctr):
            raise ConfigError('use', what, 'the host and container ranges differ in length')
        out += [{'host_ip': host_ip, 'host_port': h, 'container_port': c, 'protocol': proto} for h, c in zip(host, ctr)]
    keys = [(p['host_port'], p['protocol']) for p in out]
    dup = sorted({'%d/%s' % k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError('use', 'published_ports', 'a host port is published twice: %s' % ', '.join(dup))
    return sorted(out, key=lambda p: (p['host_port'], p['protocol'], p['host_ip']))


def _norm_path(path):
    parts = [p for p in path.split('/') if p not in ('', '.')]
    return '/' + '/'.join(parts)


def _log(value):
    value = dict(value or {})
    unknown = set(value) - {'driver', 'max_size', 'max_files'}
    if unknown:
        raise ConfigError('use', 'log', 'unknown keys %s (known: driver, max_size, max_files)' % ', '.join(sorted(unknown)))
    driver = value.get('driver') or 'json-file'
    if driver != 'json-file':
        raise ConfigError('use', 'log driver %r' % driver, 'this version has json-file (journald comes with the systemd units of the roles)')
    max_size = value.get('max_size')
    max_files = value.get('max_files', 1)
    try:
        max_files = int(max_files)
    except (TypeError, ValueError):
        max_files = 0
    if max_files < 1:
        raise ConfigError('use', 'log max_files %r' % (value.get('max_files'),), 'expected a whole number of at least 1')
    return {'driver': driver, 'max_size': parse_size(max_size, 'log max_size') if max_size is not None else None,
            'max_files': max_files}


def _supervision(opts, systemd):
    """supervisor (auto resolved: systemd where systemd is PID 1), enabled and depends_on (the unit's).

    ``enabled`` and ``depends_on`` shape the unit: with ``supervisor: nsbox`` they would do nothing,
    so they are refused there; with ``auto`` on a host without systemd they are kept (stored, shown),
    and apply as soon as the container runs under a unit.
    """
    wanted = opts.get('supervisor', 'nsbox')
    if wanted not in SUPERVISORS:
        raise ConfigError('use', 'supervisor %r' % (wanted,), 'expected one of %s' % ', '.join(SUPERVISORS))
    if wanted == 'systemd' and not systemd:
        raise ConfigError('use', 'supervisor systemd', 'systemd is not PID 1 on this host (use auto to fall back to nsbox\'s own supervisor)')
    supervisor = ('systemd' if systemd else 'nsbox') if wanted == 'auto' else wanted
    deps = []
    for dep in opts.get('depends_on') or []:
        if not isinstance(dep, str) or not NAME_RE.match(dep):
            raise ConfigError('use', 'depends_on %r' % (dep,), 'expected container names')
        if dep not in deps:
            deps.append(dep)
    if wanted == 'nsbox':
        given = [o for o in ('enabled', 'depends_on') if (o == 'enabled' and opts.get(o) is False) or (o == 'depends_on' and deps)]
        if given:
            raise ConfigError('use', ' and '.join(given), 'they shape the container\'s systemd unit: give supervisor systemd (or auto)')
    return {'supervisor': supervisor, 'enabled': bool(opts.get('enabled', True)), 'depends_on': sorted(deps)}


def _ulimit(text, index):
    """Docker's ``nofile=1024:2048`` / community.docker's ``nofile:1024:2048``; -1 is unlimited."""
    name, sep, rest = str(text).replace('=', ':', 1).partition(':')
    values = rest.split(':') if sep else []
    what = 'ulimits[%d] %r' % (index, text)
    if name not in ULIMITS:
        raise ConfigError('use', what, 'the limit is one of %s' % ', '.join(ULIMITS))
    if len(values) not in (1, 2):
        raise ConfigError('use', what, 'expected NAME:SOFT[:HARD] such as nofile:1024:2048')
    try:
        soft, hard = (int(values[0]), int(values[-1]))
    except ValueError:
        raise ConfigError('use', what, 'limits are whole numbers (-1 for unlimited)') from None
    if min(soft, hard) < -1:
        raise ConfigError('use', what, 'limits are whole numbers (-1 for unlimited)')
    if hard != -1 and (soft == -1 or soft > hard):
        raise ConfigError('use', what, 'the soft limit cannot exceed the hard one')
    return {'name': name, 'soft': soft, 'hard': hard}


def _sysctls(value, namespaces):
    """Namespaced sysctls only, each checked against the namespace it would change."""
    out = {}
    for key, val in (value or {}).items():
        key = str(key)
        what = 'sysctl %s' % key
        if not SYSCTL_RE.match(key):
            raise ConfigError('use', what, 'expected a dotted name such as net.ipv4.ip_forward')
        if isinstance(val, bool) or val is None:
            raise ConfigError('use', what, 'give the value as the kernel reads it (e.g. "1"), not %r' % (val,))
        if key.startswith('net.'):
            need, mode = 'network', 'private' if namespaces['network'] == 'bridge' else namespaces['network']
        elif key in IPC_SYSCTLS or key.startswith('fs.mqueue.'):
            need, mode = 'ipc', namespaces['ipc']
        elif key == 'kernel.domainname':
            need, mode = 'uts', namespaces['uts']
        else:
            raise ConfigError('use', what, 'not a namespaced sysctl: it would change the host (allowed: net.*, fs.mqueue.*, '
                                           'kernel.domainname and the IPC ones %s)' % ', '.join(IPC_SYSCTLS))
        if mode not in ('private', 'none'):
            raise ConfigError('use', what, 'it needs the container\'s own %s namespace, not %s (set it where that namespace is made)' % (need, mode))
        out[key] = str(val)
    return dict(sorted(out.items()))


def _typed(opt, value):
    """The value as the table's type says, as Ansible's argument spec converts it (the library has other fronts too)."""
    kind = opt.type
    if kind == 'raw':
        return value
    if kind in ('str', 'path') and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    if kind == 'int' and not isinstance(value, (bool, float)):
        try:
            return int(str(value).strip(), 10)
        except ValueError:
            pass
    if kind == 'float' and not isinstance(value, bool):
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    if kind == 'bool' and isinstance(value, bool):
        return value
    if kind == 'list' and isinstance(value, (list, tuple)):
        return list(value)
    if kind == 'dict' and isinstance(value, dict):
        return value
    raise ConfigError('use', opt.name, 'expected %s, not %r' % ({'str': 'a string', 'path': 'a path', 'int': 'a whole number', 'float': 'a number',
                                                                'bool': 'true or false', 'list': 'a list', 'dict': 'a dict'}[kind], value))


def read_env_file(path):
    """Docker's env-file: KEY=value lines, # comments, blank lines; a bare KEY takes the module's environment value."""
    try:
        with open(path, encoding='utf-8') as f:
            lines = f.read().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError('read', 'env_file %s' % path, getattr(exc, 'strerror', None) or str(exc)) from None
    env = {}
    for number, line in enumerate(lines, 1):
        text = line.lstrip()
        if not text or text.startswith('#'):
            continue
        key, sep, value = text.partition('=')
        if not key or ' ' in key or '\0' in line:
            raise ConfigError('parse', 'env_file %s line %d' % (path, number), 'expected KEY=value, not %r' % line)
        if not sep:
            if key not in os.environ:
                continue  # as docker: an unset variable named alone is skipped
            value = os.environ[key]
        env[key] = value
    return env


def parse_comparisons(value):
    """{option or '*': strict|ignore|allow_more_present} -> {option: how} for every option."""
    value = dict(value or {})
    unknown = set(value) - set(OPTIONS) - {'*'}
    if unknown:
        raise ConfigError('use', 'comparisons', 'unknown options %s' % ', '.join(sorted(unknown)))
    for key, how in value.items():
        if how not in COMPARISONS:
            raise ConfigError('use', 'comparisons %s' % key, 'expected one of %s, not %r' % (', '.join(COMPARISONS), how))
        if how == 'allow_more_present' and key != '*' and OPTIONS[key].type not in ('dict', 'list'):
            raise ConfigError('use', 'comparisons %s' % key, 'allow_more_present applies to lists and dicts only')
    default = value.get('*', 'strict')
    out = {}
    for opt in TABLE:
        how = value.get(opt.name, default)
        if how == 'allow_more_present' and opt.type not in ('dict', 'list'):
            how = 'strict'  # a '*' default falls back to strict for single values
        out[opt.name] = how
    return out


# -- the whole config ----------------------------------------------------------------------------
def check(options, defaults=None):
    """Parse every given option (None = not given); raises ConfigError naming the option.

    No I/O but reading ``env_file`` (on the managed host: its content is part of the config).
    ``defaults``: the host config's {'network_mode', 'network'} (the default mode and network name),
    and ``systemd``: whether systemd is PID 1 (``supervisor: auto`` resolves with it).
    """
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ConfigError('use', 'container options', 'unknown options %s' % ', '.join(sorted(unknown)))
    opts = {k: _typed(OPTIONS[k], v) for k, v in options.items() if v is not None}
    out = {}
    if 'command' in opts:
        out['command'] = _argv(opts['command'], 'command')
    if 'entrypoint' in opts:
        out['entrypoint'] = _argv(opts['entrypoint'], 'entrypoint')
    if 'env' in opts or 'env_file' in opts:
        env = read_env_file(opts['env_file']) if 'env_file' in opts else {}
        for key, value in (opts.get('env') or {}).items():
            if not key or '=' in key or '\0' in key:
                raise ConfigError('use', 'env key %r' % (key,), 'a variable name has no "=" and is not empty')
            if isinstance(value, bool):
                raise ConfigError('use', 'env %s' % key, 'quote booleans ("true"): YAML would turn yes into True')
            env[key] = '' if value is None else str(value)
        out['env'] = env
    for name in ('working_dir',):
        if name in opts:
            if not str(opts[name]).startswith('/'):
                raise ConfigError('use', '%s %r' % (name, opts[name]), 'expected an absolute path')
            out[name] = _norm_path(opts[name])
    for name in ('user', 'hostname'):
        if name in opts:
            out[name] = str(opts[name])
    if 'hostname' in out and not re.match(r'^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})$', out['hostname']):
        raise ConfigError('use', 'hostname %r' % out['hostname'], 'expected up to 63 of [A-Za-z0-9.-]')
    for name in ('labels', 'annotations'):
        if name in opts:
            out[name] = {str(k): str(v) for k, v in opts[name].items()}
    if 'group_add' in opts:
        groups = [str(g).strip() for g in opts['group_add']]
        bad = [g for g in groups if not g or ':' in g or any(c.isspace() for c in g)]
        if bad:
            raise ConfigError('use', 'group_add %r' % bad[0], 'expected a group name or gid')
        out['group_add'] = groups
    mounts = [_mount(m, i) for i, m in enumerate(opts.get('mounts') or [])]
    mounts += [_volume(v, i) for i, v in enumerate(opts.get('volumes') or [])]
    targets = [m['target'] for m in mounts]
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise ConfigError('use', 'mounts', 'more than one mount on %s' % ', '.join(dup))
    out['mounts'] = mounts
    out['read_only'] = bool(opts.get('read_only', False))
    out['shm_size'] = parse_size(opts['shm_size'], 'shm_size') if 'shm_size' in opts else None
    if out['shm_size'] is not None and out['shm_size'] < 4096:
        raise ConfigError('use', 'shm_size', 'at least one page (4k), not %d bytes' % out['shm_size'])
    out['tty'] = bool(opts.get('tty', False))
    out['interactive'] = bool(opts.get('interactive', False))
    ulimits = [_ulimit(u, i) for i, u in enumerate(opts.get('ulimits') or [])]
    names = [u['name'] for u in ulimits]
    if len(set(names)) != len(names):
        raise ConfigError('use', 'ulimits', 'each limit once: %s' % ', '.join(sorted({n for n in names if names.count(n) > 1})))
    out['ulimits'] = sorted(ulimits, key=lambda u: u['name'])
    if 'oom_score_adj' in opts:
        value = opts['oom_score_adj']
        if isinstance(value, bool) or not isinstance(value, int) or not -1000 <= value <= 1000:
            raise ConfigError('use', 'oom_score_adj %r' % (value,), 'expected a whole number from -1000 to 1000')
        out['oom_score_adj'] = value
    out['resources'] = Resources.from_options({k: opts.get(k) for k in RESOURCE_OPTIONS})
    out['namespaces'] = {ns: _namespace_mode(ns + '_mode', opts.get(ns + '_mode')) for ns in NS_MODES if ns != 'network'}
    out['namespaces']['network'], out['networks'] = _network_mode(opts.get('network_mode'), opts.get('networks'), defaults)
    out['namespaces'] = {ns: out['namespaces'][ns] for ns in NS_MODES}
    out['published_ports'] = _published_ports(opts.get('published_ports') or [])
    if out['published_ports'] and out['namespaces']['network'] != 'bridge':
        raise ConfigError('use', 'published_ports', 'ports are published to a container on a bridge network, not with network_mode %s'
                          % out['namespaces']['network'])
    out['dns'] = [_ip(a, 'dns') for a in opts.get('dns') or []]
    out['dns_search'] = [_domain(d, 'dns_search') for d in opts.get('dns_search') or []]
    out['dns_options'] = [_word(o, 'dns_options') for o in opts.get('dns_options') or []]
    out['extra_hosts'] = _extra_hosts(opts.get('extra_hosts'))
    out['sysctls'] = _sysctls(opts.get('sysctls'), out['namespaces'])
    if 'stop_signal' in opts:
        out['stop_signal'] = parse_signal(opts['stop_signal'])
    stop_timeout = opts.get('stop_timeout', 10)
    if not isinstance(stop_timeout, int) or stop_timeout < 0:
        raise ConfigError('use', 'stop_timeout %r' % (stop_timeout,), 'expected whole seconds, 0 or more')
    out['stop_timeout'] = stop_timeout
    out['restart_policy'] = policy.parse_restart(opts.get('restart_policy'), opts.get('restart_retries'))
    if 'healthcheck' in opts:
        out['healthcheck'] = policy.parse_healthcheck(opts['healthcheck'])
    out['init'] = bool(opts.get('init', False))
    out['log'] = _log(opts.get('log'))
    out.update(_supervision(opts, (defaults or {}).get('systemd', False)))
    out['cap_add'] = caps.normalise(opts.get('cap_add'), 'cap_add')
    out['cap_drop'] = caps.normalise(opts.get('cap_drop'), 'cap_drop')
    out['privileged'] = bool(opts.get('privileged', False))
    out['security_opt'] = security.parse_security_opt(opts.get('security_opt'))
    out['devices'] = device_options.parse(opts.get('devices'))
    if out['privileged']:
        given = [o for o in ('cap_add', 'cap_drop') if out[o]]
        if given:
            raise ConfigError('use', ' and '.join(given), 'a privileged container has every capability of the host: %s would do nothing'
                              % ' and '.join(given))
        if isinstance(out['security_opt']['seccomp'], dict):
            raise ConfigError('use', 'security_opt seccomp=%s' % out['security_opt']['seccomp']['path'],
                              'a privileged container runs without seccomp: the profile would do nothing')
    out['userns'] = idranges.parse_options(opts.get('userns_mode'), opts.get('uidmap'), opts.get('gidmap'),
                                           (defaults or {}).get('userns_pool') or idranges.DEFAULT_POOL)
    idranges.check_compatible(out)
    return out


def resolve(name, checked, image, image_config):
    """The config to store: options over the image's defaults, as Docker combines them.

    ``image`` is {'name', 'digest', 'id'}; ``image_config`` the image config's ``config``.
    """
    ic = image_config or {}
    entrypoint = checked.get('entrypoint')
    if entrypoint is None:
        entrypoint = list(ic.get('Entrypoint') or [])
    command = checked.get('command')
    if command is None and 'entrypoint' not in checked:
        command = list(ic.get('Cmd') or [])  # Docker: a given entrypoint drops the image's Cmd
    args = list(entrypoint) + list(command or [])
    if not args:
        raise ConfigError('create', 'container %s' % name, 'no command: the image has neither Entrypoint nor Cmd, give command')
    env = {}
    for item in ic.get('Env') or []:
        key, _sep, value = item.partition('=')
        env[key] = value
    env.update(checked.get('env') or {})
    if 'PATH' not in env:
        env['PATH'] = DEFAULT_PATH.split('=', 1)[1]
    res = checked['resources']
    return {
        'schema_version': SCHEMA_VERSION,
        'name': name,
        'image': dict(image),
        'entrypoint': list(entrypoint),
        'command': list(command or []),
        'args': args,
        'env': ['%s=%s' % kv for kv in sorted(env.items())],
        'working_dir': checked.get('working_dir') or ic.get('WorkingDir') or '/',
        'user': checked.get('user') or ic.get('User') or '0',
        'hostname': checked.get('hostname'),
        'group_add': list(checked.get('group_add') or []),
        'labels': dict(sorted({**(ic.get('Labels') or {}), **(checked.get('labels') or {})}.items())),
        'annotations': dict(sorted((checked.get('annotations') or {}).items())),
        'mounts': checked['mounts'],
        'read_only': checked['read_only'],
        'shm_size': checked['shm_size'],
        'tty': checked['tty'],
        'interactive': checked['interactive'],
        'resources': {k: getattr(res, k) for k in RESOURCE_FIELDS},
        'ulimits': checked['ulimits'],
        'oom_score_adj': checked.get('oom_score_adj'),
        'sysctls': checked['sysctls'],
        'namespaces': checked['namespaces'],
        'networks': checked['networks'],
        'published_ports': checked['published_ports'],
        'dns': checked['dns'],
        'dns_search': checked['dns_search'],
        'dns_options': checked['dns_options'],
        'extra_hosts': checked['extra_hosts'],
        'stop_signal': checked.get('stop_signal') or (parse_signal(ic['StopSignal']) if ic.get('StopSignal') else 'SIGTERM'),
        'stop_timeout': checked['stop_timeout'],
        'restart_policy': checked['restart_policy'],
        # Given (None: disabled with [NONE]) or the image's HEALTHCHECK, as Docker.
        'healthcheck': checked['healthcheck'] if 'healthcheck' in checked else policy.healthcheck_from_image(ic),
        'init': checked['init'],
        'log': checked['log'],
        'supervisor': checked['supervisor'],
        'enabled': checked['enabled'],
        'depends_on': checked['depends_on'],
        'cap_add': checked['cap_add'],
        'cap_drop': checked['cap_drop'],
        'privileged': checked['privileged'],
        'security_opt': checked['security_opt'],
        'userns': checked['userns'],
        'devices': checked['devices'],
    }


def resources_of(config):
    """The stored limits as a cgroups Resources (None fields unmanaged), with the container's device allow list."""
    r = dict(config.get('resources') or {})
    if not r.get('cpus'):
        r['cpu_period'] = None
    return Resources(devices=device_options.cgroup_rules(config), **{k: r.get(k) for k in RESOURCE_FIELDS})


# Fields added after schema 1 and their value for a container created before them: an upgrade
# of nsbox compares an old config as if it had them, and recreates nothing.
ADDED_FIELDS = {'group_add': [], 'annotations': {}, 'shm_size': None, 'tty': False, 'interactive': False, 'ulimits': [],
                'oom_score_adj': None, 'sysctls': {}, 'restart_policy': dict(policy.NO_RESTART), 'healthcheck': None,
                'networks': [], 'published_ports': [], 'dns': [], 'dns_search': [], 'dns_options': [], 'extra_hosts': {},
                'cap_add': [], 'cap_drop': [], 'privileged': False, 'security_opt': security.DEFAULT_SECURITY,
                'userns': dict(idranges.HOST), 'supervisor': 'nsbox', 'enabled': True, 'depends_on': [], 'devices': []}


def value_of(config, field):
    """The value at ``field`` (a dotted path) of a stored config; None when absent (older configs)."""
    value = config
    for part in field.split('.'):
        if not isinstance(value, dict):
            return None
        value = value[part] if part in value else ADDED_FIELDS.get(part) if value is config else None
    return value


def merged(stored, wanted, changed):
    """The stored config with the fields of the ``changed`` options taken from ``wanted`` (a live or stored
    update: what comparisons ignored stays as the container has it)."""
    out = json_copy(stored)
    for name in changed:
        path = OPTIONS[name].field.split('.')
        target = out
        for part in path[:-1]:
            target = target.setdefault(part, {})
        target[path[-1]] = value_of(wanted, OPTIONS[name].field)
        if OPTIONS[name].field == 'resources.cpus':
            target['cpu_period'] = value_of(wanted, 'resources.cpu_period')
    return out


def json_copy(obj):
    return json.loads(json.dumps(obj))


def _contains(stored, wanted):
    """allow_more_present: every wanted item is in stored (dict items, list elements)."""
    if isinstance(wanted, dict) and isinstance(stored, dict):
        return all(k in stored and stored[k] == v for k, v in wanted.items())
    if isinstance(wanted, list) and isinstance(stored, list):
        return all(item in stored for item in wanted)
    return stored == wanted


FIELDS = {}  # config field -> the options that fill it, in table order
for _opt in TABLE:
    FIELDS.setdefault(_opt.field, []).append(_opt)
UPDATE = {field: opts[0].update for field, opts in FIELDS.items()}  # config field -> how a difference is applied


def differences(stored, wanted, comparisons=None):
    """{option: 'live'|'stored'|'recreate'} for each option whose config field differs.

    A field filled by two options (``mounts``/``volumes``, ``env``/``env_file``) is named by
    its first option. ``comparisons`` ({option: strict|ignore|allow_more_present}, from check's
    ``comparisons``) relaxes the comparison of a field: the first of its options given decides.
    """
    comparisons = comparisons or {}
    out = {}
    for field, opts in FIELDS.items():
        how = next((comparisons[o.name] for o in opts if comparisons.get(o.name, 'strict') != 'strict'), 'strict')
        if how == 'ignore':
            continue
        before, after = value_of(stored, field), value_of(wanted, field)
        if field == 'image':
            same = (before or {}).get('digest') == after['digest']
        elif how == 'allow_more_present':
            same = _contains(before, after)
        else:
            same = before == after
        if same:
            continue
        update = opts[0].update
        if update == 'live' and before is not None and after is None:
            update = 'recreate'  # a limit taken away: a fresh cgroup has none (written live, it would stay)
        out[opts[0].name] = update
    return out


def display_config(config):
    """The config as a person reads it (sizes as Docker prints them)."""
    out = dict(config)
    out['resources'] = {k: display(k, v) for k, v in (config.get('resources') or {}).items() if v is not None}
    return out
