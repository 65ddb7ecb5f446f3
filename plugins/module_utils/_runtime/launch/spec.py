# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The typed launch spec: what ``process.start`` makes (:class:`Launch`) and ``process.enter`` runs (:class:`Exec`).

There is one translation into it from each front, as runc's specconv: a container's stored
config (``container/assemble.process_spec``), an OCI bundle's config.json (``oci/spec.translate``)
and an exec request (``container/execute``, ``oci/spec.process_of``). Each builds the value with
:meth:`Exec.of` / :meth:`Launch.of`, which checks every field and fills the defaults, so a bad
value is refused in the caller, once, before anything forks; the forked children only read it.
The rules values share with the container options (a sysctl's name, the ``oom_score_adj`` and
``shm_size`` ranges) are the functions below, used by both.

Fields (the meaning of each in launch/process.py's docstring): ``args``, ``env``, ``cwd``, ``user``
(:class:`User`), ``capabilities``, ``no_new_privs``, ``seccomp``, ``rlimits``, ``umask``, ``terminal``;
for a start also ``rootfs``, ``readonly_rootfs``, ``namespaces``, ``loopback``, ``hostname``,
``mounts``, ``init``, ``masked_paths``, ``readonly_paths``, ``writable_sys``, ``shm_size``,
``devices``, ``sysctls``, ``oom_score_adj`` and ``userns``.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Optional

from ..errors import ConfigError
from ..kernel.idmap import parse_id_map
from . import caps, mounts as mount_rules

NS_TYPES = ('mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup')
SYSCTL_RE = re.compile(r'^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+\Z')  # no '/' and no '..': it names a file under /proc/sys
# Linux's resource numbers (Python's resource module lacks RLIMIT_LOCKS).
RLIMITS = {'cpu': 0, 'fsize': 1, 'data': 2, 'stack': 3, 'core': 4, 'rss': 5, 'nproc': 6, 'nofile': 7, 'memlock': 8, 'as': 9,
           'locks': 10, 'sigpending': 11, 'msgqueue': 12, 'nice': 13, 'rtprio': 14, 'rttime': 15}


# -- the rules shared with the container options ------------------------------------------------
def sysctl_name(key, what=None):
    """A dotted sysctl name (it becomes a path under /proc/sys: no '/', no '..')."""
    if not isinstance(key, str) or not SYSCTL_RE.match(key):
        raise ConfigError('use', what or 'sysctl %s' % (key,), 'expected a dotted name such as net.ipv4.ip_forward')
    return key


def oom_score_adj(value, what='oom_score_adj'):
    if isinstance(value, bool) or not isinstance(value, int) or not -1000 <= value <= 1000:
        raise ConfigError('use', '%s %r' % (what, value), 'expected a whole number from -1000 to 1000')
    return value


def shm_size(value, what='shm_size'):
    if isinstance(value, bool) or not isinstance(value, int) or value < 4096:
        raise ConfigError('use', what, 'at least one page (4k), not %r bytes' % (value,))
    return value


def abs_path(value, what, required=True):
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.startswith('/') or '\0' in value:
        raise ConfigError('use', what, 'an absolute path is needed, not %r' % (value,))
    return value


# -- the types -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class User:
    uid: int = 0
    gid: int = 0
    additional_gids: tuple = ()

    @classmethod
    def of(cls, user):
        user = user or {}
        if isinstance(user, User):
            return user
        try:
            out = cls(int(user.get('uid', 0)), int(user.get('gid', 0)), tuple(int(g) for g in user.get('additional_gids') or ()))
        except (AttributeError, TypeError, ValueError):
            raise ConfigError('use', 'the user', 'user must be {uid, gid, additional_gids} of integers, not %r' % (user,)) from None
        if min((out.uid, out.gid) + out.additional_gids) < 0:
            raise ConfigError('use', 'the user', 'ids are not negative: %r' % (user,))
        return out


@dataclasses.dataclass(frozen=True)
class Exec:
    """A process run in a container's namespaces (``process.enter``), and the process part of :class:`Launch`."""

    args: tuple
    env: tuple = ()
    cwd: str = '/'
    user: User = User()
    capabilities: tuple = tuple(caps.DEFAULT)
    no_new_privs: bool = False
    seccomp: Optional[dict] = None
    rlimits: tuple = ()
    umask: Optional[int] = None
    terminal: bool = False

    @classmethod
    def of(cls, spec):
        """The checked value from a dict of its fields (absent ones take the defaults); ConfigError names the field."""
        if isinstance(spec, cls):
            return spec
        if not isinstance(spec, dict):
            raise ConfigError('use', 'the process spec', 'a dict is needed')
        unknown = set(spec) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError('use', 'the process spec', 'unknown fields %s' % ', '.join(sorted(unknown)))
        return cls(**_process_fields(spec), **cls._own_fields(spec))

    @classmethod
    def _own_fields(cls, _spec):
        return {}

    def replace(self, **changes):
        """A copy with ``changes``, checked again."""
        return type(self).of(dict(self.fields(), **changes))

    def fields(self):
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclasses.dataclass(frozen=True)
class Launch(Exec):
    """A container's init (``process.start``)."""

    rootfs: str = ''
    readonly_rootfs: bool = False
    namespaces: dict = dataclasses.field(default_factory=dict)
    loopback: bool = False
    hostname: Optional[str] = None
    mounts: tuple = ()
    init: Optional[str] = None
    masked_paths: tuple = tuple(mount_rules.MASKED_PATHS)
    readonly_paths: tuple = tuple(mount_rules.READONLY_PATHS)
    writable_sys: bool = False
    shm_size: Optional[int] = None
    devices: tuple = ()
    sysctls: dict = dataclasses.field(default_factory=dict)
    oom_score_adj: Optional[int] = None
    userns: Optional[dict] = None

    @classmethod
    def _own_fields(cls, spec):
        return dict(_root_fields(spec), **_namespace_fields(spec), **_kernel_fields(spec))


# -- the checks, by part -------------------------------------------------------------------------
def _process_fields(spec):
    args = spec.get('args')
    if not isinstance(args, (list, tuple)) or not args or not all(isinstance(a, str) and '\0' not in a for a in args) or not args[0]:
        raise ConfigError('use', 'the command', 'args must be a non-empty list of strings, not %r' % (args,))
    env = spec.get('env') or ()
    if not isinstance(env, (list, tuple)):
        raise ConfigError('use', 'the environment', 'env must be a list of "KEY=value" strings, not a %s' % type(env).__name__)
    for item in env:  # a value is never shown: it may be a secret
        if not isinstance(item, str) or '=' not in item[1:] or '\0' in item:
            raise ConfigError('use', 'the environment', 'env must be a list of "KEY=value" strings without NUL bytes: %s' % (
                'variable %s' % item.split('=', 1)[0][:64] if isinstance(item, str) and '=' in item[1:] else 'an entry without "="'))
    names = spec.get('capabilities')
    profile = spec.get('seccomp')
    if profile is not None:
        if not isinstance(profile, dict) or 'defaultAction' not in profile:
            raise ConfigError('use', 'the seccomp profile', 'a profile in Docker\'s format or None, not %r' % (profile,))
    umask = spec.get('umask')
    if umask is not None and (isinstance(umask, bool) or not isinstance(umask, int) or not 0 <= umask <= 0o777):
        raise ConfigError('use', 'umask %r' % (umask,), 'a mode from 0 to 0777')
    return {'args': tuple(args), 'env': tuple(env), 'cwd': abs_path(spec.get('cwd') or '/', 'the working directory'),
            'user': User.of(spec.get('user')), 'capabilities': tuple(caps.parse(caps.DEFAULT if names is None else names)),
            'no_new_privs': bool(spec.get('no_new_privs')), 'seccomp': profile, 'rlimits': _rlimits(spec.get('rlimits')),
            'umask': umask, 'terminal': bool(spec.get('terminal'))}


def _rlimits(items):
    out = []
    for item in items or ():
        name = item.get('name') if isinstance(item, dict) else None
        if name not in RLIMITS or not all(isinstance(item.get(k), int) and item[k] >= -1 for k in ('soft', 'hard')):
            raise ConfigError('use', 'rlimit %r' % (item,), '{name, soft, hard} with a name of %s' % ', '.join(sorted(RLIMITS)))
        out.append({'name': name, 'soft': item['soft'], 'hard': item['hard']})
    return tuple(out)


def _root_fields(spec):
    rootfs = abs_path(spec.get('rootfs'), 'the root filesystem')
    if not os.path.isdir(rootfs):
        raise ConfigError('use', 'root filesystem %s' % rootfs, 'it is not a directory')
    init = abs_path(spec.get('init'), 'the init binary', required=False)
    if init and not os.path.isfile(init):
        raise ConfigError('use', 'init binary %s' % init, 'no such file')
    items = tuple(spec.get('mounts') or ())
    for mount in items:
        if not isinstance(mount, dict):
            raise ConfigError('use', 'mount %r' % (mount,), 'a mount is a dict with type, source, target')
        abs_path(mount.get('target'), 'a mount target')
        mount_rules.parse_options(mount.get('type'), mount.get('options'), bool(mount.get('readonly')))
    paths = {}
    for key, default in (('masked_paths', mount_rules.MASKED_PATHS), ('readonly_paths', mount_rules.READONLY_PATHS)):
        paths[key] = tuple(abs_path(p, 'a path in %s' % key) for p in spec.get(key, default))
    size = spec.get('shm_size')
    return dict(paths, rootfs=rootfs, init=init, mounts=items, readonly_rootfs=bool(spec.get('readonly_rootfs')),
                writable_sys=bool(spec.get('writable_sys')), shm_size=None if size is None else shm_size(size, 'shm_size %r' % (size,)),
                devices=tuple(mount_rules.check_devices(spec.get('devices'))))


def _namespace_fields(spec):
    ns = spec.get('namespaces') or {}
    if not isinstance(ns, dict) or any(t not in NS_TYPES for t in ns):
        raise ConfigError('use', 'the namespaces', 'a dict of {type: None | path} for types %s, not %r' % (', '.join(NS_TYPES), ns))
    if ns.get('mnt') is not None:
        raise ConfigError('use', 'the mnt namespace', 'a container always gets a new mount namespace: joining %s is not supported' % ns['mnt'])
    for ns_type, path in ns.items():
        if path is not None:
            abs_path(path, 'the %s namespace to join' % ns_type)
    hostname = spec.get('hostname')
    if hostname is not None:
        if not isinstance(hostname, str) or not 0 < len(hostname) <= 64:
            raise ConfigError('use', 'hostname %r' % (hostname,), 'a hostname is 1 to 64 characters')
        if 'uts' not in ns or ns['uts'] is not None:
            raise ConfigError('use', 'hostname %s' % hostname, 'setting a hostname needs a new uts namespace')
    return {'namespaces': dict(ns, mnt=None), 'hostname': hostname, 'loopback': bool(spec.get('loopback')),
            'userns': _userns(spec.get('userns'), ns)}


def _userns(userns, ns):
    if not userns:
        return None
    maps = {k: parse_id_map(userns.get(k), k) for k in ('uid_map', 'gid_map')}
    if not maps['uid_map'] or not maps['gid_map']:
        raise ConfigError('use', 'the user namespace', 'uid_map and gid_map are needed')
    if 'pid' not in ns or ns['pid'] is not None:
        raise ConfigError('use', 'the user namespace', 'a container with a user namespace has a new pid namespace')
    rootfs = dict(userns.get('rootfs') or {'method': 'chown'})
    if rootfs.get('method') not in ('idmapped', 'chown') or (rootfs['method'] == 'idmapped' and not rootfs.get('overlay')):
        raise ConfigError('use', 'the user namespace', 'rootfs method chown, or idmapped with the overlay, not %r' % (rootfs,))
    return {'uid_map': maps['uid_map'], 'gid_map': maps['gid_map'], 'rootfs': rootfs}


def _kernel_fields(spec):
    sysctls = spec.get('sysctls') or {}
    if not isinstance(sysctls, dict) or not all(isinstance(v, str) for v in sysctls.values()):
        raise ConfigError('use', 'the sysctls', 'a dict of {dotted.name: "value"}, not %r' % (sysctls,))
    for key in sysctls:
        sysctl_name(key, 'the sysctls')
    adj = spec.get('oom_score_adj')
    return {'sysctls': dict(sysctls), 'oom_score_adj': None if adj is None else oom_score_adj(adj)}
