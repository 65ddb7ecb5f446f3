# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's root filesystem: an overlay of an image's layers (or a vfs copy), mounted at a target.

overlay: ``lowerdir`` lists the image's layers top-first. The store keeps a short link per
layer (``layers/l/<26 hex>``) and the mount is made from inside ``layers/`` with relative
names, as Docker does, so ~140 layers fit in the one page the kernel takes for mount
options. Whether a target is mounted as asked is read from /proc/self/mountinfo (the
options come back as given). vfs: the image's top layer already is the whole tree; it is
copied once into the upper dir (a marker in the work dir names what was copied) and that
copy is bind-mounted on the target.
"""
from __future__ import annotations

import os
import shutil
import stat

from ..kernel import mountinfo, syscall
from ..kernel.syscall import LINUX
from ..errors import ConfigError, NsboxError
from ..kernel.fsutil import read_json, write_json
from .layer import copy_tree
from .reference import Reference
from .store import ImageStore

PAGE_LIMIT = 4095  # mount(2) copies one page of options, NUL included
VFS_MARKER = 'vfs.json'


class RootfsError(NsboxError):
    """A root filesystem could not be assembled, mounted or removed."""


class RootfsSpec:
    """What to mount: ``lowers`` top-first (relative to ``cwd`` when given), ``upper``/``work`` (None: read-only)."""

    def __init__(self, target, lowers, upper=None, work=None, cwd=None, driver='overlay', image=None, vfs_source=None):
        self.target = os.path.abspath(target)
        self.lowers = list(lowers)
        self.upper = os.path.abspath(upper) if upper else None
        self.work = os.path.abspath(work) if work else None
        self.cwd = cwd
        self.driver = driver
        self.image = image
        self.vfs_source = vfs_source
        if driver == 'overlay' and not self.lowers:
            raise RootfsError('assemble', 'the root filesystem for %s' % self.target, 'no lower directories')
        if bool(self.upper) != bool(self.work):
            raise RootfsError('assemble', 'the root filesystem for %s' % self.target, 'upper_dir and work_dir go together')

    @property
    def readonly(self):
        return self.upper is None

    def options(self):
        opts = 'lowerdir=' + ':'.join(_escape(p) for p in self.lowers)
        if self.upper:
            opts += ',upperdir=%s,workdir=%s' % (_escape(self.upper), _escape(self.work))
        return opts

    def describe(self):
        return {'target': self.target, 'driver': self.driver, 'image': self.image, 'lowers': self.lowers if self.driver == 'overlay' else [],
                'upper': self.upper, 'work': self.work, 'readonly': self.readonly}


def _escape(path):
    """overlay splits lowerdir on ':' and options on ',': escape both in a path."""
    return path.replace('\\', '\\\\').replace(':', '\\:').replace(',', '\\,')


def for_image(store, name, target, upper=None, work=None):
    """The spec for an image in ``store`` by reference (``busybox``, ``host/repo:tag``, ``...@sha256:``) or manifest digest."""
    record = None
    if name.startswith('sha256:'):
        record = store.index()['images'].get(name)
    else:
        try:
            record = store.resolve(Reference.parse(name).key)
        except ConfigError as exc:
            raise RootfsError('find', 'image %r' % name, exc.cause)
    if record is None or not store.complete(record):
        raise RootfsError('find', 'image %s' % name, 'it is not in the store at %s (pull or load it first)' % store.root)
    chain = [layer['chain_id'] for layer in record['layers']]
    if store.storage_driver == 'vfs':
        if not upper:
            raise RootfsError('assemble', 'a vfs root filesystem', 'the vfs driver copies the image: give upper_dir and work_dir')
        return RootfsSpec(target, [], upper, work, driver='vfs', image=record['manifest_digest'], vfs_source=store.layer_diff(chain[-1]))
    links = []
    for chain_id in reversed(chain):
        meta = store.layer_meta(chain_id) or {}
        links.append(os.path.join('l', meta['link']) if meta.get('link') else store.layer_diff(chain_id))
    return RootfsSpec(target, links, upper, work, cwd=store.layers_dir, image=record['manifest_digest'])


class Unknown(Exception):
    """A path of an image that cannot be read without mounting it (a symlink on the way)."""


def read_file(store, record, path):
    """The text of the file at ``path`` as the image's root filesystem has it, None where it has none, read from
    the layers top down without mounting them (overlay whiteouts and opaque directories are honoured); raises
    :class:`Unknown` where a symlink would have to be followed."""
    parts = [p for p in path.split('/') if p]
    chain = [layer['chain_id'] for layer in record['layers']]
    for chain_id in reversed(chain[-1:] if store.storage_driver == 'vfs' else chain):
        here = store.layer_diff(chain_id)
        for i, part in enumerate(parts):
            here = os.path.join(here, part)
            try:
                st = os.lstat(here)
            except (FileNotFoundError, NotADirectoryError):
                if store.storage_driver == 'vfs' or _opaque(os.path.dirname(here)):
                    return None
                break  # not in this layer: a lower one may have it
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                return None  # a whiteout
            if stat.S_ISLNK(st.st_mode):
                raise Unknown(path)
            if i == len(parts) - 1:
                if not stat.S_ISREG(st.st_mode):
                    return None
                with open(here, 'rb') as f:
                    return f.read().decode('utf-8', 'replace')
            if not stat.S_ISDIR(st.st_mode):
                return None
    return None


def _opaque(directory):
    try:
        return os.getxattr(directory, 'trusted.overlay.opaque', follow_symlinks=False) == b'y'
    except OSError:
        return False


class Rootfs:
    """Mount state of one spec: ``status()`` is 'mounted', 'unmounted' or 'different' (something else is there)."""

    def __init__(self, spec, mountinfo_path=None, kernel=LINUX):
        self.spec = spec
        self.mountinfo_path = mountinfo_path or kernel.mountinfo
        self.kernel = kernel

    def current(self):
        return mountinfo.find(self.spec.target, self.mountinfo_path)

    def status(self):
        mnt = self.current()
        if mnt is None:
            return 'unmounted'
        if self.spec.driver == 'vfs':
            same = self._vfs_copied() and _same_inode(self.spec.target, self.spec.upper) and \
                ('ro' in mnt.options) == self.spec.readonly
            return 'mounted' if same else 'different'
        if mnt.fstype != 'overlay':
            return 'different'
        wanted = dict(o.partition('=')[::2] for o in mountinfo._split_options(self.spec.options()))  # pylint: disable=protected-access
        have = {k: mnt.super_option(k) for k in ('lowerdir', 'upperdir', 'workdir')}
        return 'mounted' if all(have.get(k) == wanted.get(k) for k in ('lowerdir', 'upperdir', 'workdir')) else 'different'

    # -- mount ----------------------------------------------------------------------------
    def mount(self):
        spec = self.spec
        for d in (spec.target, spec.upper, spec.work):
            if d:
                _makedirs(d)
        if spec.driver == 'vfs':
            self._vfs_copy()
            flags = syscall.MS_BIND
            self.kernel.mount(spec.upper, spec.target, None, flags)
            if spec.readonly:
                self.kernel.mount(None, spec.target, None, flags | syscall.MS_REMOUNT | syscall.MS_RDONLY)
            return
        options = spec.options()
        if len(options) > PAGE_LIMIT:
            raise RootfsError('mount', 'the overlay on %s' % spec.target,
                              'its options are %d bytes, over the kernel\'s one page (%d layers)' % (len(options), len(spec.lowers)))
        _mount_in(self.kernel, spec.cwd, 'nsbox', spec.target, 'overlay', 0, options)

    def _vfs_copied(self):
        marker = read_json(os.path.join(self.spec.work, VFS_MARKER), 'vfs marker', 1) if self.spec.work else None
        return bool(marker) and marker.get('image') == self.spec.image

    def _vfs_copy(self):
        """Copy the image's tree into upper/ once; the marker is written last, so a crash mid-copy is redone."""
        if self._vfs_copied():
            return
        spec = self.spec
        shutil.rmtree(spec.upper, ignore_errors=True)
        partial = spec.upper + '.partial'
        shutil.rmtree(partial, ignore_errors=True)
        copy_tree(spec.vfs_source, partial)
        os.rename(partial, spec.upper)
        write_json(os.path.join(spec.work, VFS_MARKER), {'schema_version': 1, 'image': spec.image, 'source': spec.vfs_source}, 0o600)

    def unmount(self):
        """Unmount every mount stacked on the target (a failed earlier run may have left two)."""
        while self.current() is not None:
            self.kernel.umount(self.spec.target)

    def remove(self):
        """Unmount, then delete the writable layer (upper, work) and the target if it is an empty directory."""
        self.unmount()
        for d in (self.spec.upper, self.spec.work):
            if d and os.path.lexists(d):
                shutil.rmtree(d)
        try:
            os.rmdir(self.spec.target)
        except OSError:
            pass


def _same_inode(a, b):
    try:
        sa, sb = os.stat(a), os.stat(b)
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _makedirs(path):
    try:
        os.makedirs(path, 0o755, exist_ok=True)
    except OSError as exc:
        raise RootfsError.from_oserror('create', 'directory %s' % path, exc)


def _mount_in(kernel, cwd, source, target, fstype, flags, data):
    """mount(2) from ``cwd`` (relative lower dirs) in a forked child, so this process's cwd never changes."""
    if cwd is None:
        kernel.mount(source, target, fstype, flags, data)
        return
    rfd, wfd = os.pipe()
    pid = kernel.fork()
    if pid == 0:  # child: mount, report, and _exit (never return into the caller's code)
        os.close(rfd)
        code = b'0'
        try:
            kernel.chdir(cwd)
            kernel.mount(source, target, fstype, flags, data)
        except NsboxError as exc:
            code = exc.message.encode('utf-8', 'replace')
        except BaseException as exc:  # pylint: disable=broad-except
            code = str(exc).encode('utf-8', 'replace')
        os.write(wfd, code)
        kernel.exit_process(0)
    os.close(wfd)
    with os.fdopen(rfd, 'rb') as f:
        answer = f.read()
    kernel.waitpid(pid, 0)
    if answer != b'0':
        raise RootfsError('mount', 'the overlay on %s' % target, answer.decode('utf-8', 'replace').replace('failed to mount ', '', 1))


def ensure(cfg, target, image=None, lower_dirs=None, upper=None, work=None, readonly=False, state='mounted', check_mode=False):
    """Converge one root filesystem (the rootfs_overlay module's logic): {'changed', 'actions', 'rootfs', 'diff'}."""
    target = os.path.abspath(target)
    actions = []
    if state == 'mounted':
        if readonly and (upper or work):
            raise RootfsError('assemble', 'the root filesystem for %s' % target, 'a read-only one has no upper_dir or work_dir')
        if not readonly and not (upper and work):
            raise RootfsError('assemble', 'the root filesystem for %s' % target, 'give upper_dir and work_dir, or readonly: true')
        if image:
            spec = for_image(ImageStore(cfg.data_root, cfg['storage_driver']), image, target, upper, work)
        else:
            lowers = [os.path.abspath(d) for d in lower_dirs or []]
            for d in lowers:
                if not os.path.isdir(d):
                    raise RootfsError('assemble', 'the root filesystem for %s' % target, 'the lower directory %s does not exist' % d, path=d)
            spec = RootfsSpec(target, lowers, upper, work)
        fs = Rootfs(spec, kernel=cfg.kernel)
        status = fs.status()
        if status == 'different':
            mnt = fs.current()
            raise RootfsError('mount', 'the root filesystem on %s' % target,
                              'something else is mounted there (%s from %s): unmount it first (state: unmounted)' % (mnt.fstype, mnt.source))
        if status == 'unmounted':
            actions.append('mounted overlay of %d layers on %s' % (len(spec.lowers), target) if spec.driver == 'overlay'
                           else 'copied image %s into %s and bind-mounted it on %s (vfs)' % (spec.image, spec.upper, target))
            if not check_mode:
                fs.mount()
        after = dict(spec.describe(), mounted=True)
        before = dict(spec.describe(), mounted=status == 'mounted')
    else:
        spec = RootfsSpec(target, ['-'], upper, work, driver='any')
        fs = Rootfs(spec, kernel=cfg.kernel)
        mounted = fs.current() is not None
        if mounted:
            actions.append('unmounted %s' % target)
        if state == 'absent':
            actions += ['deleted %s' % d for d in (upper, work) if d and os.path.lexists(d)]
        if actions and not check_mode:
            if state == 'absent':
                fs.remove()
            else:
                fs.unmount()
        before = {'target': target, 'mounted': mounted, 'upper': upper if upper and os.path.lexists(upper) else None}
        after = {'target': target, 'mounted': False, 'upper': upper if state == 'unmounted' else None}
    return {'changed': bool(actions), 'actions': actions, 'rootfs': after, 'diff': {'before': before, 'after': after}}
