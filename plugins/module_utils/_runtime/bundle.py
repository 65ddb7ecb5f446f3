# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The list of the library's own source files, and the imports that ship them.

Ansible packs into a module's payload only the module_utils it can see imported.
Importing this module pulls in every file of the library, so any module can build
the host-side zipapp (DESIGN D1) from its own payload. A unit test keeps MODULES
equal to the files on disk, so a new file cannot be left out.
"""
from __future__ import annotations

# pylint: disable=unused-import
from . import cli, cli_views, config, errors, fsutil, hostinfo, hostsetup, install, mountinfo, rootfs, syscall, units, version  # noqa: F401
from . import idmap, namespace_service, namespaces  # noqa: F401
from .container import caps, devices as container_devices, health, logs, monitor, mounts, options, policy, process, runner, seccomp, security  # noqa: F401
from .container import service as container_service, store as container_store, supervisor, users  # noqa: F401
from .cgroups import devices, layout, manager, resources, service as cgroup_service, systemd, v1, v2  # noqa: F401
from .image import archive, ingest, layer, manifest, reference, registry, service, store  # noqa: F401
from .volume import copyup, service as volume_service, store as volume_store  # noqa: F401
from .network import etc_files, links, netns, nft, service as network_service, store as network_store  # noqa: F401

MODULES = (
    '__init__',
    'bundle',
    'cgroups/__init__',
    'cgroups/devices',
    'cgroups/layout',
    'cgroups/manager',
    'cgroups/resources',
    'cgroups/service',
    'cgroups/systemd',
    'cgroups/v1',
    'cgroups/v2',
    'cli',
    'cli_views',
    'config',
    'container/__init__',
    'container/caps',
    'container/devices',
    'container/health',
    'container/logs',
    'container/monitor',
    'container/mounts',
    'container/options',
    'container/policy',
    'container/process',
    'container/runner',
    'container/seccomp',
    'container/security',
    'container/service',
    'container/store',
    'container/supervisor',
    'container/users',
    'errors',
    'fsutil',
    'hostinfo',
    'hostsetup',
    'idmap',
    'image/__init__',
    'image/archive',
    'image/ingest',
    'image/layer',
    'image/manifest',
    'image/reference',
    'image/registry',
    'image/service',
    'image/store',
    'install',
    'mountinfo',
    'namespace_service',
    'namespaces',
    'network/__init__',
    'network/etc_files',
    'network/links',
    'network/netns',
    'network/nft',
    'network/service',
    'network/store',
    'rootfs',
    'syscall',
    'units',
    'version',
    'volume/__init__',
    'volume/copyup',
    'volume/service',
    'volume/store',
)
