# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container's options as one declarative table, and their resolution into a config.

Each row of :data:`TABLE` is one module option and carries everything about it: its Ansible
type, the parser that checks it and returns its stored form (``parse.py``), where that form
lives in the stored config (``field``), what is stored when it is not given (``unset``), how a
difference is applied (``update``), how it is compared by default (``compare``), the value a
record written before the field existed has (``old``), and its doc line (the first words of the
module's documentation of it, which a unit test holds to). The module's argument spec, the
check, the comparison, the defaults of older records and the diff all come from this table.

How a difference is applied:

- ``live``: applied to the running container in place (cgroup limits), no restart;
- ``stored``: only the stored config changes (labels, stop signal and timeout: read when used);
- ``recreate``: the container is removed and created again (image, command, env, mounts, namespaces).

Options that fill fields together (``env`` and ``env_file``, ``mounts`` and ``volumes``, the
cgroup limits, ``network_mode`` and ``networks``...) share one :class:`Group` parser, which gets
all of their values. What needs more than one field (ports need a bridge, a privileged container
takes no capabilities) is one of :data:`CHECKS`, run on the parsed whole, in order, as runc's
validator runs its list of checks. Options of later issues are not in the table: Ansible rejects
them as unsupported, the library's parser as unknown — never accepted and ignored.
"""
from __future__ import annotations

import json
import re

from ..cgroups.resources import CONTAINER_FIELDS, CONTAINER_STORED, Resources, display
from ..kernel.units import parse_size
from ..errors import ConfigError
from ..launch import caps, devices as device_options, spec as launch_spec
from . import idranges, parse, policy, security
from .parse import parse_signal

SCHEMA_VERSION = 1
validate_name = parse.validate_name  # a container's name: converge checks it before the options
DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
NS_MODES = ('network', 'pid', 'ipc', 'uts')
SUPERVISORS = ('nsbox', 'systemd', 'auto')
COMPARISONS = ('strict', 'ignore', 'allow_more_present')
UPDATES = ('live', 'stored', 'recreate')
DEFAULT_SHM_SIZE = 64 << 20
OMIT = object()  # ``unset``: the field is left out when the option is not given (resolve fills it from the image)


class Group:
    """The parser of options that fill fields together: ``fn(given, ctx) -> {field: value}``, where
    ``given`` is {option: value or None} for every option of the group and ``ctx`` the host defaults."""

    def __init__(self, fn):
        self.fn, self.options = fn, []  # its rows, in table order (filled from the table)

    def __call__(self, given, ctx):
        return self.fn(given, ctx)


class Option:
    """One row of the table (see the module docstring)."""

    __slots__ = ('name', 'type', 'update', 'doc', 'parse', 'field', 'elements', 'choices', 'unset', 'old', 'compare')

    def __init__(self, name, type_, update, doc, parse_=None, field=None, elements=None, choices=None, unset=OMIT, old=OMIT,
                 compare='strict'):
        if update not in UPDATES or compare not in COMPARISONS:
            raise ValueError('option %s: update %r, compare %r' % (name, update, compare))
        self.name, self.type, self.update, self.doc, self.parse = name, type_, update, doc, parse_
        self.field, self.elements, self.choices = field or name, elements, choices
        self.unset, self.old, self.compare = unset, old, compare

    def argspec(self):
        spec = {'type': self.type}
        for key, value in (('elements', self.elements), ('choices', self.choices)):
            if value is not None:
                spec[key] = list(value) if key == 'choices' else value
        return spec


# -- parsers of one option or of a group -------------------------------------------------------
def _env(given, _ctx):
    if given['env'] is None and given['env_file'] is None:
        return {}
    env = parse.read_env_file(given['env_file']) if given['env_file'] is not None else {}
    for key, value in (given['env'] or {}).items():
        if not key or '=' in key or '\0' in key:
            raise ConfigError('use', 'env key %r' % (key,), 'a variable name has no "=" and is not empty')
        if isinstance(value, bool):
            raise ConfigError('use', 'env %s' % key, 'quote booleans ("true"): YAML would turn yes into True')
        if isinstance(value, (dict, list)):
            raise ConfigError('use', 'env %s' % key, 'a value is a string, not a %s' % type(value).__name__)
        env[key] = '' if value is None else str(value)
    for key, value in env.items():
        if '\0' in value:  # the value is never shown: it may be a secret
            raise ConfigError('use', 'env %s' % key, 'the value holds a NUL byte, which no environment can carry')
    return {'env': env}


def _working_dir(value):
    if not str(value).startswith('/'):
        raise ConfigError('use', 'working_dir %r' % (value,), 'expected an absolute path')
    return parse.norm_path(value)


def _hostname(value):
    value = str(value)
    if not re.match(r'^[A-Za-z0-9]([A-Za-z0-9.-]{0,62})\Z', value):
        raise ConfigError('use', 'hostname %r' % value, 'expected up to 63 of [A-Za-z0-9.-]')
    return value


def _strings(option):
    """labels, annotations: {string: string}; a nested value is refused (str() would store its repr)."""
    def parse_(value):
        out = {}
        for key, item in value.items():
            if isinstance(item, (dict, list, tuple, set)) or item is None:
                raise ConfigError('use', '%s %s' % (option, key), 'values are strings, not %s' % type(item).__name__)
            out[str(key)] = str(item)
        return out
    return parse_


def _groups(value):
    groups = [str(g).strip() for g in value]
    bad = [g for g in groups if not g or ':' in g or any(c.isspace() for c in g)]
    if bad:
        raise ConfigError('use', 'group_add %r' % bad[0], 'expected a group name or gid')
    return groups


def _mounts(given, _ctx):
    mounts = [parse.mount(m, i) for i, m in enumerate(given['mounts'] or [])]
    mounts += [parse.volume(v, i) for i, v in enumerate(given['volumes'] or [])]
    targets = [m['target'] for m in mounts]
    dup = sorted({t for t in targets if targets.count(t) > 1})
    if dup:
        raise ConfigError('use', 'mounts', 'more than one mount on %s' % ', '.join(dup))
    return {'mounts': mounts}


def _shm_size(value):
    return launch_spec.shm_size(parse_size(value, 'shm_size'))


def _resources(given, _ctx):
    res = Resources.from_options(given)
    return {'resources': {k: getattr(res, k) for k in RESOURCE_FIELDS}}


def _ulimits(value):
    ulimits = [parse.ulimit(u, i) for i, u in enumerate(value)]
    names = [u['name'] for u in ulimits]
    if len(set(names)) != len(names):
        raise ConfigError('use', 'ulimits', 'each limit once: %s' % ', '.join(sorted({n for n in names if names.count(n) > 1})))
    return sorted(ulimits, key=lambda u: u['name'])


def _network(given, ctx):
    mode, networks = parse.network_mode(given['network_mode'], given['networks'], ctx)
    return {'namespaces.network': mode, 'networks': networks}


def _namespace(option):
    return lambda value: parse.namespace_mode(option, value)


def _stop_timeout(value):
    if not isinstance(value, int) or value < 0:
        raise ConfigError('use', 'stop_timeout %r' % (value,), 'expected whole seconds, 0 or more')
    return value


def _restart(given, _ctx):
    return {'restart_policy': policy.parse_restart(given['restart_policy'], given['restart_retries'])}


def _supervision(given, ctx):
    """supervisor (auto resolved: systemd where systemd is PID 1), enabled (the unit's) and depends_on.

    ``depends_on`` orders the ``containers`` module's converge whatever the supervisor, and under a unit
    also shapes it. ``enabled: false`` would do nothing under ``supervisor: nsbox``: refused there; with
    ``auto`` on a host without systemd it is kept (stored, shown), and applies once a unit runs it.
    """
    systemd = ctx.get('systemd', False)
    wanted = given['supervisor'] or 'nsbox'
    if wanted not in SUPERVISORS:
        raise ConfigError('use', 'supervisor %r' % (wanted,), 'expected one of %s' % ', '.join(SUPERVISORS))
    if wanted == 'systemd' and not systemd:
        raise ConfigError('use', 'supervisor systemd', 'systemd is not PID 1 on this host (use auto to fall back to nsbox\'s own supervisor)')
    deps = []
    for dep in given['depends_on'] or []:
        if not isinstance(dep, str) or not parse.NAME_RE.match(dep):
            raise ConfigError('use', 'depends_on %r' % (dep,), 'expected container names')
        if dep not in deps:
            deps.append(dep)
    if wanted == 'nsbox' and given['enabled'] is False:
        raise ConfigError('use', 'enabled', 'it says whether the container\'s systemd unit starts at boot: give supervisor systemd (or auto)')
    supervisor = ('systemd' if systemd else 'nsbox') if wanted == 'auto' else wanted
    enabled = given['enabled'] is not False
    return {'supervisor': supervisor, 'enabled': enabled, 'depends_on': sorted(deps)}


def _userns(given, ctx):
    pool = ctx.get('userns_pool') or idranges.DEFAULT_POOL
    return {'userns': idranges.parse_options(given['userns_mode'], given['uidmap'], given['gidmap'], pool)}


def _listed(fn, option):
    return lambda value: [fn(item, option) for item in value]


ENV, MOUNTS, RESOURCES, NETWORK, RESTART, SUPERVISION, USERNS = (Group(f) for f in (_env, _mounts, _resources, _network, _restart,
                                                                                    _supervision, _userns))
DEFAULT_LOG = {'driver': 'json-file', 'max_size': None, 'max_files': 1}
NS_DOC = 'V(private) (default), V(host), V(container:NAME) or V(ns:NAME).'
R = 'recreate'

TABLE = (
    Option('image', 'str', R, 'The image (a reference such as V(busybox)'),
    Option('command', 'raw', R, 'The command (a string split as a shell would, or a list)', lambda v: parse.argv(v, 'command')),
    Option('entrypoint', 'list', R, "Replaces the image's C(Entrypoint) (and then its C(Cmd) too, as Docker does).",
           lambda v: parse.argv(v, 'entrypoint'), elements='str'),
    Option('env', 'dict', R, "Environment variables, over the image's C(Env) and O(env_file).", ENV),
    Option('env_file', 'path', R, "A file on the managed host in Docker's env-file format", ENV, field='env'),
    Option('working_dir', 'str', R, 'The working directory (created if missing)', _working_dir),
    Option('user', 'str', R, 'V(name), V(uid), V(name:group) or V(uid:gid)', str),
    Option('group_add', 'list', R, "Supplementary groups of the container's processes", _groups, elements='str', unset=[], old=[]),
    Option('hostname', 'str', R, "The container's hostname", _hostname),
    Option('labels', 'dict', 'stored', "Labels (over the image's).", _strings('labels')),
    Option('annotations', 'dict', 'stored', 'OCI annotations, stored with the container', _strings('annotations'), old={}),
    Option('mounts', 'list', R, 'Mounts, each a dict with C(type)', MOUNTS, elements='dict'),
    Option('volumes', 'list', R, "Docker's short form, V(/host/path:/container/path[:OPTS]) for a bind mount", MOUNTS, elements='str',
           field='mounts'),
    Option('read_only', 'bool', R, 'Mount the root filesystem read-only.', bool, unset=False),
    Option('shm_size', 'str', R, "Size of the container's C(/dev/shm) tmpfs (default V(64m), as Docker).", _shm_size, unset=None, old=None),
    Option('tty', 'bool', R, 'Give the container a pseudo-terminal as stdin, stdout and stderr', bool, unset=False, old=False),
    Option('interactive', 'bool', R, 'Keep stdin open (C(docker run -i)).', bool, unset=False, old=False),
) + tuple(
    # The cgroup limits: the rows of the resource table the container takes (each named there once), changed live.
    Option(row.name, row.argspec['type'], 'live', row.container, RESOURCES, field='resources.' + row.name) for row in CONTAINER_FIELDS
) + (
    Option('ulimits', 'list', R, "Resource limits of the container's processes, V(NAME:SOFT[:HARD])", _ulimits, elements='str', unset=[],
           old=[]),
    Option('oom_score_adj', 'int', R, "The OOM killer's adjustment of the container's processes (-1000 to 1000)", launch_spec.oom_score_adj,
           unset=None, old=None),
    Option('sysctls', 'dict', R, 'Namespaced kernel parameters of the container', parse.sysctls, unset={}, old={}),
    Option('network_mode', 'str', R, "V(bridge) (the default, unless the host config's C(default_network_mode) says otherwise)", NETWORK,
           field='namespaces.network'),
    Option('networks', 'list', R, 'The networks (M(nsbox.runtime.network)) the container joins, in order', NETWORK, elements='raw', old=[]),
    Option('published_ports', 'list', R, 'Ports of the host forwarded to the container', parse.published_ports, elements='str', unset=[],
           old=[]),
    Option('dns', 'list', R, "Name servers for the container's C(/etc/resolv.conf)", _listed(parse.ip, 'dns'), elements='str', unset=[],
           old=[]),
    Option('dns_search', 'list', R, 'Search domains for C(/etc/resolv.conf)', _listed(parse.domain, 'dns_search'), elements='str', unset=[],
           old=[]),
    Option('dns_options', 'list', R, 'C(options) of C(/etc/resolv.conf) (V(ndots:2))', _listed(parse.word, 'dns_options'), elements='str',
           unset=[], old=[]),
    Option('extra_hosts', 'raw', R, "More C(/etc/hosts) entries, a dict (name to address) or Docker's list of V(name:address).",
           parse.extra_hosts, unset={}, old={}),
    Option('pid_mode', 'str', R, NS_DOC, _namespace('pid_mode'), field='namespaces.pid', unset='private'),
    Option('ipc_mode', 'str', R, NS_DOC, _namespace('ipc_mode'), field='namespaces.ipc', unset='private'),
    Option('uts_mode', 'str', R, NS_DOC, _namespace('uts_mode'), field='namespaces.uts', unset='private'),
    Option('stop_signal', 'str', 'stored', 'The signal that asks the container to stop', parse_signal),
    Option('stop_timeout', 'int', 'stored', 'Seconds to wait after O(stop_signal) before SIGKILL (default 10).', _stop_timeout, unset=10),
    Option('restart_policy', 'str', 'stored', 'What the supervisor does when the container ends, as Docker.', RESTART,
           old=dict(policy.NO_RESTART)),
    Option('restart_retries', 'int', 'stored', 'The most restarts of O(restart_policy=on-failure) (0, the default, is no limit).', RESTART,
           field='restart_policy'),
    Option('healthcheck', 'dict', R, 'A command the supervisor runs inside the container to tell whether it is healthy',
           policy.parse_healthcheck, old=None),
    Option('init', 'bool', R, "Run Debian's static C(catatonit) as pid 1", bool, unset=False),
    Option('cap_add', 'list', R, 'Capabilities to add to the default set', lambda v: caps.normalise(v, 'cap_add'), elements='str', unset=[],
           old=[]),
    Option('cap_drop', 'list', R, 'Capabilities to drop from the default set', lambda v: caps.normalise(v, 'cap_drop'), elements='str',
           unset=[], old=[]),
    Option('privileged', 'bool', R, "Every capability of the host's capability bounding set", bool, unset=False, old=False),
    Option('security_opt', 'list', R, "Docker's security options, each once.", security.parse_security_opt, elements='str',
           unset=security.DEFAULT_SECURITY, old=security.DEFAULT_SECURITY),
    Option('devices', 'list', R, 'Host devices for the container', device_options.parse, elements='str', unset=[], old=[]),
    Option('log', 'dict', R, "Logging of the container's stdout and stderr, a dict with C(driver)", parse.log, unset=DEFAULT_LOG),
    Option('userns_mode', 'str', R, "V(host) (default) runs the container in the host's user namespace", USERNS, choices=idranges.MODES,
           field='userns.mode', old=dict(idranges.HOST)),
    Option('uidmap', 'list', R, "An explicit uid map, Docker's and podman's C(container_id:host_id:size) entries", USERNS, elements='str',
           field='userns.uid_map'),
    Option('gidmap', 'list', R, 'An explicit gid map, as O(uidmap)', USERNS, elements='str', field='userns.gid_map'),
    Option('supervisor', 'str', R, 'What supervises the running container.', SUPERVISION, choices=SUPERVISORS, old='nsbox'),
    Option('enabled', 'bool', 'stored', 'With a unit, whether it is enabled', SUPERVISION, old=True),
    Option('depends_on', 'list', 'stored', 'The containers (names) this one needs', SUPERVISION, elements='str', old=[]),
)
OPTIONS = {opt.name: opt for opt in TABLE}
RESOURCE_OPTIONS = tuple(opt.name for opt in TABLE if opt.field.startswith('resources.'))
RESOURCE_FIELDS = CONTAINER_STORED  # stored under resources: the options plus cpu_period (from cpus)
FIELDS = {}  # config field -> the options that fill it, in table order
for _opt in TABLE:
    FIELDS.setdefault(_opt.field, []).append(_opt)
    if isinstance(_opt.parse, Group):
        _opt.parse.options.append(_opt)
UPDATE = {field: opts[0].update for field, opts in FIELDS.items()}  # config field -> how a difference is applied
# Fields added after schema 1 and their value for a container created before them: an upgrade
# of nsbox compares an old config as if it had them, and recreates nothing.
ADDED_FIELDS = {opt.field.split('.')[0]: opt.old for opt in TABLE if opt.old is not OMIT}


# The stored record's fields, in the order config.json has them (the table's fields, from their first part, and
# what resolve adds: schema_version, name, args).
RECORD = ('schema_version', 'name', 'image', 'entrypoint', 'command', 'args', 'env', 'working_dir', 'user', 'hostname', 'group_add', 'labels',
          'annotations', 'mounts', 'read_only', 'shm_size', 'tty', 'interactive', 'resources', 'ulimits', 'oom_score_adj', 'sysctls',
          'namespaces', 'networks', 'published_ports', 'dns', 'dns_search', 'dns_options', 'extra_hosts', 'stop_signal', 'stop_timeout',
          'restart_policy', 'healthcheck', 'init', 'log', 'supervisor', 'enabled', 'depends_on', 'cap_add', 'cap_drop', 'privileged',
          'security_opt', 'userns', 'devices')


def argument_spec():
    """The module's options from the table (state and the like are the module's own)."""
    return {opt.name: opt.argspec() for opt in TABLE}


# -- checks of the whole (runc's validator: a list of checks over the parsed config) --------------
def _ports_need_a_bridge(out):
    if out['published_ports'] and out['namespaces']['network'] != 'bridge':
        raise ConfigError('use', 'published_ports', 'ports are published to a container on a bridge network, not with network_mode %s'
                          % out['namespaces']['network'])


def _sysctls_in_own_namespaces(out):
    for key in out['sysctls']:
        need = parse.sysctl_namespace(key)
        mode = out['namespaces'][need]
        if need == 'network' and mode == 'bridge':
            mode = 'private'
        if mode not in ('private', 'none'):
            raise ConfigError('use', 'sysctl %s' % key, 'it needs the container\'s own %s namespace, not %s (set it where that namespace is '
                              'made)' % (need, mode))


def _privileged_takes_nothing_more(out):
    if not out['privileged']:
        return
    given = [o for o in ('cap_add', 'cap_drop') if out[o]]
    if given:
        raise ConfigError('use', ' and '.join(given), 'a privileged container has every capability of the host: %s would do nothing'
                          % ' and '.join(given))
    if isinstance(out['security_opt']['seccomp'], dict):
        raise ConfigError('use', 'security_opt seccomp=%s' % out['security_opt']['seccomp']['path'],
                          'a privileged container runs without seccomp: the profile would do nothing')


CHECKS = (_ports_need_a_bridge, _sysctls_in_own_namespaces, _privileged_takes_nothing_more, idranges.check_compatible)


# -- the whole config ----------------------------------------------------------------------------
def check(options, defaults=None):
    """Parse every given option (None = not given); raises ConfigError naming the option.

    Returns the checked fields (an option not given: its ``unset``, or left out). No I/O but
    reading ``env_file`` (on the managed host: its content is part of the config). ``defaults``:
    the host config's {'network_mode', 'network'} (the default mode and network name),
    ``systemd`` (whether systemd is PID 1: ``supervisor: auto`` resolves with it) and ``userns_pool``.
    """
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise ConfigError('use', 'container options', 'unknown options %s' % ', '.join(sorted(unknown)))
    ctx = defaults or {}
    opts = {k: parse.typed(OPTIONS[k], v) for k, v in options.items() if v is not None}
    out = {}
    for opt in TABLE:
        if isinstance(opt.parse, Group):
            if opt is opt.parse.options[0]:
                for field, value in opt.parse({o.name: opts.get(o.name) for o in opt.parse.options}, ctx).items():
                    _put(out, field, value)
        elif opt.name in opts and opt.parse is not None:
            _put(out, opt.field, opt.parse(opts[opt.name]))
        elif opt.name in opts:
            _put(out, opt.field, opts[opt.name])
        elif opt.unset is not OMIT:
            _put(out, opt.field, json_copy(opt.unset))
    out['namespaces'] = {ns: out['namespaces'][ns] for ns in NS_MODES}
    for rule in CHECKS:
        rule(out)
    return out


def _put(out, field, value):
    path = field.split('.')
    for part in path[:-1]:
        out = out.setdefault(part, {})
    out[path[-1]] = value


def _from_image(checked, ic):
    """The fields a given option overrides and the image config gives otherwise, as Docker combines them."""
    entrypoint = checked.get('entrypoint')
    if entrypoint is None:
        entrypoint = list(ic.get('Entrypoint') or [])
    command = checked.get('command')
    if command is None and 'entrypoint' not in checked:
        command = list(ic.get('Cmd') or [])  # Docker: a given entrypoint drops the image's Cmd
    env = dict(item.partition('=')[::2] for item in ic.get('Env') or [])
    env.update(checked.get('env') or {})
    env.setdefault('PATH', DEFAULT_PATH.split('=', 1)[1])
    return {
        'entrypoint': list(entrypoint), 'command': list(command or []), 'args': list(entrypoint) + list(command or []),
        'env': ['%s=%s' % kv for kv in sorted(env.items())],
        'working_dir': checked.get('working_dir') or ic.get('WorkingDir') or '/',
        'user': checked.get('user') or ic.get('User') or '0',
        'hostname': checked.get('hostname'),
        'labels': dict(sorted({**(ic.get('Labels') or {}), **(checked.get('labels') or {})}.items())),
        'annotations': dict(sorted((checked.get('annotations') or {}).items())),
        'stop_signal': checked.get('stop_signal') or (parse_signal(ic['StopSignal']) if ic.get('StopSignal') else 'SIGTERM'),
        # Given (None: disabled with [NONE]) or the image's HEALTHCHECK, as Docker.
        'healthcheck': checked['healthcheck'] if 'healthcheck' in checked else policy.healthcheck_from_image(ic),
    }


def resolve(name, checked, image, image_config):
    """The config to store: options over the image's defaults, as Docker combines them.

    ``image`` is {'name', 'digest', 'id'}; ``image_config`` the image config's ``config``.
    """
    merged_in = _from_image(checked, image_config or {})
    if not merged_in['args']:
        raise ConfigError('create', 'container %s' % name, 'no command: the image has neither Entrypoint nor Cmd, give command')
    fields = dict(merged_in, schema_version=SCHEMA_VERSION, name=name, image=dict(image))
    return {key: fields[key] if key in fields else checked[key] for key in RECORD}


def resources_of(config):
    """The stored limits as a cgroups Resources (None fields unmanaged), with the container's device allow list."""
    r = dict(config.get('resources') or {})
    if not r.get('cpus'):
        r['cpu_period'] = None
    return Resources(devices=device_options.cgroup_rules(config), **{k: r.get(k) for k in RESOURCE_FIELDS})


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


def parse_comparisons(value):
    """{option or '*': strict|ignore|allow_more_present} -> {option: how} for every option (a row's own
    ``compare`` unless given)."""
    value = dict(value or {})
    unknown = set(value) - set(OPTIONS) - {'*'}
    if unknown:
        raise ConfigError('use', 'comparisons', 'unknown options %s' % ', '.join(sorted(unknown)))
    for key, how in value.items():
        if how not in COMPARISONS:
            raise ConfigError('use', 'comparisons %s' % key, 'expected one of %s, not %r' % (', '.join(COMPARISONS), how))
        if how == 'allow_more_present' and key != '*' and OPTIONS[key].type not in ('dict', 'list'):
            raise ConfigError('use', 'comparisons %s' % key, 'allow_more_present applies to lists and dicts only')
    out = {}
    for opt in TABLE:
        how = value.get(opt.name, value.get('*', opt.compare))
        if how == 'allow_more_present' and opt.type not in ('dict', 'list'):
            how = 'strict'  # a '*' default falls back to strict for single values
        out[opt.name] = how
    return out


def differences(stored, wanted, comparisons=None):
    """{option: 'live'|'stored'|'recreate'} for each option whose config field differs.

    A field filled by two options (``mounts``/``volumes``, ``env``/``env_file``) is named by
    its first option. ``comparisons`` ({option: strict|ignore|allow_more_present}, from
    :func:`parse_comparisons`) relaxes the comparison of a field: the first of its options given decides.
    """
    comparisons = comparisons or {}
    out = {}
    for field, opts in FIELDS.items():
        how = next((comparisons[o.name] for o in opts if comparisons.get(o.name, o.compare) != 'strict'), 'strict')
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
