# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one factory of cgroup managers: v1, v2 or systemd, from the host's layout and the driver (DESIGN D4)."""
from __future__ import annotations

from ..errors import CgroupError
from .layout import Layout, clean_path, default_parent, resolve_driver, systemd_booted
from .systemd import SystemdManager
from .v1 import CgroupV1Manager
from .v2 import CgroupV2Manager


def manager_for(path, driver='cgroupfs', layout=None, booted=None):
    """The manager for cgroup ``path`` under this host's hierarchies and ``driver``."""
    layout = layout or Layout.detect()
    booted = systemd_booted() if booted is None else booted
    path = clean_path(path)
    if driver == 'systemd':
        if layout.mode != 'v2':
            raise CgroupError('use', 'the systemd cgroup driver', 'it needs a cgroup v2 host (this one is %s); use cgroupfs' % layout.mode)
        parts = path.strip('/').split('/')
        if len(parts) < 2:
            raise CgroupError('use', 'cgroup path %r' % path, 'under the systemd driver it is a slice and a name, e.g. nsbox.slice/web')
        return SystemdManager(parts[0], parts[1:], layout.unified)
    if driver != 'cgroupfs':
        raise CgroupError('use', 'cgroup driver %r' % (driver,), 'expected cgroupfs or systemd')
    if layout.mode == 'v2':
        # The root's subtree_control is written only where no systemd manages the tree (as runc does there).
        return CgroupV2Manager(path, layout.unified, may_enable_root=not booted)
    return CgroupV1Manager(path, layout)


def for_config(cfg, name, parent=None, layout=None):
    """The manager of cgroup ``name`` under ``parent`` (default: the host config's cgroup_parent, else D4's)."""
    layout = layout or Layout.detect()
    booted = systemd_booted()
    driver = resolve_driver(cfg['cgroup_driver'], layout.mode, booted)
    parent = parent or cfg['cgroup_parent'] or default_parent(driver)
    return manager_for(clean_path(parent) + clean_path(name), driver, layout, booted)
