# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's network namespace, made before its init (as podman makes it for CNI/netavark):
an empty file with the namespace bind-mounted on it (``namespaces.persist``, as ``ip netns add``),
so the network is configured before the container's command runs, and the init joins it by path.
"""
from __future__ import annotations

import contextlib
import os

from .. import mountinfo, syscall
from ..errors import NsboxError
from ..namespaces import persist, unpersist


def exists(path):
    return os.path.exists(path) and mountinfo.find(path) is not None


def create(path):
    """A new network namespace persisted at ``path``; nothing is left when it fails."""
    if exists(path):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # an empty file a crash left
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # pragma: no cover - forked child: unshare, say so, wait, end
        code = 1
        try:
            os.close(ready_r)
            os.close(done_w)
            syscall.unshare(syscall.CLONE_NEWNET)
            os.write(ready_w, b'1')
            os.read(done_r, 1)
            code = 0
        finally:
            os._exit(code)  # pylint: disable=protected-access
    os.close(ready_w)
    os.close(done_r)
    try:
        if os.read(ready_r, 1) != b'1':
            raise NsboxError('create', 'a network namespace', 'the child could not unshare one (CAP_SYS_ADMIN?)')
        persist('/proc/%d/ns/net' % pid, path, 'a network namespace at %s' % path)
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)
    return True


def remove(path):
    """Unmount what is stacked on ``path`` and unlink it (the namespace goes with its last user)."""
    unpersist(path)
