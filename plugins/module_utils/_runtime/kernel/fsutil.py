# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Crash-safe file helpers: atomic writes, versioned JSON, flock locks.

Every state file is written to a temporary name in the same directory, fsynced and
renamed over the old one, then the directory is fsynced: a crash leaves either the
old or the new file, never a torn one.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import stat
import tempfile

from ..errors import NsboxError, SchemaError


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path, data, mode=0o644, spare=False):
    """Replace ``path`` with ``data`` (bytes) atomically.

    A full filesystem (ENOSPC, EDQUOT) is an NsboxError that names the path and the filesystem. With
    ``spare`` the file keeps a spare beside it (``<path>.spare``, blocks allocated ahead): a write the
    filesystem has no new block for goes into the spare in place and is renamed over the file, so the
    writes that must happen on a full disk (a stop, an exit code) need no new blocks. The spare is made
    again by the next write that finds room.
    """
    try:
        _replace(path, data, mode)
    except OSError as exc:
        if exc.errno not in FULL or not (spare and _into_spare(path, data, mode)):
            if exc.errno in FULL:
                raise NsboxError('write', path, 'no space left on %s' % mount_of(path), path=path, errno=exc.errno) from None
            raise
    if spare:
        _make_spare(path)


FULL = (errno.ENOSPC, errno.EDQUOT)
SPARE_SIZE = 64 << 10  # a state file is a few hundred bytes; this holds many


def _replace(path, data, mode):
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(path), suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _rename_into_place(tmp, path)


def _rename_into_place(tmp, path):
    """``tmp`` (in ``path``'s directory) renamed over ``path``, the directory fsynced; ``tmp`` removed if that fails."""
    try:
        os.rename(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(path) or '.')


def _make_spare(path):
    """``<path>.spare``, its blocks allocated, when it is missing; nothing when there is no room for it."""
    spare = path + '.spare'
    if os.path.exists(spare):
        return
    tmp = spare + '.new'
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, SPARE_SIZE)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, spare)
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def _into_spare(path, data, mode):
    """The full-disk write: ``data`` over the spare's allocated blocks, then the spare renamed over ``path``."""
    spare = path + '.spare'
    if len(data) > SPARE_SIZE:
        return False
    try:
        fd = os.open(spare, os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
        os.fchmod(fd, mode)
        os.fsync(fd)
    except OSError:
        return False
    finally:
        os.close(fd)
    os.rename(spare, path)
    with contextlib.suppress(OSError):
        fsync_dir(os.path.dirname(path) or '.')
    return True


def mount_of(path):
    """The mount point of the filesystem ``path`` is on (its highest directory on the same device)."""
    here = os.path.abspath(os.path.dirname(path) if not os.path.isdir(path) else path)
    try:
        dev = os.stat(here).st_dev
        while here != '/' and os.stat(os.path.dirname(here)).st_dev == dev:
            here = os.path.dirname(here)
    except OSError:
        pass
    return here


def atomic_symlink(target, path):
    """Point the symlink ``path`` at ``target`` atomically (symlink + rename)."""
    directory = os.path.dirname(path) or '.'
    tmp = os.path.join(directory, '.%s.%d.tmp' % (os.path.basename(path), os.getpid()))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    _rename_into_place(tmp, path)


def dump_json(obj):
    """The on-disk JSON form: sorted, indented, newline-terminated (readable, diffable)."""
    return (json.dumps(obj, indent=2, sort_keys=True) + '\n').encode('utf-8')


def write_json(path, obj, mode=0o644, spare=False):
    atomic_write(path, dump_json(obj), mode, spare)


def read_json(path, what, schema_version=None, default=None):
    """Read a JSON state file; refuse one written by a newer schema.

    Returns ``default`` when the file does not exist.
    """
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except FileNotFoundError:
        return default
    except OSError as exc:
        raise NsboxError.from_oserror('read', what, exc)
    try:
        data = json.loads(raw.decode('utf-8'))
    except ValueError as exc:
        raise SchemaError('read', what, 'not valid JSON in %s: %s' % (path, exc), path=path)
    if not isinstance(data, dict):
        raise SchemaError('read', what, '%s does not hold a JSON object' % path, path=path)
    if schema_version is not None:
        found = data.get('schema_version', 1)
        if not isinstance(found, int) or found > schema_version:
            raise SchemaError('read', what, '%s has schema_version %r, newer than this nsbox understands (%d); '
                              'upgrade nsbox on this host' % (path, found, schema_version), path=path)
    return data


@contextlib.contextmanager
def locked(path, shared=False):
    """Hold an flock on ``path`` (created if needed) for the duration of the block."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def makedirs(path, mode):
    """Create ``path`` with ``mode`` (not subject to umask); return True if created or re-moded."""
    changed = False
    if not os.path.isdir(path):
        os.makedirs(path, mode)
        changed = True
    if (os.stat(path).st_mode & 0o7777) != mode:
        os.chmod(path, mode)
        changed = True
    return changed


def tree_size(path):
    """Bytes a file or tree takes on disk (allocated blocks, hard links once, mounts below not crossed): what removing it frees."""
    try:
        top = os.lstat(path)
    except FileNotFoundError:
        return 0
    seen, total = set(), 0
    stack = [path]
    while stack:
        current = stack.pop()
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            continue
        if st.st_dev != top.st_dev:
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
        if stat.S_ISDIR(st.st_mode):
            try:
                stack.extend(os.path.join(current, name) for name in os.listdir(current))
            except OSError:
                pass
    return total


def read_text(path):
    """A text file's content, None when it does not exist (any other error: NsboxError)."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise NsboxError.from_oserror('read', path, exc) from None


class OwnedFile:
    """A host file the runtime writes whole and marks with ``header`` as its first line (``/etc/sysctl.d/90-nsbox.conf``,
    ``/etc/modules-load.d/nsbox.conf``): written when its content differs, removed when nothing is wanted any more,
    and then only if it still carries the header (a file a person wrote is left alone)."""

    def __init__(self, path, header):
        self.path, self.header = path, header

    def action(self, content):
        """'write', 'remove' or None, for ``content`` (the whole file, starting with the header; None: not wanted)."""
        now = read_text(self.path)
        if content is not None:
            return 'write' if now != content else None
        return 'remove' if now is not None and now.startswith(self.header) else None

    def apply(self, action, content, mode=0o644):
        try:
            if action == 'write':
                os.makedirs(os.path.dirname(self.path), 0o755, exist_ok=True)
                atomic_write(self.path, content.encode(), mode)
            elif action == 'remove':
                os.unlink(self.path)
        except OSError as exc:
            raise NsboxError.from_oserror('write', self.path, exc) from None
