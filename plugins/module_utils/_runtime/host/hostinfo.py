# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a host offers a container runtime: kernel, cgroups, overlay, systemd.

Readers take their /proc and /sys roots as parameters so they can be tested on
captured trees; :func:`gather` reads the live host.
"""
from __future__ import annotations

import os
import platform
import sys

from ..kernel import syscall
from ..cgroups.layout import resolve_driver, systemd_booted
from ..errors import SyscallError

OVERLAY_BACKING_FS = ('ext4', 'xfs', 'btrfs', 'tmpfs')


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return default


def cgroup_layout(cgroup_root='/sys/fs/cgroup', fs_type=syscall.statfs_type):
    """``v2`` (unified), ``hybrid`` (v1 controllers + a cgroup2 tree) or ``v1``."""
    try:
        root_type = fs_type(cgroup_root)
    except SyscallError:
        return 'none'
    if root_type == 'cgroup2':
        return 'v2'
    unified = os.path.join(cgroup_root, 'unified')
    try:
        if os.path.isdir(unified) and fs_type(unified) == 'cgroup2':
            return 'hybrid'
    except SyscallError:
        pass
    return 'v1'


def v1_controllers(proc_root='/proc'):
    """Enabled v1 controllers from /proc/cgroups (``#subsys_name hierarchy num_cgroups enabled``)."""
    out = []
    for line in (_read(os.path.join(proc_root, 'cgroups'), '') or '').splitlines():
        if line.startswith('#') or not line.strip():
            continue
        fields = line.split()
        if len(fields) >= 4 and fields[3] == '1' and fields[1] != '0':
            out.append(fields[0])
    return sorted(out)


def v2_controllers(unified_root):
    return sorted((_read(os.path.join(unified_root, 'cgroup.controllers'), '') or '').split())


def filesystems(proc_root='/proc'):
    """Filesystem types the kernel knows now (/proc/filesystems)."""
    return sorted(line.split()[-1] for line in (_read(os.path.join(proc_root, 'filesystems'), '') or '').splitlines() if line.strip())


def nearest_existing(path):
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def storage_check(data_root, overlay_available, fs_type=syscall.statfs_type):
    """The data-root's filesystem and which storage drivers can work on it."""
    probe = nearest_existing(data_root)
    try:
        backing = fs_type(probe)
    except SyscallError as exc:
        return {'backing_fs': None, 'overlay_usable': False, 'reason': exc.message, 'drivers': ['vfs']}
    if not overlay_available:
        reason = 'the kernel has no overlay filesystem (modprobe overlay)'
    elif backing not in OVERLAY_BACKING_FS:
        reason = 'overlay layers cannot live on %s (need one of %s)' % (backing, ', '.join(OVERLAY_BACKING_FS))
    else:
        reason = None
    return {'backing_fs': backing, 'overlay_usable': reason is None, 'reason': reason,
            'drivers': ['overlay', 'vfs'] if reason is None else ['vfs']}


def gather(config, proc_root='/proc', cgroup_root='/sys/fs/cgroup'):
    """Facts about the live host, for ``host`` and ``nsbox info``."""
    uname = os.uname()
    layout = cgroup_layout(cgroup_root)
    unified = cgroup_root if layout == 'v2' else os.path.join(cgroup_root, 'unified')
    fss = filesystems(proc_root)
    overlay = 'overlay' in fss or os.path.exists('/sys/module/overlay')
    booted = systemd_booted()
    driver = resolve_driver(config['cgroup_driver'], layout, booted)
    cgroup = {
        'version': layout,
        'driver': driver,
        # On hybrid hosts every controller is v1, as runc does; the cgroup2 tree is only joined.
        'controllers': v2_controllers(unified) if layout == 'v2' else v1_controllers(proc_root),
        'unified_controllers': v2_controllers(unified) if layout in ('v2', 'hybrid') else [],
    }
    return {
        'kernel': {'release': uname.release, 'version': uname.version, 'machine': uname.machine},
        'python': {'executable': sys.executable, 'version': platform.python_version()},
        'cgroup': cgroup,
        'systemd': booted,
        'overlay': overlay,
        'idmapped_mounts': syscall.kernel_has_syscall('mount_setattr'),
        'user_namespaces': (_read(os.path.join(proc_root, 'sys/user/max_user_namespaces'), '0') or '0').strip() not in ('', '0'),
        'storage': dict(storage_check(config.data_root, overlay), driver=config['storage_driver']),
        'data_root': config.data_root,
        'state_dir': config.state_dir,
    }
