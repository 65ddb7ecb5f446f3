# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The list of the library's own source files, the imports that ship them, their digest, and the switch
that makes a module's payload import the installed tree.

Ansible packs into a module's payload only the module_utils it can see imported.
The imports in ``_ship`` make it pack every file of the library, so any module can
install the host-side tree (DESIGN D1) from its own payload. A unit test keeps MODULES
equal to the files on disk, so a new file cannot be left out.

This file imports nothing of the library: a module run uses it before the switch.
"""
from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import sys
import zipimport

LIB_DIR = '/usr/local/lib/nsbox'  # where the library is installed (install.py)
PACKAGE = 'nsbox_runtime'  # its name there


def source_digest(read):
    """sha256 over every library file's name and source (``read(name)``: bytes): the installed tree's name."""
    h = hashlib.sha256()
    for name in sorted(MODULES):
        data = read(name)
        h.update(b'%s\0%d\0' % (name.encode(), len(data)))
        h.update(data)
    return h.hexdigest()


def tree_digest(root):
    """The source digest of the tree installed at ``root``, or None when a file is missing or unreadable."""
    def read(name):
        with open(os.path.join(root, PACKAGE, name + '.py'), 'rb') as f:
            return f.read()
    try:
        return source_digest(read)
    except OSError:
        return None


class _Installed:
    """Answers imports of the payload's library (``prefix`` and below) with the same modules of the installed tree."""

    def __init__(self, prefix):
        self.prefix, self.specs = prefix, {}

    def find_spec(self, name, path=None, target=None):  # pylint: disable=unused-argument
        if name.startswith(self.prefix + '.'):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(PACKAGE + spec.name[len(self.prefix):])
        self.specs[module.__name__] = module.__spec__  # importlib overwrites it with the alias's spec: put back below
        return module

    def exec_module(self, module):
        module.__spec__ = self.specs.pop(module.__name__, module.__spec__)


def _safe(path):
    """Nobody but root or this user can change ``path`` (root imports what is in it)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return st.st_uid in (0, os.geteuid()) and not st.st_mode & 0o022


def use_installed(prefix, version, lib_dir=LIB_DIR):
    """In a module's payload (``prefix``: the library's name there): when this very library (same digest) is
    installed on the host, the rest of it is imported from that tree, compiled at install, instead of being
    compiled from the payload on every run. Returns the tree's path, or None (nothing changed)."""
    package = sys.modules.get(prefix)
    if PACKAGE in sys.modules or type(getattr(package, '__loader__', None)) is not zipimport.zipimporter:  # pylint: disable=unidiomatic-typecheck
        return None
    try:
        digest = source_digest(lambda name: package.__loader__.get_data(os.path.join(package.__path__[0], name + '.py')))
    except (OSError, ImportError):
        return None
    root = os.path.join(lib_dir, '%s-%s' % (version, digest[:12]))
    if not all(_safe(p) for p in (lib_dir, root, os.path.join(root, PACKAGE))) or tree_digest(root) != digest:
        return None
    spec = importlib.machinery.PathFinder.find_spec(PACKAGE, [root])
    if spec is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    sys.meta_path.insert(0, _Installed(prefix))
    return root


def _ship():  # pragma: no cover - never called
    """Ansible packs the module_utils it sees imported anywhere in a file, in a function body
    that never runs too: these imports put the whole library in every module's payload
    without a module run importing (and, from a payload, compiling) all of it."""
    # pylint: disable=unused-import,import-outside-toplevel
    from . import errors, usage, version  # noqa: F401
    from .cgroups import devices as cgroups_devices, factory, layout, manager, mapping, resources, systemd, v1, v2  # noqa: F401
    from .cli import main, oci, run, term, views  # noqa: F401
    from .container import assemble, converge, execute, exits, health, idranges, info, logs, monitor, options, order, parse, policy  # noqa: F401
    from .container import prechecks, pull, runner, security, spec as container_spec, store as container_store, supervisor, unit, users  # noqa: F401
    from .host import config, dataroot, hostinfo, hostsetup, install, kmods, sysctls  # noqa: F401
    from .image import archive, images, ingest, layer, manifest, reference, registry, rootfs, store as image_store  # noqa: F401
    from .kernel import fsutil, idmap, mountinfo, namespaces, signals, syscall, units, userns  # noqa: F401
    from .launch import barrier, caps, devices as launch_devices, mounts, process, seccomp, spec as launch_spec  # noqa: F401
    from .named import cgroup, namespace, store as named_store  # noqa: F401
    from .network import etc_files, links, netns, networks, nft, store as network_store  # noqa: F401
    from .oci import runtime, spec as oci_spec  # noqa: F401
    from .volume import copyup, store as volume_store, volumes  # noqa: F401


MODULES = (
    '__init__',
    'bundle',
    'cgroups/__init__',
    'cgroups/devices',
    'cgroups/factory',
    'cgroups/layout',
    'cgroups/manager',
    'cgroups/mapping',
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
    'container/info',
    'container/logs',
    'container/monitor',
    'container/options',
    'container/order',
    'container/parse',
    'container/policy',
    'container/prechecks',
    'container/pull',
    'container/runner',
    'container/security',
    'container/spec',
    'container/store',
    'container/supervisor',
    'container/unit',
    'container/users',
    'errors',
    'host/__init__',
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
    'kernel/signals',
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
    'launch/spec',
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
