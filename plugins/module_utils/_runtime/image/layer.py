# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Layer blobs -> directories: decompression with diff_id, and extraction as a security boundary.

A layer is untrusted input that becomes a root filesystem, so Python's tarfile filters
don't fit (they strip setuid bits and devices) and plain ``extractall`` is unsafe. Here
every write happens relative to a directory fd reached component by component with
``O_NOFOLLOW``: a name can't leave the root (``..`` is clamped, a leading ``/`` dropped),
and nothing is ever written *through* a symlink. In ``overlay`` mode (each layer in its
own empty dir) a member whose parent is a symlink was planted by this same layer and is
refused; in ``apply`` mode (the vfs driver: the parent layers' tree is already there) a
symlink in a parent path is resolved inside the root, as chrootarchive and securejoin do.
The final component is never followed: whatever is there is replaced.
Whiteouts: ``.wh.NAME`` and ``.wh..wh..opq`` become overlay whiteouts (a 0/0 character
device, ``trusted.overlay.opaque=y``) or, in ``apply`` mode, deletions.
"""
from __future__ import annotations

import errno
import hashlib
import os
import stat
import tarfile
import zlib

from ..errors import NsboxError

WHITEOUT = '.wh.'
OPAQUE = '.wh..wh..opq'
_CHUNK = 1 << 20
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_MAX_LINKS = 40
# xattrs an image may not set: overlay's own markers would act as whiteouts or redirects.
_SKIP_XATTR = ('trusted.overlay.',)


class LayerError(NsboxError):
    """A layer could not be read or holds something unsafe."""


# -- decompression ---------------------------------------------------------------------
class _Gunzip:
    """Streaming gzip (concatenated members too) through zlib."""

    def __init__(self, raw, head):
        self.raw, self.pending, self.d, self.eof = raw, head, zlib.decompressobj(16 + zlib.MAX_WBITS), False

    def read(self, n=-1):
        while not self.eof:
            data = self.pending or self.raw.read(_CHUNK)
            self.pending = b''
            if not data:
                self.eof = True
                return self.d.flush()
            out = self.d.decompress(data)
            if self.d.eof and self.d.unused_data:
                self.pending = self.d.unused_data
                self.d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            if out:
                return out
        return b''


class _Prefixed:
    def __init__(self, raw, head):
        self.raw, self.head = raw, head

    def read(self, n=-1):
        if self.head:
            out, self.head = self.head, b''
            return out
        return self.raw.read(_CHUNK if n is None or n < 0 else n)


class LayerStream:
    """The uncompressed tar, hashed as it is read: ``diff_id`` and ``size`` once at EOF."""

    def __init__(self, inner):
        self.inner, self.h, self.size, self.done = inner, hashlib.sha256(), 0, False
        self.buf, self.pos = b'', 0  # served from buf[pos:]; never re-sliced per small read

    def read(self, n=-1):
        if n is None or n < 0:
            parts = [self.buf[self.pos:]]
            while not self.done:
                parts.append(self._more())
            self.buf, self.pos = b'', 0
            return b''.join(parts)
        while len(self.buf) - self.pos < n and not self.done:
            chunk = self._more()
            if chunk:
                self.buf, self.pos = self.buf[self.pos:] + chunk, 0
        out = self.buf[self.pos:self.pos + n]
        self.pos += len(out)
        return out

    def _more(self):
        chunk = self.inner.read(_CHUNK)
        if not chunk:
            self.done = True
            return b''
        self.h.update(chunk)
        self.size += len(chunk)
        return chunk

    @property
    def diff_id(self):
        return 'sha256:' + self.h.hexdigest() if self.done else None


def open_layer(fileobj, media_type=None):
    """An uncompressed, hashing stream of a layer blob (gzip and zstd sniffed by magic)."""
    head = fileobj.read(4)
    if head[:2] == b'\x1f\x8b':
        inner = _Gunzip(fileobj, head)
    elif head == b'\x28\xb5\x2f\xfd':
        try:
            # Imported here: an optional binding (python3-zstandard), only for zstd layers.
            import zstandard  # pylint: disable=import-outside-toplevel
        except ImportError:
            raise LayerError('decompress', 'a zstd layer (%s)' % (media_type or 'zstd'),
                             'the zstandard Python package is not installed on this host (pip install zstandard / python3-zstandard)')
        inner = zstandard.ZstdDecompressor().stream_reader(_Prefixed(fileobj, head), read_across_frames=True)
    else:
        inner = _Prefixed(fileobj, head)
    return LayerStream(inner)


# -- safe paths ------------------------------------------------------------------------
def clean_name(name):
    """Member name -> list of components inside the root ('..' clamped at the root, '/' dropped)."""
    parts = []
    for comp in name.split('/'):
        if comp in ('', '.'):
            continue
        if comp == '..':
            if parts:
                parts.pop()
            continue
        parts.append(comp)
    return parts


def _open_dir(root_fd, parts, create, follow, what):
    """An fd for the directory ``parts`` under the root, without leaving it. Caller closes it."""
    stack = [os.dup(root_fd)]
    todo, hops = list(parts), 0
    try:
        while todo:
            comp = todo.pop(0)
            if comp == '..':
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            if comp in ('', '.'):
                continue
            try:
                fd = os.open(comp, _DIR_FLAGS, dir_fd=stack[-1])
            except FileNotFoundError:
                if not create:
                    raise
                os.mkdir(comp, 0o755, dir_fd=stack[-1])
                fd = os.open(comp, _DIR_FLAGS, dir_fd=stack[-1])
            except OSError as exc:
                if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                    raise
                st = os.stat(comp, dir_fd=stack[-1], follow_symlinks=False)
                if not stat.S_ISLNK(st.st_mode):
                    raise LayerError('extract', what, 'a parent path component %r is not a directory' % comp)
                if not follow:
                    raise LayerError('extract', what, 'refusing to write through the symlink %r in its path' % comp)
                hops += 1
                if hops > _MAX_LINKS:
                    raise LayerError('extract', what, 'too many levels of symlinks')
                target = os.readlink(comp, dir_fd=stack[-1])
                if target.startswith('/'):
                    while len(stack) > 1:
                        os.close(stack.pop())
                todo = [c for c in target.split('/') if c] + todo
                continue
            stack.append(fd)
        fd = stack.pop()
        return fd
    finally:
        for fd in stack:
            os.close(fd)


def _lexists(name, dir_fd):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _remove_at(dir_fd, name):
    """Remove ``name`` (a tree too) under ``dir_fd`` without following any symlink."""
    st = _lexists(name, dir_fd)
    if st is None:
        return
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return
    fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    try:
        os.fchmod(fd, 0o700)
        for entry in list(os.scandir(fd)):
            _remove_at(fd, entry.name)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def _xattrs(member):
    out = []
    for key, value in member.pax_headers.items():
        if key.startswith('SCHILY.xattr.'):
            name = key[len('SCHILY.xattr.'):]
            if not name.startswith(_SKIP_XATTR):
                out.append((name, value.encode('utf-8', 'surrogateescape') if isinstance(value, str) else value))
    return out


# -- extraction ------------------------------------------------------------------------
class _Extractor:
    def __init__(self, dest, whiteouts):
        if whiteouts not in ('overlay', 'apply'):
            raise LayerError('extract', 'a layer', 'unknown whiteout mode %r' % whiteouts)
        self.apply = whiteouts == 'apply'
        self.root = os.open(dest, _DIR_FLAGS)
        self.dirs = {}        # rel -> member, fixed up at the end
        self.created = set()  # rels this layer wrote (apply mode opaque handling)
        self.opaque = []
        self.stats = {'entries': 0, 'whiteouts': 0, 'bytes': 0}

    def parent(self, parts, what, create=True):
        return _open_dir(self.root, parts, create, self.apply, what)

    def member(self, tf, m):
        parts = clean_name(m.name)
        what = 'layer member %r' % m.name
        if not parts:
            return  # the root itself keeps its own metadata
        base = parts[-1]
        if base.startswith(WHITEOUT):
            return self.whiteout(parts, what)
        self.stats['entries'] += 1
        pfd = self.parent(parts[:-1], what)
        try:
            rel = '/'.join(parts)
            self.created.add(rel)
            for i in range(1, len(parts)):
                self.created.add('/'.join(parts[:i]))
            st = _lexists(base, pfd)
            if m.isdir():
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    os.unlink(base, dir_fd=pfd)
                    st = None
                if st is None:
                    os.mkdir(base, 0o700, dir_fd=pfd)
                self.dirs[rel] = m
                return
            if st is not None:
                _remove_at(pfd, base)
            if m.isreg():
                self.regular(tf, m, pfd, base)
            elif m.issym():
                os.symlink(m.linkname, base, dir_fd=pfd)
                os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
                os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)
            elif m.islnk():
                self.hardlink(m, pfd, base, what)
            elif m.ischr() or m.isblk() or m.isfifo():
                kind = stat.S_IFCHR if m.ischr() else stat.S_IFBLK if m.isblk() else stat.S_IFIFO
                os.mknod(base, kind | 0o600, os.makedev(m.devmajor, m.devminor) if kind != stat.S_IFIFO else 0, dir_fd=pfd)
                self.meta_path(pfd, base, m)
            else:
                raise LayerError('extract', what, 'unsupported member type %r' % m.type)
        finally:
            os.close(pfd)

    def regular(self, tf, m, pfd, base):
        fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=pfd)
        try:
            src = tf.extractfile(m)
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                os.write(fd, chunk)
                self.stats['bytes'] += len(chunk)
            self.meta_fd(fd, m)
        finally:
            os.close(fd)

    def hardlink(self, m, pfd, base, what):
        tparts = clean_name(m.linkname)
        if not tparts:
            raise LayerError('extract', what, 'a hardlink to the root directory')
        outside = LayerError('extract', what, 'its hardlink target %r is not a file inside the layer' % m.linkname)
        try:
            tfd = self.parent(tparts[:-1], what, create=False)
        except (FileNotFoundError, NotADirectoryError):
            raise outside
        try:
            st = _lexists(tparts[-1], tfd)
            if st is None or stat.S_ISDIR(st.st_mode):
                raise outside
            os.link(tparts[-1], base, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    @staticmethod
    def meta_fd(fd, m):
        os.fchown(fd, m.uid, m.gid)
        os.fchmod(fd, m.mode & 0o7777)  # after chown: chown clears setuid/setgid
        for name, value in _xattrs(m):
            os.setxattr(fd, name, value)
        os.utime(fd, ns=(int(m.mtime * 1e9),) * 2)

    @staticmethod
    def meta_path(pfd, base, m):
        os.chown(base, m.uid, m.gid, dir_fd=pfd, follow_symlinks=False)
        os.chmod(base, m.mode & 0o7777, dir_fd=pfd)
        os.utime(base, ns=(int(m.mtime * 1e9),) * 2, dir_fd=pfd, follow_symlinks=False)

    def whiteout(self, parts, what):
        base = parts[-1]
        self.stats['whiteouts'] += 1
        if base.startswith('.wh..wh.') and base != OPAQUE:
            return  # aufs metadata (.wh..wh.plnk, ...)
        pfd = self.parent(parts[:-1], what)
        try:
            if base == OPAQUE:
                if self.apply:
                    self.opaque.append(parts[:-1])
                else:
                    os.setxattr(pfd, 'trusted.overlay.opaque', b'y')
                return
            name = base[len(WHITEOUT):]
            if name in ('', '.', '..'):
                raise LayerError('extract', what, 'an invalid whiteout name')
            if self.apply:
                _remove_at(pfd, name)
            else:
                _remove_at(pfd, name)
                os.mknod(name, stat.S_IFCHR | 0o600, os.makedev(0, 0), dir_fd=pfd)
        finally:
            os.close(pfd)

    def finish(self):
        for dparts in self.opaque:
            prefix = '/'.join(dparts)
            fd = _open_dir(self.root, dparts, False, True, 'opaque directory %r' % prefix)
            try:
                for entry in list(os.scandir(fd)):
                    rel = (prefix + '/' if prefix else '') + entry.name
                    if rel not in self.created:
                        _remove_at(fd, entry.name)
            finally:
                os.close(fd)
        # Directory metadata last, deepest first: a read-only dir must not block its children.
        for rel in sorted(self.dirs, key=lambda r: r.count('/'), reverse=True):
            fd = _open_dir(self.root, rel.split('/'), False, self.apply, 'directory %r' % rel)
            try:
                self.meta_fd(fd, self.dirs[rel])
            finally:
                os.close(fd)

    def close(self):
        os.close(self.root)


def apply_layer(stream, dest, whiteouts='overlay'):
    """Unpack an uncompressed tar stream into ``dest`` (see the module doc); returns counts."""
    ex = _Extractor(dest, whiteouts)
    try:
        with tarfile.open(fileobj=stream, mode='r|') as tf:
            for m in tf:
                try:
                    ex.member(tf, m)
                except OSError as exc:
                    raise LayerError.from_oserror('extract', 'layer member %r' % m.name, exc)
        ex.finish()
    except tarfile.TarError as exc:
        raise LayerError('read', 'a layer', 'not a valid tar stream: %s' % exc)
    finally:
        ex.close()
    return ex.stats


def _copy_meta(dst, src, st):
    is_link = stat.S_ISLNK(st.st_mode)
    os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    if not is_link:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
        for name in os.listxattr(src, follow_symlinks=False):
            os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def copy_tree(src, dst):
    """Copy a tree (the vfs driver's parent layer) keeping types, owners, modes, xattrs, hardlinks.

    ``src`` is the store's own, already-extracted tree, so plain paths with no link
    following are enough here."""
    inodes, dirs = {}, []
    for s_dir, dirnames, filenames in os.walk(src):
        d_dir = os.path.join(dst, os.path.relpath(s_dir, src))
        os.makedirs(d_dir, 0o700, exist_ok=True)
        dirs.append((d_dir, s_dir, os.lstat(s_dir)))
        links = [d for d in dirnames if os.path.islink(os.path.join(s_dir, d))]
        dirnames[:] = [d for d in dirnames if d not in links]
        for entry in filenames + links:
            srcp, dstp = os.path.join(s_dir, entry), os.path.join(d_dir, entry)
            st = os.lstat(srcp)
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in inodes:
                os.link(inodes[key], dstp, follow_symlinks=False)
                continue
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(srcp), dstp)
            elif stat.S_ISREG(st.st_mode):
                with open(srcp, 'rb') as fi, open(dstp, 'xb') as fo:
                    while True:
                        chunk = fi.read(_CHUNK)
                        if not chunk:
                            break
                        fo.write(chunk)
            else:
                os.mknod(dstp, st.st_mode, st.st_rdev)
            _copy_meta(dstp, srcp, st)
            inodes[key] = dstp
    for d_dir, s_dir, st in reversed(dirs):
        _copy_meta(d_dir, s_dir, st)
