# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A volume's first use: the image's content at the mount target copied in (Docker's copy-up).

Docker copies when a volume is mounted over a directory of the container's filesystem and the
volume is empty; here it also happens only once per volume (``populated`` in its record), so a
volume emptied later stays empty. Files, directories, symlinks, hard links (kept as links),
devices and fifos; owners, modes (setuid too), times, and xattrs best-effort (sockets are not
copied). The volume's root takes the owner and mode of the source directory, as Docker's
``copyOwnership``.

The source is a container's rootfs, i.e. untrusted image content: it is walked with directory
fds and ``O_NOFOLLOW``, nothing is ever followed, and everything is written into a staging
directory beside ``_data`` that no container sees. Crash safety, in steps (under the volumes'
lock):

1. copy into ``<volume>/_copyup.tmp/``   (a crash: the next run deletes it and copies again)
2. rename it to ``<volume>/_copyup``      (the copy is complete)
3. owner/mode of ``_copyup`` to ``_data``, each entry renamed into ``_data``
4. ``populated: true`` written to ``volume.json``, then ``_copyup`` removed
A crash in 3 or 4 leaves ``_copyup``: :func:`repair` finishes 3 and 4 (an entry already in
``_data`` is not overwritten). A unit test kills the copy at every one of its disk operations.
"""
from __future__ import annotations

import errno
import os
import shutil
import stat

from ..errors import NsboxError

STAGE_TMP = '_copyup.tmp'
STAGE = '_copyup'
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_SKIP_XATTRS = ('trusted.overlay.',)


class CopyError(NsboxError):
    """The image's content could not be copied into a volume."""


def _copy_xattrs(src, dst):
    """Extended attributes from fd ``src`` to fd ``dst``; unsupported ones are skipped (best-effort)."""
    try:
        names = os.listxattr(src)
    except OSError:
        return
    for name in names:
        if name.startswith(_SKIP_XATTRS):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name))
        except OSError:
            pass


def _meta_fd(fd, st, src_fd=None):
    """Owner (before mode: chown clears setuid), mode, xattrs, times of an open file or directory."""
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))
    if src_fd is not None:
        _copy_xattrs(src_fd, fd)
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def _copy_file(src_dir, dst_dir, name, st):
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK, dir_fd=src_dir)
    try:
        dst = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dst_dir)
        try:
            left = st.st_size
            while left > 0:
                n = os.sendfile(dst, src, None, min(left, 1 << 30))
                if n == 0:
                    break  # the file shrank meanwhile
                left -= n
            _meta_fd(dst, st, src)
        finally:
            os.close(dst)
    finally:
        os.close(src)


def _copy_dir(src_dir, dst_dir, root_dst, rel, links):
    """Copy the entries of directory fd ``src_dir`` into ``dst_dir`` (``rel``: its path under the stage, for hard links)."""
    for name in sorted(os.listdir(src_dir)):
        st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
        mode = st.st_mode
        here = os.path.join(rel, name) if rel else name
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=dst_dir)
            s_fd = os.open(name, _DIR_FLAGS, dir_fd=src_dir)
            try:
                d_fd = os.open(name, _DIR_FLAGS, dir_fd=dst_dir)
                try:
                    _copy_dir(s_fd, d_fd, root_dst, here, links)
                    _meta_fd(d_fd, st, s_fd)  # after the children: their creation changed the times
                finally:
                    os.close(d_fd)
            finally:
                os.close(s_fd)
            continue
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and not stat.S_ISDIR(mode) and key in links:
            os.link(links[key], name, src_dir_fd=root_dst, dst_dir_fd=dst_dir, follow_symlinks=False)
            continue
        if stat.S_ISREG(mode):
            _copy_file(src_dir, dst_dir, name, st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=src_dir), name, dir_fd=dst_dir)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst_dir)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=dst_dir)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
        else:
            continue  # sockets: nothing to copy (Docker skips them too)
        if st.st_nlink > 1:
            links[key] = here


def _open_source(source):
    """An fd on the source directory, or None when there is nothing to copy (missing, not a directory)."""
    try:
        return os.open(source, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise CopyError.from_oserror('open', 'the image content at %s' % source, exc) from None


def _move_in(volume):
    """Step 3 and 4: the complete stage's owner and mode to _data, its entries into _data, the record marked."""
    stage = volume.path(STAGE)
    s_fd = os.open(stage, _DIR_FLAGS)
    try:
        d_fd = os.open(volume.data, _DIR_FLAGS)
        try:
            st = os.fstat(s_fd)
            _meta_fd(d_fd, st)
            for name in sorted(os.listdir(s_fd)):
                try:
                    os.stat(name, dir_fd=d_fd, follow_symlinks=False)
                    continue  # something wrote it meanwhile (another container using the volume): theirs stays
                except FileNotFoundError:
                    pass
                os.rename(name, name, src_dir_fd=s_fd, dst_dir_fd=d_fd)
            os.fsync(d_fd)
        finally:
            os.close(d_fd)
    finally:
        os.close(s_fd)
    volume.write(populated=True)  # before the stage goes: a kill in between leaves the stage, and repair redoes this
    shutil.rmtree(stage)


def repair(volume):
    """Finish or drop a copy an interrupted run left (call under the volumes' lock). True when there was one."""
    found = False
    if os.path.lexists(volume.path(STAGE_TMP)):
        shutil.rmtree(volume.path(STAGE_TMP), ignore_errors=True)
        found = True
    if os.path.lexists(volume.path(STAGE)):
        try:
            _move_in(volume)
        except OSError as exc:
            raise CopyError.from_oserror('finish', 'the first-use copy into volume %s' % volume.name, exc) from None
        found = True
    return found


def populate(volume, source):
    """Copy ``source`` (a directory in a container's mounted rootfs, already resolved inside it) into
    ``volume`` when it was never populated and is empty (call under the volumes' lock). True when copied."""
    repair(volume)
    if volume.populated or os.listdir(volume.data):
        return False
    s_fd = _open_source(source)
    if s_fd is None:
        return False
    tmp = volume.path(STAGE_TMP)
    try:
        os.mkdir(tmp, 0o700)
        d_fd = os.open(tmp, _DIR_FLAGS)
        try:
            _copy_dir(s_fd, d_fd, d_fd, '', {})
            _meta_fd(d_fd, os.fstat(s_fd), s_fd)
            os.fsync(d_fd)
        finally:
            os.close(d_fd)
        os.rename(tmp, volume.path(STAGE))
        _move_in(volume)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise CopyError.from_oserror('copy', 'the image content at %s into volume %s' % (source, volume.name), exc) from None
    finally:
        os.close(s_fd)
    return True
