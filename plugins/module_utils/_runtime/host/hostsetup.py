# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converging a host's nsbox set-up: config file, data-root, state dir (DESIGN D3, D5).

:class:`HostSetup` reads what is there, says what differs (:meth:`plan`) and applies
exactly that (:meth:`apply`). The config file is written last, so it never names a
data-root that does not exist yet.

Pointing the config at another data-root while the configured one holds images, layers,
containers or volumes would leave them behind, out of reach: that is refused unless the caller
asks for a move (``move_data_root``). The move is a rename on the same filesystem, else a copy
that keeps owners, modes, xattrs, hard links and device nodes (``cp -a``), then removal of the old
one; it is refused while a container of the old data-root runs. Paths in the store are relative
to the data-root (D3), so nothing inside needs rewriting.
"""
from __future__ import annotations

import errno
import os
import shutil
import subprocess

from . import config as hostconfig
from ..errors import ConfigError, NsboxError
from ..kernel.fsutil import makedirs, read_json, write_json
from .dataroot import DATA_ROOT_MODE, DATA_SUBDIRS, STATE_DIR_MODE, STORE_SCHEMA, data_root_in_use, mode_of, store_in_use, write_store  # noqa: F401


def running_containers(cfg):
    """Names of the containers of ``cfg``'s data-root that run now (status re-derived from the kernel)."""
    # Imported here: the container code is start-up cost only a data-root move pays.
    from ..container import converge  # pylint: disable=import-outside-toplevel
    return sorted(c.name for c in converge.open_store(cfg).all() if c.status()['running'])


def move_data_root(src, dest):
    """Move a data-root: a rename on one filesystem, else ``cp -a`` of its content and removal (an empty ``dest`` may exist).

    A data-root that is a mount point (a disk of its own) cannot be renamed (EBUSY): its content is
    copied and removed, and the empty mount point stays.
    """
    if os.path.isdir(dest):
        if os.listdir(dest):
            raise ConfigError('move', 'the data-root %s to %s' % (src, dest), '%s exists and is not empty' % dest)
    else:
        os.makedirs(dest, DATA_ROOT_MODE)
    os.rmdir(dest)
    try:
        os.rename(src, dest)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EBUSY):
            raise
    os.mkdir(dest, DATA_ROOT_MODE)
    names = os.listdir(src)
    proc = subprocess.run(['cp', '-a', '--'] + [os.path.join(src, n) for n in names] + [dest],
                          capture_output=True, text=True, check=False) if names else None
    if proc is not None and proc.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        raise ConfigError('move', 'the data-root %s to %s' % (src, dest), 'cp -a failed: %s' % proc.stderr.strip())
    shutil.copystat(src, dest)
    for name in names:
        path = os.path.join(src, name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)
    try:
        os.rmdir(src)
    except OSError as exc:
        if exc.errno != errno.EBUSY:  # a mount point stays, empty
            raise


class HostSetup:
    """The desired host set-up (a :class:`HostConfig`) against the host as it is."""

    def __init__(self, desired, path=None, move_data_root=False):
        self.desired = desired
        self.path = path or hostconfig.config_path()
        self.current = hostconfig.load(self.path)
        self.move_data_root = move_data_root

    def move_source(self):
        """The configured data-root when the desired one is another and the configured one is in use, else None."""
        if not self.current.exists:
            return None
        old, new = self.current.data_root, self.desired.data_root
        if os.path.realpath(old) == os.path.realpath(new) or not data_root_in_use(old):
            return None
        return old

    def _plan_move(self):
        old = self.move_source()
        if old is None:
            return []
        what = 'the data-root %s to %s' % (old, self.desired.data_root)
        if not self.move_data_root:
            raise ConfigError('move', what, '%s holds images, containers or volumes; set data_root_migrate (the host role: '
                              'nsbox_data_root_migrate: true) to stop its containers and move it, or keep data_root %s' % (old, old))
        if os.path.isdir(self.desired.data_root) and os.listdir(self.desired.data_root):
            raise ConfigError('move', what, '%s exists and is not empty' % self.desired.data_root)
        running = running_containers(self.current)
        if running:
            raise ConfigError('move', what, 'containers run from it (%s): stop them first' % ', '.join(running))
        return [('move', 'move data-root %s to %s' % (old, self.desired.data_root))]

    def _store_path(self):
        return os.path.join(self.desired.data_root, 'store.json')

    def _store(self):
        return read_json(self._store_path(), 'store %s' % self._store_path(), STORE_SCHEMA)

    def plan(self):
        """A list of ``(kind, description)`` changes; empty when the host is converged."""
        changes = self._plan_move()
        if changes:
            # After the move the new data-root is the old one's content: only the config remains to write.
            return changes + [('config', 'write %s' % self.path)]
        root = self.desired.data_root
        dirs = [(root, DATA_ROOT_MODE), (self.desired.state_dir, STATE_DIR_MODE)]
        dirs += [(os.path.join(root, sub), mode) for sub, mode in DATA_SUBDIRS]
        for path, mode in dirs:
            have = mode_of(path) if os.path.isdir(path) else None
            if have is None:
                changes.append(('dir', 'create %s (mode %04o)' % (path, mode)))
            elif have != mode:
                changes.append(('dir', 'chmod %s %04o -> %04o' % (path, have, mode)))
        store = self._store()
        driver = self.desired['storage_driver']
        if store is None:
            changes.append(('store', 'initialise %s (storage_driver %s)' % (self._store_path(), driver)))
        elif store.get('storage_driver') != driver:
            if store_in_use(root):
                raise ConfigError('change', 'the storage driver of %s' % root,
                                  'the store was initialised with %r and holds layers or containers; remove them '
                                  'or use another data_root' % store.get('storage_driver'))
            changes.append(('store', 'switch %s to storage_driver %s' % (self._store_path(), driver)))
        if not self.current.exists or self.current.to_file() != self.desired.to_file():
            changes.append(('config', 'write %s' % self.path))
        return changes

    def apply(self):
        """Make the host match; returns the changes made (as :meth:`plan` listed them)."""
        changes = self.plan()
        kinds = {kind for kind, _desc in changes}
        try:
            if 'move' in kinds:
                move_data_root(self.current.data_root, self.desired.data_root)
                changes += [c for c in self.plan() if c[0] != 'config']  # a mode or the store driver may differ still
                kinds = {kind for kind, _desc in changes}
            if 'dir' in kinds:
                makedirs(self.desired.data_root, DATA_ROOT_MODE)
                makedirs(self.desired.state_dir, STATE_DIR_MODE)
                for sub, mode in DATA_SUBDIRS:
                    makedirs(os.path.join(self.desired.data_root, sub), mode)
            if 'store' in kinds:
                write_store(self.desired.data_root, self.desired['storage_driver'])
            if 'config' in kinds:
                os.makedirs(os.path.dirname(self.path), 0o755, exist_ok=True)
                write_json(self.path, self.desired.to_file(), 0o644)
        except OSError as exc:
            raise NsboxError.from_oserror('set up', 'nsbox on this host', exc)
        self.current = hostconfig.load(self.path)
        return changes
