# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's network namespace, made before its init (as podman makes it for CNI/netavark):
an empty file with the namespace bind-mounted on it (``namespaces.persist``, as ``ip netns add``),
so the network is configured before the container's command runs, and the init joins it by path.
"""
from __future__ import annotations

import contextlib
import os

from ..kernel import mountinfo, syscall
from ..kernel.namespaces import Unsharer, persist, unpersist
from ..kernel.syscall import LINUX


def exists(path, kernel=LINUX):
    return os.path.exists(path) and mountinfo.find(path, kernel.mountinfo) is not None


def create(path, kernel=LINUX):
    """A new network namespace persisted at ``path``; nothing is left when it fails."""
    if exists(path, kernel):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # an empty file a crash left
    with Unsharer((syscall.CLONE_NEWNET,), 'a network namespace', kernel=kernel) as helper:
        helper.ready()
        persist('/proc/%d/ns/net' % helper.pid, path, 'a network namespace at %s' % path, kernel)
    return True


def remove(path, kernel=LINUX):
    """Unmount what is stacked on ``path`` and unlink it (the namespace goes with its last user)."""
    unpersist(path, kernel.mountinfo, kernel)
