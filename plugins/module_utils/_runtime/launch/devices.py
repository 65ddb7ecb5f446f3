# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's devices: the cgroup allow list every container gets, and the ``devices`` option.

Every container's cgroup denies all device access but runc's (and Docker's) standard list:
mknod of any device (``c *:* m``, ``b *:* m``: making a node is harmless when opening it is
refused), the pseudo devices, ttys, ptys and tun. The cgroup layer enforces the rules (v1: the
devices controller; v2: an eBPF program; systemd: DevicePolicy + DeviceAllow), so an image that
carries a disk node (or a container that mknods one) still cannot open it.

``devices: [/dev/fuse, /dev/sdb:/dev/xvdb:r]`` passes host devices, as Docker's ``--device``:
the node is made in the container with the host node's type, numbers and mode, and allowed in the
cgroup with the given permissions. ``privileged`` allows every device and gets the host's /dev nodes.
"""
from __future__ import annotations

import os
import stat

from ..cgroups.resources import DeviceRule
from ..errors import ConfigError

# runc's AllowedDevices (libcontainer/specconv), which Docker's default spec repeats.
DEFAULT_RULES = (
    'c *:* m', 'b *:* m',
    'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm',  # null, zero, full, random, urandom
    'c 5:0 rwm', 'c 5:1 rwm', 'c 5:2 rwm',  # tty, console, ptmx
    'c 136:* rwm',  # the ptys of /dev/pts
    'c 10:200 rwm',  # tun
)
ALL_RULES = ('a *:* rwm',)
PERMISSIONS = set('rwm')
# /dev entries a privileged container does not take from the host: its own mounts and standard nodes.
_HOST_DEV_SKIP = ('pts', 'shm', 'mqueue', 'console', 'null', 'zero', 'full', 'random', 'urandom', 'tty', 'ptmx', 'fd', 'core',
                  'stdin', 'stdout', 'stderr', 'init')


def _node(path, what):
    """(type 'c'|'b', major, minor, mode bits, uid, gid) of the device node at ``path`` on this host."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise ConfigError('use', what, exc.strerror, path=path, errno=exc.errno) from None
    if stat.S_ISCHR(st.st_mode):
        kind = 'c'
    elif stat.S_ISBLK(st.st_mode):
        kind = 'b'
    else:
        raise ConfigError('use', what, '%s is not a character or block device (directories of devices are not supported)' % path)
    return kind, os.major(st.st_rdev), os.minor(st.st_rdev), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def parse_device(text, index):
    """Docker's ``--device`` forms -> the stored entry, the host node read now (as a seccomp profile file is:
    a changed device is a changed config). ``HOST``, ``HOST:CONTAINER``, ``HOST:PERMS``, ``HOST:CONTAINER:PERMS``."""
    text = str(text).strip()
    what = 'devices[%d] %r' % (index, text)
    parts = text.split(':')
    if len(parts) == 2 and parts[1] and not parts[1].startswith('/') and set(parts[1]) <= PERMISSIONS:
        parts = [parts[0], parts[0], parts[1]]  # HOST:PERMS
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise ConfigError('use', what, 'expected /dev/HOST, /dev/HOST:/dev/CONTAINER or /dev/HOST:/dev/CONTAINER:PERMS (PERMS of r, w, m)')
    host = parts[0]
    container = parts[1] if len(parts) > 1 else host
    permissions = parts[2] if len(parts) > 2 else 'rwm'
    if not host.startswith('/') or not container.startswith('/'):
        raise ConfigError('use', what, 'the host and container paths are absolute')
    if set(permissions) - PERMISSIONS:
        raise ConfigError('use', what, 'permissions are a combination of r, w and m, not %r' % permissions)
    kind, major, minor, mode, uid, gid = _node(host, what)
    container = os.path.normpath(container)
    if container in ('/', '/dev') or not container.startswith('/dev/') or container.startswith(('/dev/pts/', '/dev/shm/', '/dev/mqueue/')):
        raise ConfigError('use', what, 'the container path is a node under /dev (not /dev/pts, /dev/shm or /dev/mqueue)')
    return {'host': os.path.normpath(host), 'container': container, 'permissions': ''.join(c for c in 'rwm' if c in permissions),
            'type': kind, 'major': major, 'minor': minor, 'mode': mode, 'uid': uid, 'gid': gid}


def parse(items):
    """The ``devices`` option -> stored entries; one container path once."""
    out = [parse_device(item, i) for i, item in enumerate(items or ())]
    paths = [d['container'] for d in out]
    dup = sorted({p for p in paths if paths.count(p) > 1})
    if dup:
        raise ConfigError('use', 'devices', 'more than one device at %s' % ', '.join(dup))
    return out


def cgroup_rules(config):
    """The container's device allow list (DeviceRules) from its stored config."""
    if config.get('privileged'):
        return [DeviceRule.parse(r) for r in ALL_RULES]
    out = [DeviceRule.parse(r) for r in DEFAULT_RULES]
    for dev in config.get('devices') or ():
        same = [i for i, r in enumerate(out) if (r.kind, r.major, r.minor) == (dev['type'], dev['major'], dev['minor'])]
        if same:  # one rule per device, its access the union (the v1 controller merges them so, and reads back one)
            out[same[0]] = DeviceRule(dev['type'], dev['major'], dev['minor'], out[same[0]].access + dev['permissions'])
        else:
            out.append(DeviceRule(dev['type'], dev['major'], dev['minor'], dev['permissions']))
    return out


def host_nodes(dev='/dev'):
    """A privileged container's extra nodes: every character and block device under the host's ``dev``
    (Docker's HostDevices), but the container's own standard ones and mounts."""
    out = []
    for dirpath, dirnames, filenames in os.walk(dev):
        rel = os.path.relpath(dirpath, dev)
        if rel == '.':
            dirnames[:] = [d for d in dirnames if d not in _HOST_DEV_SKIP]
        for name in sorted(filenames):
            path = os.path.join(dirpath, name)
            if rel == '.' and name in _HOST_DEV_SKIP:
                continue
            try:
                st = os.lstat(path)
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out.append({'container': path if dev == '/dev' else '/dev/' + os.path.relpath(path, dev),
                            'type': 'c' if stat.S_ISCHR(st.st_mode) else 'b', 'major': os.major(st.st_rdev),
                            'minor': os.minor(st.st_rdev), 'mode': stat.S_IMODE(st.st_mode), 'uid': st.st_uid, 'gid': st.st_gid,
                            'host': path})
    return sorted(out, key=lambda d: d['container'])


def process_nodes(config):
    """The nodes the container process makes in its /dev (process spec ``devices``)."""
    keys = ('container', 'type', 'major', 'minor', 'mode', 'uid', 'gid', 'host')
    nodes = host_nodes() if config.get('privileged') else []
    given = [{k: d[k] for k in keys} for d in config.get('devices') or ()]
    paths = {d['container'] for d in given}
    return [d for d in nodes if d['container'] not in paths] + given
