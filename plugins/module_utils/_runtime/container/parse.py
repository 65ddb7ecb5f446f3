# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parsers of single container options: each takes what a user wrote and returns the stored form, or raises
ConfigError naming the option. The option table (``options.py``) says which parser each option has."""
from __future__ import annotations

import ipaddress
import os
import re
import shlex

from ..errors import ConfigError
from ..kernel import signals
from ..kernel.units import parse_size
from ..launch.spec import sysctl_name
from ..network.store import NAME_RE as NETWORK_NAME_RE
from ..volume.store import validate_name as validate_volume_name

NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}\Z')  # Docker's container names
ULIMITS = ('as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio',
           'rttime', 'sigpending', 'stack')
# Namespaced sysctls a container may set (Docker's list): IPC ones need a private ipc namespace,
# net.* a network namespace of the container's own; kernel.domainname a private uts namespace.
IPC_SYSCTLS = ('kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax',
               'kernel.shmmni', 'kernel.shm_rmid_forced')


def validate_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError('use', 'container name %r' % (name,), 'names are 1-128 of [A-Za-z0-9_.-], starting with a letter or digit')
    return name


def argv(value, what):
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
    return signals.name(value, 'stop_signal')


def namespace_mode(option, value):
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


def mount(item, index):
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
    out = {'type': kind, 'target': norm_path(target), 'read_only': bool(item.get('read_only', False))}
    if kind == 'bind':
        source = item.get('source')
        if not isinstance(source, str) or not source.startswith('/'):
            raise ConfigError('use', where, 'a bind mount needs an absolute host path as source, not %r' % (source,))
        out['source'] = norm_path(source)
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


def volume(text, index):
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
        return mount(item, index)
    except ConfigError as exc:
        raise ConfigError('use', where, exc.cause) from None


def network_mode(mode, networks, defaults):
    """(namespaces.network, networks) from network_mode and networks: bridge gets the networks
    (default: the host's default network); a network name as network_mode is bridge on it (Docker's --network NAME)."""
    defaults = defaults or {}
    mode = (mode or '').strip() or ('bridge' if networks else defaults.get('network_mode') or 'bridge')
    if mode in ('none', 'host') or mode.startswith(('container:', 'ns:')):
        if networks:
            raise ConfigError('use', 'networks', 'containers join networks with network_mode bridge, not %s' % mode)
        return namespace_mode('network_mode', mode), []
    parsed = [network_entry(n, i) for i, n in enumerate(networks or [])]
    if mode != 'bridge':
        network_name(mode, 'network_mode')
        if parsed and parsed[0]['name'] != mode:
            raise ConfigError('use', 'network_mode %s' % mode, 'it names the first network, and networks starts with %s' % parsed[0]['name'])
        parsed = parsed or [{'name': mode, 'ipv4_address': None, 'aliases': []}]
    if not parsed:
        parsed = [{'name': defaults.get('network') or 'nsbox0', 'ipv4_address': None, 'aliases': []}]
    names = [n['name'] for n in parsed]
    if len(set(names)) != len(names):
        raise ConfigError('use', 'networks', 'each network once: %s' % ', '.join(sorted({n for n in names if names.count(n) > 1})))
    return 'bridge', parsed


def network_name(name, what):
    if not isinstance(name, str) or not NETWORK_NAME_RE.match(name):
        raise ConfigError('use', '%s %r' % (what, name), 'expected none, host, bridge, container:NAME, ns:NAME or a network name')
    return name


def network_entry(item, index):
    where = 'networks[%d]' % index
    if isinstance(item, str):
        item = {'name': item}
    if not isinstance(item, dict):
        raise ConfigError('use', where, 'expected a network name or a dict with name, ipv4_address, aliases')
    unknown = set(item) - {'name', 'ipv4_address', 'aliases'}
    if unknown:
        raise ConfigError('use', where, 'unknown keys %s (known: name, ipv4_address, aliases)' % ', '.join(sorted(map(str, unknown))))
    name = network_name(item.get('name'), where + ' name')
    address = ip(item['ipv4_address'], where + ' ipv4_address') if item.get('ipv4_address') else None
    aliases = item.get('aliases') or []
    if not isinstance(aliases, list):
        raise ConfigError('use', where + ' aliases', 'expected a list of names')
    return {'name': name, 'ipv4_address': address, 'aliases': sorted({hostname(a, where + ' aliases') for a in aliases})}


def ip(value, what):
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ConfigError('use', '%s %r' % (what, value), 'expected an IPv4 address such as 10.77.0.10') from None
    if address.version != 4:
        raise ConfigError('use', '%s %r' % (what, value), 'only IPv4 for now')
    return str(address)


def hostname(value, what):
    text = str(value).strip()
    if not re.match(r'^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})\Z', text) or isinstance(value, bool):
        raise ConfigError('use', '%s %r' % (what, value), 'expected a host name of [A-Za-z0-9.-]')
    return text


def domain(value, what):
    return hostname(value, what)


def word(value, what):
    text = str(value).strip()
    if not text or any(c.isspace() for c in text) or isinstance(value, bool):
        raise ConfigError('use', '%s %r' % (what, value), 'expected one word such as ndots:2')
    return text


def extra_hosts(value):
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
    return dict(sorted((hostname(h, 'extra_hosts'), ip(a, 'extra_hosts %s' % h)) for h, a in items))


PROTOCOLS = ('tcp', 'udp')


def port_range(text, what):
    first, sep, last = str(text).partition('-')
    try:
        lo, hi = int(first), int(last) if sep else int(first)
    except ValueError:
        raise ConfigError('use', what, 'ports are numbers 1-65535 or ranges such as 8000-8010') from None
    if not 1 <= lo <= hi <= 65535:
        raise ConfigError('use', what, 'ports are numbers 1-65535 or ranges such as 8000-8010')
    return list(range(lo, hi + 1))


def published_ports(items):
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
        host_ip = ip(parts[0], what) if len(parts) == 3 else '0.0.0.0'
        host, ctr = port_range(parts[-2], what), port_range(parts[-1], what)
        if len(host) != len(ctr):
            raise ConfigError('use', what, 'the host and container ranges differ in length')
        out += [{'host_ip': host_ip, 'host_port': h, 'container_port': c, 'protocol': proto} for h, c in zip(host, ctr)]
    keys = [(p['host_port'], p['protocol']) for p in out]
    dup = sorted({'%d/%s' % k for k in keys if keys.count(k) > 1})
    if dup:
        raise ConfigError('use', 'published_ports', 'a host port is published twice: %s' % ', '.join(dup))
    return sorted(out, key=lambda p: (p['host_port'], p['protocol'], p['host_ip']))


def norm_path(path):
    parts = [p for p in path.split('/') if p not in ('', '.')]
    return '/' + '/'.join(parts)


def log(value):
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


def ulimit(text, index):
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


def sysctls(value):
    """Namespaced sysctls only (which namespace each needs: :func:`sysctl_namespace`); values as the kernel reads them."""
    out = {}
    for key, val in (value or {}).items():
        key = str(key)
        what = 'sysctl %s' % key
        sysctl_name(key)
        if isinstance(val, bool) or val is None:
            raise ConfigError('use', what, 'give the value as the kernel reads it (e.g. "1"), not %r' % (val,))
        sysctl_namespace(key)
        out[key] = str(val)
    return dict(sorted(out.items()))


def sysctl_namespace(key):
    """The namespace a namespaced sysctl changes: network, ipc or uts; ConfigError for one that would change the host."""
    if key.startswith('net.'):
        return 'network'
    if key in IPC_SYSCTLS or key.startswith('fs.mqueue.'):
        return 'ipc'
    if key == 'kernel.domainname':
        return 'uts'
    raise ConfigError('use', 'sysctl %s' % key, 'not a namespaced sysctl: it would change the host (allowed: net.*, fs.mqueue.*, '
                                                'kernel.domainname and the IPC ones %s)' % ', '.join(IPC_SYSCTLS))


def typed(opt, value):
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
