# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which cgroup hierarchies a host has, where they are mounted, and the manager for a path.

``v2``: one cgroup2 tree at /sys/fs/cgroup. ``hybrid``: v1 controller hierarchies plus a
cgroup2 tree (at ``unified/``) that holds no controller we manage: every controller is v1
there, as runc does it, and the cgroup2 tree is only joined (it carries the device program
and ``cgroup.kill`` when the kernel has them). ``v1``: v1 only.
"""
from __future__ import annotations

import os

from ..kernel import mountinfo, syscall
from ..errors import CgroupError, NsboxError

# v1 controllers a manager creates its cgroup in (cpuacct for usage statistics).
V1_CONTROLLERS = ('memory', 'cpu', 'cpuacct', 'cpuset', 'pids', 'blkio', 'devices', 'freezer')


def parse_mountinfo(text):
    """cgroup mounts from /proc/<pid>/mountinfo: [(mount point, fstype, super options)]."""
    return [(m.mount_point, m.fstype, m.super_options) for m in mountinfo.parse(text) if m.fstype in ('cgroup', 'cgroup2')]


class Layout:
    """The host's hierarchies: ``mode``, ``unified`` (cgroup2 mount point or None), ``v1`` {controller: mount point}."""

    def __init__(self, mode, unified=None, v1=None):
        self.mode = mode
        self.unified = unified
        self.v1 = dict(v1 or {})

    @classmethod
    def detect(cls, cgroup_root='/sys/fs/cgroup', mountinfo='/proc/self/mountinfo', fs_type=syscall.statfs_type):
        try:
            with open(mountinfo) as f:
                mounts = parse_mountinfo(f.read())
        except OSError as exc:
            raise CgroupError.from_oserror('read', 'the mount table', exc)
        try:
            root_type = fs_type(cgroup_root)
        except NsboxError as exc:
            raise CgroupError('find', 'the cgroup hierarchy', exc.cause, path=cgroup_root)
        if root_type == 'cgroup2':
            return cls('v2', unified=cgroup_root)
        v1, unified = {}, None
        for point, fstype, opts in mounts:
            if fstype == 'cgroup2':
                if point.startswith(cgroup_root + '/') and unified is None:
                    unified = point
            else:
                for opt in opts:
                    if opt in V1_CONTROLLERS and opt not in v1:
                        v1[opt] = point
        if not v1:
            if unified:
                return cls('v2', unified=unified)
            raise CgroupError('find', 'the cgroup hierarchy', 'no cgroup filesystem is mounted under %s' % cgroup_root)
        return cls('hybrid' if unified else 'v1', unified=unified, v1=v1)

    def to_dict(self):
        return {'mode': self.mode, 'unified': self.unified, 'v1': dict(self.v1)}


def clean_path(path):
    """'/nsbox/web' from 'nsbox/web/' and the like; refuses '..' and empty names."""
    parts = [p for p in str(path).split('/') if p not in ('', '.')]
    if not parts or '..' in parts:
        raise CgroupError('use', 'cgroup path %r' % (path,), 'a cgroup path names a cgroup below the root, without ".."')
    return '/' + '/'.join(parts)


def systemd_booted(run_dir='/run/systemd/system'):
    """sd_booted(3): systemd is PID 1 exactly when this directory exists."""
    return os.path.isdir(run_dir)


def resolve_driver(configured, mode, booted):
    """The host config's ``cgroup_driver`` ('auto', 'cgroupfs', 'systemd') for this host: auto is
    systemd on a v2 host that systemd booted (systemd owns that tree), cgroupfs everywhere else."""
    if configured == 'auto':
        return 'systemd' if booted and mode == 'v2' else 'cgroupfs'
    return configured


def default_parent(driver):
    """D4: containers go under ``nsbox.slice`` (systemd) or ``/nsbox`` (cgroupfs)."""
    return 'nsbox.slice' if driver == 'systemd' else '/nsbox'
