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

import re
import shlex
import signal

from ..cgroups.resources import Resources, display
from ..units import parse_size
from ..errors import ConfigError

SCHEMA_VERSION = 1
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$')  # Docker's container names
DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
NS_MODES = ('network', 'pid', 'ipc', 'uts')


class Option:
    """One option: Ansible type, how a difference is applied, and its config field."""

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
    Option('working_dir', 'str', 'recreate'),
    Option('user', 'str', 'recreate'),
    Option('hostname', 'str', 'recreate'),
    Option('labels', 'dict', 'stored'),
    Option('mounts', 'list', 'recreate', elements='dict'),
    Option('volumes', 'list', 'recreate', elements='str', field='mounts'),
    Option('read_only', 'bool', 'recreate'),
    Option('memory', 'str', 'live', field='resources'),
    Option('cpus', 'float', 'live', field='resources'),
    Option('pids_limit', 'int', 'live', field='resources'),
    Option('network_mode', 'str', 'recreate', field='namespaces'),
    Option('pid_mode', 'str', 'recreate', field='namespaces'),
    Option('ipc_mode', 'str', 'recreate', field='namespaces'),
    Option('uts_mode', 'str', 'recreate', field='namespaces'),
    Option('stop_signal', 'str', 'stored'),
    Option('stop_timeout', 'int', 'stored'),
    Option('init', 'bool', 'recreate'),
    Option('log', 'dict', 'recreate'),
)
OPTIONS = {opt.name: opt for opt in TABLE}
RESOURCE_OPTIONS = ('memory', 'cpus', 'pids_limit')


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
    """'' / private / none / host / container:NAME / ns:NAME -> a normalised mode string."""
    value = (value or '').strip()
    if option == 'network_mode':
        if value in ('', 'none', 'default'):
            return 'none'
        if value == 'bridge' or not (value == 'host' or value.startswith(('container:', 'ns:'))):
            raise ConfigError('use', 'network_mode %r' % value,
                              'this version has none, host, container:NAME and ns:NAME (bridge networking comes with the network module)')
    elif value in ('', 'private'):
        return 'private'
    if value == 'host':
        return 'host'
    kind, _sep, target = value.partition(':')
    if kind in ('container', 'ns') and target:
        validate_name(target)
        return '%s:%s' % (kind, target)
    raise ConfigError('use', '%s %r' % (option, value), 'expected private, host, container:NAME or ns:NAME')


def _mount(item, index):
    if not isinstance(item, dict):
        raise ConfigError('use', 'mounts[%d]' % index, 'expected a dict with type, source, target')
    known = {'type', 'source', 'target', 'read_only', 'tmpfs_size', 'tmpfs_mode'}
    unknown = set(item) - known
    if unknown:
        raise ConfigError('use', 'mounts[%d]' % index, 'unknown keys %s (known: %s)' % (', '.join(sorted(unknown)), ', '.join(sorted(known))))
    kind = item.get('type', 'bind')
    target = item.get('target')
    if not isinstance(target, str) or not target.startswith('/') or target == '/':
        raise ConfigError('use', 'mounts[%d]' % index, 'target must be an absolute path other than /, not %r' % (target,))
    out = {'type': kind, 'target': _norm_path(target), 'read_only': bool(item.get('read_only', False))}
    if kind == 'bind':
        source = item.get('source')
        if not isinstance(source, str) or not source.startswith('/'):
            raise ConfigError('use', 'mounts[%d]' % index, 'a bind mount needs an absolute host path as source, not %r' % (source,))
        out['source'] = _norm_path(source)
    elif kind == 'tmpfs':
        if item.get('source'):
            raise ConfigError('use', 'mounts[%d]' % index, 'a tmpfs mount has no source')
        if item.get('tmpfs_size') is not None:
            out['tmpfs_size'] = parse_size(item['tmpfs_size'], 'mounts[%d].tmpfs_size' % index)
        if item.get('tmpfs_mode') is not None:
            mode = item['tmpfs_mode']
            try:
                out['tmpfs_mode'] = int(mode, 8) if isinstance(mode, str) else int(mode)
            except ValueError:
                raise ConfigError('use', 'mounts[%d].tmpfs_mode' % index, 'expected an octal mode such as 1777, not %r' % (mode,)) from None
    elif kind == 'volume':
        raise ConfigError('use', 'mounts[%d]' % index, 'named volumes come with the volume module (not in this version): use type bind')
    else:
        raise ConfigError('use', 'mounts[%d]' % index, 'type is bind or tmpfs, not %r' % (kind,))
    return out


def _volume(text, index):
    """Docker's short form ``/host:/ctr[:ro|rw]``."""
    parts = str(text).split(':')
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in ('ro', 'rw')):
        raise ConfigError('use', 'volumes[%d] %r' % (index, text), 'expected /host/path:/container/path[:ro|rw]')
    if not parts[0].startswith('/'):
        raise ConfigError('use', 'volumes[%d] %r' % (index, text), 'named volumes come with the volume module (not in this version): give a host path')
    return _mount({'type': 'bind', 'source': parts[0], 'target': parts[1], 'read_only': parts[2:] == ['ro']}, index)


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


# -- the whole config ----------------------------------------------------------------------------
def check(options):
    """Parse every given option (None = not given); raises ConfigError naming the option. No I/O."""
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ConfigError('use', 'container options', 'unknown options %s' % ', '.join(sorted(unknown)))
    opts = {k: v for k, v in options.items() if v is not None}
    out = {}
    if 'command' in opts:
        out['command'] = _argv(opts['command'], 'command')
    if 'entrypoint' in opts:
        out['entrypoint'] = _argv(opts['entrypoint'], 'entrypoint')
    if 'env' in opts:
        env = {}
        for key, value in opts['env'].items():
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
    if 'labels' in opts:
        out['labels'] = {str(k): str(v) for k, v in opts['labels'].items()}
    mounts = [_mount(m, i) for i, m in enumerate(opts.get('mounts') or [])]
    mounts += [_volume(v, i) for i, v in enumerate(opts.get('volumes') or [])]
    targets = [m['target'] for m in mounts]
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise ConfigError('use', 'mounts', 'more than one mount on %s' % ', '.join(dup))
    out['mounts'] = mounts
    out['read_only'] = bool(opts.get('read_only', False))
    out['resources'] = Resources.from_options({k: opts.get(k) for k in RESOURCE_OPTIONS})
    out['namespaces'] = {ns: _namespace_mode(ns + '_mode', opts.get(ns + '_mode')) for ns in NS_MODES}
    if 'stop_signal' in opts:
        out['stop_signal'] = parse_signal(opts['stop_signal'])
    stop_timeout = opts.get('stop_timeout', 10)
    if not isinstance(stop_timeout, int) or stop_timeout < 0:
        raise ConfigError('use', 'stop_timeout %r' % (stop_timeout,), 'expected whole seconds, 0 or more')
    out['stop_timeout'] = stop_timeout
    out['init'] = bool(opts.get('init', False))
    out['log'] = _log(opts.get('log'))
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
        'labels': dict(sorted({**(ic.get('Labels') or {}), **(checked.get('labels') or {})}.items())),
        'mounts': checked['mounts'],
        'read_only': checked['read_only'],
        'resources': {k: getattr(res, k) for k in ('memory', 'cpus', 'cpu_period', 'pids_limit')},
        'namespaces': checked['namespaces'],
        'stop_signal': checked.get('stop_signal') or (parse_signal(ic['StopSignal']) if ic.get('StopSignal') else 'SIGTERM'),
        'stop_timeout': checked['stop_timeout'],
        'init': checked['init'],
        'log': checked['log'],
    }


def resources_of(config):
    """The stored limits as a cgroups Resources (None fields unmanaged)."""
    r = config.get('resources') or {}
    return Resources(memory=r.get('memory'), cpus=r.get('cpus'), cpu_period=r.get('cpu_period') if r.get('cpus') else None,
                     pids_limit=r.get('pids_limit'))


UPDATE = {opt.field: opt.update for opt in TABLE}  # config field -> how a difference is applied


def differences(stored, wanted):
    """{field: 'live'|'stored'|'recreate'} for each config field that differs."""
    out = {}
    for field, update in UPDATE.items():
        if field == 'image':
            same = (stored.get('image') or {}).get('digest') == wanted['image']['digest']
        else:
            same = stored.get(field) == wanted.get(field)
        if not same:
            out[field] = update
    if out.get('resources') == 'live':
        before, after = stored.get('resources') or {}, wanted.get('resources') or {}
        if any(before.get(k) is not None and after.get(k) is None for k in before):
            out['resources'] = 'recreate'  # a limit taken away: a fresh cgroup has none (written live, it would stay)
    return out


def display_config(config):
    """The config as a person reads it (sizes as Docker prints them)."""
    out = dict(config)
    out['resources'] = {k: display(k, v) for k, v in (config.get('resources') or {}).items() if v is not None}
    return out
