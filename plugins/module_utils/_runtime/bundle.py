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
    from . import errors, usage, version  # noqa: F401
    from .cgroups import devices as cgroups_devices, factory, layout, manager, resources, systemd, v1, v2  # noqa: F401
    from .cli import main, oci, run, term, views  # noqa: F401
    from .container import assemble, converge, execute, exits, health, idranges, logs, monitor, options, order, policy, runner, security  # noqa: F401
    from .container import store as container_store, supervisor, unit, users  # noqa: F401
    from .host import codecache, config, dataroot, hostinfo, hostsetup, install, kmods, sysctls  # noqa: F401
    from .image import archive, images, ingest, layer, manifest, reference, registry, rootfs, store as image_store  # noqa: F401
    from .kernel import fsutil, idmap, mountinfo, namespaces, syscall, units, userns  # noqa: F401
    from .launch import barrier, caps, devices as launch_devices, mounts, process, seccomp  # noqa: F401
    from .named import cgroup, namespace, store as named_store  # noqa: F401
    from .network import etc_files, links, netns, networks, nft, store as network_store  # noqa: F401
    from .oci import runtime, spec  # noqa: F401
    from .volume import copyup, store as volume_store, volumes  # noqa: F401


MODULES = (
    '__init__',
    'bundle',
    'cgroups/__init__',
    'cgroups/devices',
    'cgroups/factory',
    'cgroups/layout',
    'cgroups/manager',
    'cgroups/resources',
    'cgroups/systemd',
    'cgroups/v1',
    'cgroups/v2',
    'cli/__init__',
    'cli/main',
    'cli/oci',
    'cli/run',
    'cli/term',
    'cli/views',
    'container/__init__',
    'container/assemble',
    'container/converge',
    'container/execute',
    'container/exits',
    'container/health',
    'container/idranges',
    'container/logs',
    'container/monitor',
    'container/options',
    'container/order',
    'container/policy',
    'container/runner',
    'container/security',
    'container/store',
    'container/supervisor',
    'container/unit',
    'container/users',
    'errors',
    'host/__init__',
    'host/codecache',
    'host/config',
    'host/dataroot',
    'host/hostinfo',
    'host/hostsetup',
    'host/install',
    'host/kmods',
    'host/sysctls',
    'image/__init__',
    'image/archive',
    'image/images',
    'image/ingest',
    'image/layer',
    'image/manifest',
    'image/reference',
    'image/registry',
    'image/rootfs',
    'image/store',
    'kernel/__init__',
    'kernel/fsutil',
    'kernel/idmap',
    'kernel/mountinfo',
    'kernel/namespaces',
    'kernel/syscall',
    'kernel/units',
    'kernel/userns',
    'launch/__init__',
    'launch/barrier',
    'launch/caps',
    'launch/devices',
    'launch/mounts',
    'launch/process',
    'launch/seccomp',
    'named/__init__',
    'named/cgroup',
    'named/namespace',
    'named/store',
    'network/__init__',
    'network/etc_files',
    'network/links',
    'network/netns',
    'network/networks',
    'network/nft',
    'network/store',
    'oci/__init__',
    'oci/runtime',
    'oci/spec',
    'usage',
    'version',
    'volume/__init__',
    'volume/copyup',
    'volume/store',
    'volume/volumes',
)
