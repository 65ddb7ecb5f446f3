# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named volumes on disk: ``<data_root>/volumes/<name>/{volume.json,_data/}`` (Docker's layout).

``volume.json`` is the volume's record (schema_version, name, driver, labels, options,
created_at, populated), written atomically; ``_data/`` is what containers mount. A volume is
made complete in ``volumes/.new-<hex>/`` and renamed into place, and removed by a rename to
``volumes/.gone-<hex>/`` before the delete, so a crash at any point leaves either a whole
volume or none; dot names cannot be volume names, and :meth:`VolumeStore.cleanup` removes
them on the next run. The staging lives in ``volumes/`` itself rather than the data-root's
``tmp/`` because the image store's cleanup there removes any directory nobody holds a lock on.

Locks: ``volumes/.lock`` for create, remove, relabel and the first-use copy (copyup.py).
Whoever also needs the containers' lock (a removal must know no container uses the volume; a
container's creation creates its volumes) takes it first: containers, then volumes.
"""
from __future__ import annotations

import binascii
import contextlib
import os
import re
import shutil
import time

from ..errors import ConfigError, NsboxError
from ..kernel.fsutil import fsync_dir, locked, read_json, write_json
from .copyup import repair

SCHEMA_VERSION = 1
DRIVERS = ('local',)
# Docker's rule (moby volume/local: "[a-zA-Z0-9][a-zA-Z0-9_.-]"), at least two characters; 255 is NAME_MAX.
NAME_RE = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9_.-]{1,254}\Z')
DATA = '_data'
RECORD = 'volume.json'


class VolumeError(NsboxError):
    """A volume operation failed."""


def validate_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError('use', 'volume name %r' % (name,),
                          'names are 2-255 characters of [a-zA-Z0-9_.-] starting with a letter or digit (as Docker)')
    return name


def created_at():
    """RFC 3339 in UTC, seconds: the form Docker's volume inspect shows."""
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())


def data_path(data_root, name):
    """Where a volume's data lives (the bind source of its mounts)."""
    return os.path.join(data_root, 'volumes', name, DATA)


class Volume:
    """One volume's record and paths."""

    def __init__(self, store, name, record):
        self.store, self.name, self.record = store, name, record
        self.dir = os.path.join(store.root, name)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def data(self):
        return self.path(DATA)

    @property
    def labels(self):
        return dict(self.record.get('labels') or {})

    @property
    def populated(self):
        return bool(self.record.get('populated'))

    def write(self, **changes):
        """Change the record (atomic replace); call under the store's lock."""
        record = dict(self.record, **changes)
        record['schema_version'] = SCHEMA_VERSION
        write_json(self.path(RECORD), record, 0o644)
        self.record = record
        return record

    def inspect(self, used_by=None):
        """Docker's ``volume inspect`` fields, plus which containers use it (``UsedBy``)."""
        out = {'Name': self.name, 'Driver': self.record.get('driver') or 'local', 'Mountpoint': self.data,
               'Labels': self.labels, 'Options': dict(self.record.get('options') or {}), 'Scope': 'local',
               'CreatedAt': self.record.get('created_at')}
        if used_by is not None:
            out['UsedBy'] = list(used_by)
        return out


class VolumeStore:
    """The volumes of one data-root."""

    def __init__(self, data_root):
        self.data_root = data_root
        self.root = os.path.join(data_root, 'volumes')

    def ensure(self):
        os.makedirs(self.root, 0o711, exist_ok=True)

    @contextlib.contextmanager
    def lock(self):
        """Create, remove, relabel, populate (containers' lock first, when both are needed)."""
        self.ensure()
        with locked(os.path.join(self.root, '.lock')):
            yield

    def get(self, name):
        """The volume ``name``, or None. A directory without its record is an error (not ours to guess)."""
        validate_name(name)
        path = os.path.join(self.root, name)
        record = read_json(os.path.join(path, RECORD), 'the record of volume %s' % name, SCHEMA_VERSION)
        if record is None:
            if os.path.lexists(path):
                raise VolumeError('read', 'volume %s' % name, '%s exists but holds no %s: move it away' % (path, RECORD), path=path)
            return None
        return Volume(self, name, record)

    def all(self):
        out = []
        try:
            names = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return out
        for name in names:
            if NAME_RE.match(name) and os.path.isfile(os.path.join(self.root, name, RECORD)):
                out.append(self.get(name))
        return [v for v in out if v is not None]

    def create(self, name, driver='local', labels=None, options=None):
        """A complete volume renamed into place (call under lock())."""
        validate_name(name)
        self.ensure()
        work = os.path.join(self.root, '.new-' + binascii.hexlify(os.urandom(8)).decode())
        record = {'schema_version': SCHEMA_VERSION, 'name': name, 'driver': driver, 'labels': dict(labels or {}),
                  'options': dict(options or {}), 'created_at': created_at(), 'populated': False}
        try:
            os.mkdir(work, 0o701)
            os.mkdir(os.path.join(work, DATA), 0o755)
            os.chmod(os.path.join(work, DATA), 0o755)  # not the umask's
            write_json(os.path.join(work, RECORD), record, 0o644)
            os.rename(work, os.path.join(self.root, name))
            fsync_dir(self.root)
        except OSError as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise VolumeError.from_oserror('create', 'volume %s' % name, exc) from None
        return Volume(self, name, record)

    def remove(self, volume):
        """Rename out of sight, then delete (call under lock(), after checking no container uses it)."""
        gone = os.path.join(self.root, '.gone-' + binascii.hexlify(os.urandom(8)).decode())
        try:
            os.rename(volume.dir, gone)
            fsync_dir(self.root)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise VolumeError.from_oserror('remove', 'volume %s' % volume.name, exc) from None
        shutil.rmtree(gone, ignore_errors=True)

    def cleanup(self):
        """What an interrupted run left (call under lock()): half-made and half-removed volumes, half-done copies."""
        done = []
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return done
        for name in names:
            if name.startswith(('.new-', '.gone-')):
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
                done.append(name)
        for volume in self.all():
            if repair(volume):
                done.append(volume.name)
        return done
