# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""An OCI bundle's ``config.json`` translated into the library's own terms (the only spec translation).

As runc's ``specconv``: plain data in, plain data out, nothing touched. ``translate`` gives the
``process.start`` spec (launch/process.py), the cgroup path and limits (cgroups/resources.py)
and the hooks; ``process_of`` gives the ``process.enter`` spec of an ``exec --process`` file.
What the spec asks and the library cannot do is refused with a ConfigError naming the field:
a container that silently does less than its config says (a missing user namespace, a deny
rule dropped) would be worse than a clear error.

Mounts: /proc, /dev (tmpfs), /dev/pts, /dev/shm, /dev/mqueue, /sys and /sys/fs/cgroup are what
every container gets from mounts.py, so the bundle's entries for them are taken as that (a tmpfs
at /dev/shm gives its size; a bind at one of them is made as written). Binds and tmpfs elsewhere
are the container's user mounts, in the bundle's order.
"""
from __future__ import annotations

import json
import os
import re

from ..errors import ConfigError
from ..launch import caps, devices, mounts
from ..launch import seccomp as seccomp_profiles
from ..launch.spec import Launch
from ..cgroups.resources import DeviceRule

HOOK_KINDS = ('prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop')
# OCI namespace type -> the library's (process.NS_TYPES)
NAMESPACES = {'pid': 'pid', 'network': 'net', 'mount': 'mnt', 'ipc': 'ipc', 'uts': 'uts', 'cgroup': 'cgroup'}
# Mounted by mounts.py in every container: the bundle's entries at these are taken as those.
BUILTIN_MOUNTS = {'/proc': ('proc',), '/dev': ('tmpfs',), '/dev/pts': ('devpts',), '/dev/shm': ('tmpfs', 'shm'),
                  '/dev/mqueue': ('mqueue',), '/sys': ('sysfs',), '/sys/fs/cgroup': ('cgroup', 'cgroup2')}
# Mount options that are about how a filesystem's content comes to be, not flags: podman's tmpfs copy-up
# (crun's extension; the container's own directory is mounted empty here) and SELinux relabelling.
IGNORED_MOUNT_OPTIONS = ('tmpcopyup', 'notmpcopyup', 'z', 'Z', 'U', 'copy', 'nocopy')
# runc's AllowedDevices: what every container may use whatever its rules say (/dev/null and friends, ptys, tun).
_RLIMIT = re.compile(r'^RLIMIT_([A-Z]+)\Z')
_SIZE_OPTION = re.compile(r'^size=(\d+)([kmg]?)\Z')
DEFAULT_UMASK = 0o022  # runc's when process.user.umask is not given


def load(bundle):
    """The bundle's config.json, parsed; ConfigError naming the file when it is missing or not JSON."""
    path = os.path.join(bundle, 'config.json')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except OSError as exc:
        raise ConfigError.from_oserror('read', 'the bundle config %s' % path, exc) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError('parse', 'the bundle config %s' % path, 'not JSON: %s' % exc, path=path) from None
    if not isinstance(data, dict):
        raise ConfigError('parse', 'the bundle config %s' % path, 'a JSON object is needed', path=path)
    return data


def _dict(value, what):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError('use', what, 'an object is needed, not %r' % (value,))
    return value


def _list(value, what):
    if value is None:
        return []
    if not isinstance(value, list):
        raise ConfigError('use', what, 'a list is needed, not %r' % (value,))
    return value


def _int(value, what, low=None):
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        raise ConfigError('use', what, 'a whole number%s is needed, not %r' % ('' if low is None else ' from %d' % low, value))
    return value


# -- process ---------------------------------------------------------------------------------------
def _capabilities(value, uid):
    """OCI's five sets -> the library's one set (the bounding set; root gets it as effective and
    permitted, as Docker does). Sets that differ otherwise cannot be expressed: refused. Ambient
    capabilities change nothing for root (it has them all effective); for another user they are refused."""
    value = _dict(value, 'process.capabilities')
    bounding = value.get('bounding')
    if bounding is None:
        bounding = value.get('permitted') or value.get('effective') or []
    names = caps.normalise(_list(bounding, 'process.capabilities.bounding'), 'process.capabilities.bounding')
    for key in ('effective', 'permitted'):
        other = value.get(key)
        if other is not None and set(caps.normalise(_list(other, 'process.capabilities.' + key), 'process.capabilities.' + key)) - set(names):
            raise ConfigError('use', 'process.capabilities.%s' % key, 'capabilities outside the bounding set are not supported')
    if value.get('ambient') and uid != 0:
        raise ConfigError('use', 'process.capabilities.ambient', 'ambient capabilities are not supported by nsbox')
    return list(names)


def _rlimits(value):
    out = []
    for item in _list(value, 'process.rlimits'):
        item = _dict(item, 'process.rlimits[]')
        match = _RLIMIT.match(str(item.get('type')))
        if not match:
            raise ConfigError('use', 'rlimit %r' % (item,), 'type is RLIMIT_<NAME>')
        soft, hard = (_int(item.get(k), 'rlimit %s %s' % (item['type'], k), 0) for k in ('soft', 'hard'))
        # 2^64-1 is RLIM_INFINITY in the spec's unsigned form; the library writes -1.
        out.append({'name': match.group(1).lower(), 'soft': -1 if soft >= 1 << 63 else soft, 'hard': -1 if hard >= 1 << 63 else hard})
    return out


def process_of(proc, what='process'):
    """OCI's ``process`` object -> the keys of a process spec that start and enter share."""
    proc = _dict(proc, what)
    args = proc.get('args')
    if not isinstance(args, list) or not args:
        raise ConfigError('use', what + '.args', 'a non-empty list of strings is needed')
    user = _dict(proc.get('user'), what + '.user')
    if user.get('username'):
        raise ConfigError('use', what + '.user.username', 'give uid and gid (Windows only)')
    out = {
        'args': list(args), 'env': _list(proc.get('env'), what + '.env'), 'cwd': proc.get('cwd') or '/',
        'user': {'uid': _int(user.get('uid', 0), what + '.user.uid', 0), 'gid': _int(user.get('gid', 0), what + '.user.gid', 0),
                 'additional_gids': [_int(g, what + '.user.additionalGids[]', 0) for g in _list(user.get('additionalGids'), what)]},
        'capabilities': _capabilities(proc.get('capabilities'), user.get('uid', 0)), 'no_new_privs': bool(proc.get('noNewPrivileges')),
        'rlimits': _rlimits(proc.get('rlimits')),
        'umask': DEFAULT_UMASK if user.get('umask') is None else _int(user['umask'], what + '.user.umask', 0),
        'terminal': bool(proc.get('terminal')),
    }
    for key in ('apparmorProfile', 'selinuxLabel'):
        if proc.get(key):
            raise ConfigError('use', '%s.%s' % (what, key), 'not supported by nsbox (it applies neither AppArmor nor SELinux)')
    if proc.get('oomScoreAdj') is not None:
        out['oom_score_adj'] = _int(proc['oomScoreAdj'], what + '.oomScoreAdj')
    if proc.get('ioPriority') or proc.get('scheduler'):
        raise ConfigError('use', what, 'ioPriority and scheduler are not supported by nsbox')
    return out


# -- mounts ----------------------------------------------------------------------------------------
def _shm_size(options):
    for option in options:
        match = _SIZE_OPTION.match(option)
        if match:
            return int(match.group(1)) << {'': 0, 'k': 10, 'm': 20, 'g': 30}[match.group(2)]
    return None


def _mounts(items, bundle):
    """(user mounts for the library, shm size or None)."""
    out, shm = [], None
    for index, item in enumerate(_list(items, 'mounts')):
        what = 'mounts[%d]' % index
        item = _dict(item, what)
        target = item.get('destination')
        if not isinstance(target, str) or not target.startswith('/'):
            raise ConfigError('use', what + '.destination', 'an absolute path in the container is needed, not %r' % (target,))
        target = os.path.normpath(target)
        options = [o for o in _list(item.get('options'), what + '.options') if o not in IGNORED_MOUNT_OPTIONS]
        kind = item.get('type') or ''
        if 'bind' in options or 'rbind' in options or kind == 'bind':
            source = item.get('source')
            if not isinstance(source, str) or not source:
                raise ConfigError('use', what + '.source', 'a bind mount needs a source')
            out.append({'type': 'bind', 'source': os.path.join(bundle, source), 'target': target, 'readonly': False,
                        'options': [o for o in options if o not in ('bind', 'rbind')] + (['rbind'] if 'rbind' in options else ['bind'])})
        elif target in BUILTIN_MOUNTS and kind in BUILTIN_MOUNTS[target]:
            if target == '/dev/shm':
                shm = _shm_size(options)
        elif kind == 'tmpfs':
            out.append({'type': 'tmpfs', 'source': item.get('source') or 'tmpfs', 'target': target, 'readonly': False, 'options': options})
        else:
            raise ConfigError('use', '%s (%s at %s)' % (what, kind or 'no type', target),
                              'nsbox mounts bind and tmpfs mounts (and proc, sysfs, devpts, mqueue, cgroup at their usual places)')
        if out and out[-1]['target'] == target:
            mounts.parse_options(out[-1]['type'], out[-1]['options'])  # checked now: a bad option is the bundle's error
    return out, shm


# -- linux -----------------------------------------------------------------------------------------
def _namespaces(items, has_mappings):
    out = {}
    for item in _list(items, 'linux.namespaces'):
        item = _dict(item, 'linux.namespaces[]')
        kind, path = item.get('type'), item.get('path') or None
        if kind == 'user':
            raise ConfigError('use', 'a user namespace (linux.namespaces)', 'user namespaces are not supported by this version of nsbox')
        if kind == 'time':
            raise ConfigError('use', 'a time namespace (linux.namespaces)', 'not supported by this version of nsbox')
        if kind not in NAMESPACES:
            raise ConfigError('use', 'namespace type %r' % (kind,), 'known: %s' % ', '.join(NAMESPACES))
        if kind == 'mount' and path:
            raise ConfigError('use', 'the mount namespace %s' % path, 'joining a mount namespace is not supported (a container gets its own)')
        out[NAMESPACES[kind]] = path
    if has_mappings:
        raise ConfigError('use', 'linux.uidMappings/gidMappings', 'user namespaces are not supported by this version of nsbox')
    return out


def _devices(items):
    """linux.devices as the library's device nodes (mounts.check_devices); ``u`` is a character device,
    a FIFO (``p``) is refused."""
    out = []
    for item in _list(items, 'linux.devices'):
        item = _dict(item, 'linux.devices[]')
        kind = {'c': 'c', 'u': 'c', 'b': 'b'}.get(item.get('type'))
        path = item.get('path')
        if kind is None or not isinstance(path, str):
            raise ConfigError('use', 'linux.devices entry %r' % (item,), 'a device is {path, type (c, u or b), major, minor, fileMode, uid, gid}')
        mode = item.get('fileMode')
        node = {'container': path, 'host': path, 'type': kind, 'major': item.get('major'), 'minor': item.get('minor'),
                'mode': 0o666 if mode is None else mode, 'uid': item.get('uid') or 0, 'gid': item.get('gid') or 0}
        out.extend(mounts.check_devices([node]))
    return out


def _device_rules(items):
    """OCI's allow/deny list -> the library's allow rules (default deny). The usual form is a deny of
    everything, then allows; a deny after an allow cannot be written as allows only: refused."""
    rules = []
    for index, item in enumerate(_list(items, 'linux.resources.devices')):
        item = _dict(item, 'linux.resources.devices[%d]' % index)
        kind = item.get('type') or 'a'
        major, minor = item.get('major'), item.get('minor')
        text = '%s %s:%s %s' % (kind, '*' if major in (None, -1) else major, '*' if minor in (None, -1) else minor, item.get('access') or 'rwm')
        if item.get('allow'):
            rules.append(DeviceRule.parse(text))
        elif rules or kind != 'a' or set(item.get('access') or 'rwm') != set('rwm'):
            raise ConfigError('use', 'linux.resources.devices[%d] (deny %s)' % (index, text),
                              'only a leading deny of all devices is supported (nsbox writes allow rules on a default deny)')
    return [DeviceRule.parse(r) for r in devices.DEFAULT_RULES] + [r for r in rules if str(r) not in devices.DEFAULT_RULES]


def resources_options(res):
    """OCI's linux.resources -> cgroup options as Resources.from_options takes them (bytes, cpus, ...)."""
    res = _dict(res, 'linux.resources')
    out = {}
    memory = _dict(res.get('memory'), 'linux.resources.memory')
    for key, name in (('limit', 'memory'), ('reservation', 'memory_reservation'), ('swap', 'memory_swap')):
        if memory.get(key) is not None:
            out[name] = -1 if memory[key] < 0 else memory[key]
    cpu = _dict(res.get('cpu'), 'linux.resources.cpu')
    if cpu.get('shares'):
        out['cpu_shares'] = cpu['shares']
    if cpu.get('quota') and cpu['quota'] > 0:
        out['cpu_period'] = cpu.get('period') or 100000
        out['cpus'] = cpu['quota'] / out['cpu_period']
    for key, name in (('cpus', 'cpuset_cpus'), ('mems', 'cpuset_mems')):
        if cpu.get(key):
            out[name] = cpu[key]
    pids = _dict(res.get('pids'), 'linux.resources.pids')
    if pids.get('limit') is not None:
        out['pids_limit'] = pids['limit'] if pids['limit'] > 0 else -1
    blkio = _dict(res.get('blockIO'), 'linux.resources.blockIO')
    if blkio.get('weight'):
        out['blkio_weight'] = blkio['weight']
    for key, name in (('throttleReadBpsDevice', 'device_read_bps'), ('throttleWriteBpsDevice', 'device_write_bps'),
                      ('throttleReadIOPSDevice', 'device_read_iops'), ('throttleWriteIOPSDevice', 'device_write_iops')):
        if blkio.get(key):
            out[name] = [{'path': '%d:%d' % (d['major'], d['minor']), 'rate': d['rate']} for d in blkio[key]]
    if res.get('devices') is not None:
        out['devices'] = _device_rules(res['devices'])
    unsupported = sorted(set(res) - {'memory', 'cpu', 'pids', 'blockIO', 'devices'})
    unsupported = [k for k in unsupported if res[k]]
    if unsupported:
        raise ConfigError('use', 'linux.resources %s' % ', '.join(unsupported), 'not supported by this version of nsbox')
    return out


def cgroup_path(linux, container_id, systemd=False):
    """(path, driver) of the container's cgroup: linux.cgroupsPath (systemd's 'slice:prefix:name' form with
    --systemd-cgroup, as runc), else /nsbox-oci/<id> (nsbox's own containers are under /nsbox)."""
    path = linux.get('cgroupsPath')
    if systemd:
        if not path:
            return 'system.slice/nsbox-oci-%s' % container_id, 'systemd'
        parts = path.split(':')
        if len(parts) != 3:
            raise ConfigError('use', 'linux.cgroupsPath %r' % path, 'with --systemd-cgroup it is "slice:prefix:name"')
        return '%s/%s-%s' % (parts[0] or 'system.slice', parts[1], parts[2]), 'systemd'
    return (path if path else '/nsbox-oci/%s' % container_id), 'cgroupfs'


def _hooks(value):
    out = {}
    for kind, items in _dict(value, 'hooks').items():
        if kind not in HOOK_KINDS:
            raise ConfigError('use', 'hooks.%s' % kind, 'known hooks: %s' % ', '.join(HOOK_KINDS))
        out[kind] = []
        for index, hook in enumerate(_list(items, 'hooks.' + kind)):
            hook = _dict(hook, 'hooks.%s[%d]' % (kind, index))
            if not isinstance(hook.get('path'), str) or not hook['path'].startswith('/'):
                raise ConfigError('use', 'hooks.%s[%d].path' % (kind, index), 'an absolute path is needed')
            out[kind].append({'path': hook['path'], 'args': _list(hook.get('args'), 'hooks args') or [hook['path']],
                              'env': _list(hook.get('env'), 'hooks env'), 'timeout': hook.get('timeout')})
    # prestart (deprecated) runs where createRuntime does, before it (runc's order).
    out['createRuntime'] = out.pop('prestart', []) + out.get('createRuntime', [])
    return out


def translate(config, bundle, container_id, systemd_cgroup=False):
    """config.json (parsed) -> {'spec': process.start's Launch, 'cgroup': (path, driver), 'resources': options, 'hooks': {...}}."""
    if not str(config.get('ociVersion', '')).startswith('1.'):
        raise ConfigError('use', 'ociVersion %r' % (config.get('ociVersion'),), 'nsbox runs bundles of OCI runtime spec 1.x')
    root = _dict(config.get('root'), 'root')
    if not root.get('path'):
        raise ConfigError('use', 'root.path', 'the bundle names no root filesystem')
    rootfs = os.path.join(bundle, root['path'])
    linux = _dict(config.get('linux'), 'linux')
    proc = process_of(config.get('process'))
    ns = _namespaces(linux.get('namespaces'), bool(linux.get('uidMappings') or linux.get('gidMappings')))
    user_mounts, shm = _mounts(config.get('mounts'), bundle)
    profile = None
    if linux.get('seccomp'):
        profile = seccomp_profiles.parse_profile(linux['seccomp'], 'linux.seccomp')
    spec = dict(proc, rootfs=rootfs, readonly_rootfs=bool(root.get('readonly')), namespaces=ns,
                hostname=config.get('hostname') or None, loopback='net' in ns and ns['net'] is None,
                mounts=user_mounts, shm_size=shm, seccomp=profile, sysctls=dict(_dict(linux.get('sysctl'), 'linux.sysctl')),
                masked_paths=list(_list(linux.get('maskedPaths'), 'linux.maskedPaths')),
                readonly_paths=list(_list(linux.get('readonlyPaths'), 'linux.readonlyPaths')),
                devices=_devices(linux.get('devices')), init=None)
    if spec['hostname'] and ns.get('uts', 0) is not None:
        spec['hostname'] = None  # the spec allows a hostname without a uts namespace of its own; nothing to set then
    propagation = linux.get('rootfsPropagation')
    if propagation not in (None, '', 'private', 'rprivate', 'slave', 'rslave'):
        raise ConfigError('use', 'linux.rootfsPropagation %r' % propagation, 'nsbox keeps the container\'s mounts from the host: private or slave')
    for key in ('intelRdt', 'personality', 'mountLabel', 'timeOffsets'):
        if linux.get(key):
            raise ConfigError('use', 'linux.%s' % key, 'not supported by this version of nsbox')
    plan = {'cgroup': cgroup_path(linux, container_id, systemd_cgroup), 'resources': resources_options(linux.get('resources')),
            'hooks': _hooks(config.get('hooks')), 'annotations': _dict(config.get('annotations'), 'annotations')}
    return dict(plan, spec=Launch.of(spec))  # every field checked here, once (launch/spec.py)
