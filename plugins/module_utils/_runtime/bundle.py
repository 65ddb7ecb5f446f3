# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The list of the library's own source files, and the imports that ship them.

Ansible packs into a module's payload only the module_utils it can see imported.
The imports in ``_ship`` make it pack every file of the library, so any module can
build the host-side zipapp (DESIGN D1) from its own payload. A unit test keeps MODULES
equal to the files on disk, so a new file cannot be left out.
"""
from __future__ import annotations


def _ship():  # pragma: no cover - never called
    """Ansible packs the module_utils it sees imported anywhere in a file, in a function body
    that never runs too: these imports put the whole library in every module's payload
    without a module run importing (and, from a payload, compiling) all of it."""
    # pylint: disable=unused-import,import-outside-toplevel
    from . import cli, cli_run, cli_term, cli_views, codecache, config, errors, fsutil, hostinfo, hostsetup, idmap, install, kmods  # noqa: F401
    from . import mountinfo, namespace_service, namespaces, rootfs, syscall, sysctls, units, userns, version  # noqa: F401
    from .cgroups import devices as cgroups_devices, layout, manager, resources, service as cgroups_service, systemd, v1, v2  # noqa: F401
    from .container import barrier, caps, devices as container_devices, health, idranges, logs, monitor, mounts, options, policy  # noqa: F401
    from .container import process, runner, seccomp, security, service as container_service, store as container_store, supervisor, unit  # noqa: F401
    from .container import order, users  # noqa: F401
    from .image import archive, ingest, layer, manifest, reference, registry, service, store  # noqa: F401
    from .network import etc_files, links, netns, nft, service as network_service, store as network_store  # noqa: F401
    from .oci import cli as oci_cli, runtime, spec  # noqa: F401
    from .volume import copyup, service as volume_service, store as volume_store  # noqa: F401


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
    'cli_run',
    'cli_term',
    'cli_views',
    'codecache',
    'config',
    'container/__init__',
    'container/barrier',
    'container/caps',
    'container/devices',
    'container/health',
    'container/idranges',
    'container/logs',
    'container/monitor',
    'container/mounts',
    'container/options',
    'container/order',
    'container/policy',
    'container/process',
    'container/runner',
    'container/seccomp',
    'container/security',
    'container/service',
    'container/store',
    'container/supervisor',
    'container/unit',
    'container/users',
    'errors',
    'fsutil',
    'hostinfo',
    'hostsetup',
    'idmap',
    'kmods',
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
    'oci/__init__',
    'oci/cli',
    'oci/runtime',
    'oci/spec',
    'rootfs',
    'syscall',
    'sysctls',
    'units',
    'userns',
    'version',
    'volume/__init__',
    'volume/copyup',
    'volume/service',
    'volume/store',
)
