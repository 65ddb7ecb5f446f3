# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""User namespaces made from outside, for containers: a user namespace with its maps (and
namespaces owned by it), idmapped mounts, and the chown fallback where there are none.

A user namespace is made by a short-lived forked helper: it unshares the user namespace, waits
while we — root of the parent namespace — write its maps (namespaces.write_id_maps, the one
writer), then unshares the namespaces asked for *inside* it, so they belong to it. We open
``/proc/<helper>/ns/*`` and kill the helper: a namespace lives as long as an fd refers to it.
The container's init joins those fds (process.py); an idmapped mount takes the user fd as the
carrier of its mapping.

Idmapped mounts (Linux 5.12+, ``open_tree(OPEN_TREE_CLONE)`` + ``mount_setattr(MOUNT_ATTR_IDMAP)``
+ ``move_mount``) need a filesystem that allows them (ext4, xfs, btrfs, tmpfs 6.3+): overlayfs
itself refuses (EINVAL, still on 6.18), but takes idmapped *layers* (5.19+). :func:`idmap_supported`
asks the kernel with a detached clone that is never attached, so a probe changes nothing.
"""
from __future__ import annotations

import errno as _errno
import os
import stat

from . import syscall
from .syscall import LINUX
from ..errors import NsboxError, SyscallError
from .idmap import IdMapEntry
from .namespaces import CLONE, Unsharer, write_id_maps

TYPES = ('user', 'net', 'ipc', 'uts')  # what the helper can make: namespaces that hold no process


class UsernsError(NsboxError):
    """A user namespace, an idmapped mount or an ownership shift could not be made."""


def create(uid_map, gid_map, types=('user',), kernel=LINUX):
    """A new user namespace with ``uid_map``/``gid_map`` (entries) and the other ``types`` made inside it:
    {type: fd} (O_CLOEXEC; the caller closes them). Nothing is left when it fails."""
    flags = 0
    for ns_type in types:
        if ns_type not in TYPES:
            raise UsernsError('create', 'a %s namespace' % ns_type, 'the helper makes only %s' % ', '.join(TYPES))
        if ns_type != 'user':
            flags |= CLONE[ns_type]
    fds = {}
    with Unsharer((syscall.CLONE_NEWUSER, flags), 'a user namespace', UsernsError, kernel) as helper:
        try:
            helper.ready()
            write_id_maps(helper.pid, uid_map, gid_map, 'a container\'s user namespace', kernel=kernel)
            helper.next()
            for ns_type in ('user',) + tuple(t for t in types if t != 'user'):
                fds[ns_type] = os.open('/proc/%d/ns/%s' % (helper.pid, ns_type), os.O_RDONLY | os.O_CLOEXEC)
            return dict(fds)
        except BaseException:
            for fd in fds.values():
                os.close(fd)
            raise


def idmapped_clone(source, userns_fd, target, recursive=True, kernel=LINUX):
    """Attach at ``target`` a clone of the mount at ``source`` whose ids are mapped as ``userns_fd``'s
    user namespace maps them (an on-disk 0 reads as the map's host id for container id 0)."""
    fd = kernel.open_tree_clone(source, recursive)
    try:
        kernel.mount_setattr_idmap(fd, userns_fd, recursive, what='a clone of %s' % source)
        kernel.move_mount_fd(fd, target)
    finally:
        kernel.close(fd)


_PROBE_MAP = (IdMapEntry(0, 4000000000, 1),)


def idmap_supported(path, kernel=LINUX):
    """True when the kernel idmaps a clone of the mount at ``path`` (it has mount_setattr and the filesystem
    allows it). The clone is detached and dropped: nothing is attached anywhere."""
    if not kernel.kernel_has_syscall('mount_setattr'):
        return False
    fds = create(_PROBE_MAP, _PROBE_MAP, kernel=kernel)
    try:
        fd = kernel.open_tree_clone(path, recursive=False)
        try:
            kernel.mount_setattr_idmap(fd, fds['user'], recursive=False)
        finally:
            kernel.close(fd)
    except SyscallError as exc:
        if exc.errno in (_errno.EINVAL, _errno.ENOSYS, _errno.EPERM, _errno.EOPNOTSUPP):
            return False
        raise
    finally:
        os.close(fds['user'])
    return True


# -- the chown fallback ----------------------------------------------------------------------------
def map_id(value, entries):
    """Container id ``value`` -> its host id under ``entries``; None when the map does not cover it."""
    for e in entries:
        if e.container_id <= value < e.container_id + e.size:
            return e.host_id + value - e.container_id
    return None


def in_host_range(value, entries):
    return any(e.host_id <= value < e.host_id + e.size for e in entries)


def shift_tree(root, uid_map, gid_map):
    """Give every entry under ``root`` (not crossing into other mounts) the host ids its container ids map to:
    an entry already owned by host ids of the maps is left alone, so a second run only reads. Through an
    overlay mount each chown copies the entry up: the shared lower layers are never touched. chown clears
    setuid/setgid: the mode is put back. Returns how many entries changed."""
    try:
        top = os.lstat(root)
    except OSError as exc:
        raise UsernsError.from_oserror('shift the ownership of', root, exc) from None
    changed = 0
    for path, st in _walk(root, top.st_dev):
        uid = st.st_uid if in_host_range(st.st_uid, uid_map) else map_id(st.st_uid, uid_map)
        gid = st.st_gid if in_host_range(st.st_gid, gid_map) else map_id(st.st_gid, gid_map)
        uid = st.st_uid if uid is None else uid
        gid = st.st_gid if gid is None else gid
        if (uid, gid) == (st.st_uid, st.st_gid):
            continue
        try:
            os.lchown(path, uid, gid)
            if not stat.S_ISLNK(st.st_mode) and st.st_mode & (stat.S_ISUID | stat.S_ISGID):
                os.chmod(path, stat.S_IMODE(st.st_mode))
        except OSError as exc:
            raise UsernsError.from_oserror('shift the ownership of', path, exc) from None
        changed += 1
    return changed


def _walk(root, dev):
    """(path, lstat) of ``root`` and everything below it on device ``dev``, parents first."""
    todo = [root]
    while todo:
        path = todo.pop()
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_dev != dev:
            continue  # a mount point (overlay reports its own device for directories; files may show a layer's)
        yield path, st
        if stat.S_ISDIR(st.st_mode):
            try:
                names = os.listdir(path)
            except OSError as exc:
                raise UsernsError.from_oserror('read', 'directory %s' % path, exc) from None
            todo.extend(os.path.join(path, n) for n in names)
