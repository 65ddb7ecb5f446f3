# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The content-addressed image store under the data-root (DESIGN D3).

- ``blobs/sha256/<hex>``: manifests, configs and layer blobs, each verified (digest and
  size) in ``tmp/`` and renamed into place, so a blob that exists is whole.
- ``layers/<chain-id hex>/``: one unpacked layer (``diff/``, an overlay lower dir, or with
  the vfs driver the whole tree up to that layer) and ``meta.json``; ``layers/l/<short>``
  links to ``diff/`` keep overlay mount options short. Unpacked in ``tmp/`` and renamed.
- ``images/index.json``: references -> manifest digest, and per manifest the image record.
  Changed only under the store lock, written atomically.

Downloads and unpacking happen outside the lock, in a staging dir of ``tmp/`` that holds an
flock while it is in use; :meth:`ImageStore.cleanup_tmp` removes staging dirs whose owner
died (kill -9 mid-pull), so the next run starts clean and continues.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time

from ..kernel import mountinfo
from ..errors import NsboxError
from ..kernel.fsutil import fsync_dir, locked, read_json, tree_size, write_json
from ..host.dataroot import DATA_ROOT_MODE, DATA_SUBDIRS, write_store
from . import layer as layerlib

INDEX_SCHEMA = 1
LAYER_SCHEMA = 1
_CHUNK = 1 << 20
HOLDS = 'holds.json'  # in a staging dir: what its ingest relies on (Staging.hold)


class StoreError(NsboxError):
    """The image store refused or failed an operation."""


class Incomplete(StoreError):
    """An image record whose blobs or layers are not all in the store: never recorded."""


def hex_of(digest):
    algo, _sep, hexpart = digest.partition(':')
    if algo != 'sha256' or len(hexpart) != 64 or not all(c in '0123456789abcdef' for c in hexpart):
        raise StoreError('use', 'digest %r' % digest, 'only sha256 digests are supported')
    return hexpart


def chain_ids(diff_ids):
    """OCI ChainIDs: chain[0] = diff[0]; chain[n] = sha256(chain[n-1] + ' ' + diff[n])."""
    out = []
    for diff in diff_ids:
        out.append(diff if not out else 'sha256:' + hashlib.sha256(('%s %s' % (out[-1], diff)).encode()).hexdigest())
    return out


def sha256_bytes(data):
    return 'sha256:' + hashlib.sha256(data).hexdigest()


def _rmtree(path):
    """Remove a tree that may hold read-only dirs (layer content)."""
    def onerror(func, p, _exc):
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
        with contextlib.suppress(OSError):
            func(p)
    shutil.rmtree(path, onerror=onerror)


class Staging:
    """A private dir in ``tmp/``, flocked while alive; ``commit_*`` move results into the store."""

    def __init__(self, store):
        self.store = store
        self.path = tempfile.mkdtemp(prefix='stage-', dir=store.tmp_dir)
        self.committed = {'blobs': [], 'layers': []}  # what this ingest put in the store: taken back should it fail
        self._fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def close(self):
        if os.path.isdir(self.path):
            _rmtree(self.path)
        os.close(self._fd)

    def hold(self, blobs=(), layers=()):
        """Say which blobs and layers this ingest relies on, before it looks whether they are present: a prune
        spares them while this staging dir is alive (its flock held), so what was found present stays so."""
        path = os.path.join(self.path, HOLDS)
        held = read_json(path, 'the holds of %s' % self.path, 1) or {'blobs': [], 'layers': []}
        held = {'blobs': sorted(set(held['blobs']) | set(blobs)), 'layers': sorted(set(held['layers']) | set(layers))}
        write_json(path, dict(held, schema_version=1), 0o600)

    def fetch_blob(self, digest, size, stream, progress=None):
        """Copy ``stream`` into the store as blob ``digest``, checking size and hash on the way.
        ``progress(bytes so far)`` is called after every chunk (``nsbox pull``'s bars)."""
        if self.store.has_blob(digest):
            return self.store.blob_path(digest)
        want = hex_of(digest)
        fd, tmp = tempfile.mkstemp(prefix='blob-', dir=self.path)
        h, n = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, 'wb') as f:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    n += len(chunk)
                    if size is not None and n > size:
                        raise StoreError('fetch', 'blob %s' % digest, 'more than the %d bytes its descriptor declares' % size)
                    h.update(chunk)
                    f.write(chunk)
                    if progress is not None:
                        progress(n)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise StoreError.from_oserror('store', 'blob %s' % digest, exc)
        if size is not None and n != size:
            raise StoreError('fetch', 'blob %s' % digest, 'got %d bytes, its descriptor declares %d' % (n, size))
        if h.hexdigest() != want:
            raise StoreError('verify', 'blob %s' % digest, 'content hashes to sha256:%s' % h.hexdigest())
        self.committed['blobs'].append(digest)
        return self.store.commit_blob(tmp, digest)

    def put_blob(self, data):
        digest = sha256_bytes(data)
        if not self.store.has_blob(digest):
            fd, tmp = tempfile.mkstemp(prefix='blob-', dir=self.path)
            with os.fdopen(fd, 'wb') as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            self.committed['blobs'].append(digest)
            self.store.commit_blob(tmp, digest)
        return digest

    def unpack_layer(self, blob_digest, media_type, diff_id, parent_chain, chain_id):
        """Unpack a stored layer blob as layer ``chain_id`` unless it is already there."""
        if self.store.has_layer(chain_id):
            return False
        work = tempfile.mkdtemp(prefix='layer-', dir=self.path)
        diff = os.path.join(work, 'diff')
        driver = self.store.storage_driver
        if driver == 'vfs' and parent_chain:
            layerlib.copy_tree(self.store.layer_diff(parent_chain), diff)
        else:
            os.mkdir(diff, 0o755)
        with open(self.store.blob_path(blob_digest), 'rb') as raw:
            stream = layerlib.open_layer(raw, media_type)
            layerlib.apply_layer(stream, diff, whiteouts='apply' if driver == 'vfs' else 'overlay')
            while stream.read(_CHUNK):
                pass
        if stream.diff_id != diff_id:
            raise StoreError('verify', 'layer %s' % blob_digest,
                             'uncompressed content hashes to %s, the image config says %s' % (stream.diff_id, diff_id))
        short = hashlib.sha256(chain_id.encode()).hexdigest()[:26]
        write_json(os.path.join(work, 'meta.json'), {
            'schema_version': LAYER_SCHEMA, 'chain_id': chain_id, 'diff_id': diff_id, 'parent': parent_chain,
            'blob': blob_digest, 'media_type': media_type, 'size': stream.size, 'link': short, 'driver': driver})
        if self.store.commit_layer(work, chain_id, short):
            self.committed['layers'].append(chain_id)
            return True
        return False


class ImageStore:
    """One data-root's images, blobs and layers."""

    def __init__(self, data_root, storage_driver=None):
        self.root = data_root
        self.blobs_dir = os.path.join(data_root, 'blobs', 'sha256')
        self.layers_dir = os.path.join(data_root, 'layers')
        self.links_dir = os.path.join(self.layers_dir, 'l')
        self.index_path = os.path.join(data_root, 'images', 'index.json')
        self.tmp_dir = os.path.join(data_root, 'tmp')
        self.lock_path = os.path.join(data_root, 'store.lock')
        store = read_json(os.path.join(data_root, 'store.json'), 'store %s' % data_root, 1) or {}
        self.storage_driver = storage_driver or store.get('storage_driver') or 'overlay'
        if store.get('storage_driver') and storage_driver and store['storage_driver'] != storage_driver:
            raise StoreError('open', 'the image store in %s' % data_root,
                             'it uses the %s storage driver, not %s' % (store['storage_driver'], storage_driver))

    # -- set-up and crash repair ---------------------------------------------------------
    def ensure(self):
        """Create the store's directories (the host module normally did) and repair tmp/."""
        os.makedirs(self.root, DATA_ROOT_MODE, exist_ok=True)
        for sub, mode in DATA_SUBDIRS:
            os.makedirs(os.path.join(self.root, sub), mode, exist_ok=True)
        if not os.path.exists(os.path.join(self.root, 'store.json')):
            write_store(self.root, self.storage_driver)
        self.cleanup_tmp()
        return self

    def cleanup_tmp(self):
        """Remove staging dirs whose process died (their flock is free)."""
        removed = []
        for name in os.listdir(self.tmp_dir):
            path = os.path.join(self.tmp_dir, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    removed.append(name)
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue  # a live pull owns it
            try:
                _rmtree(path)
                removed.append(name)
            finally:
                os.close(fd)
        return removed

    def held(self):
        """(blobs, layers) that live ingests hold (:meth:`Staging.hold`): a staging dir whose flock another process
        (or another open of this one) holds. Read under the store lock by prune."""
        blobs, layers = set(), set()
        for name in os.listdir(self.tmp_dir):
            path = os.path.join(self.tmp_dir, name)
            if not name.startswith('stage-') or not os.path.isfile(os.path.join(path, HOLDS)):
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                continue  # its ingest is gone: nothing held
            except BlockingIOError:
                held = read_json(os.path.join(path, HOLDS), 'the holds of %s' % path, 1) or {}
                blobs.update(held.get('blobs', ()))
                layers.update(held.get('layers', ()))
            finally:
                os.close(fd)
        return blobs, layers

    @contextlib.contextmanager
    def staging(self):
        stage = Staging(self)
        try:
            yield stage
        finally:
            stage.close()

    @contextlib.contextmanager
    def lock(self):
        with locked(self.lock_path):
            yield

    # -- blobs ---------------------------------------------------------------------------
    def blob_path(self, digest):
        return os.path.join(self.blobs_dir, hex_of(digest))

    def has_blob(self, digest):
        return os.path.isfile(self.blob_path(digest))

    def read_blob(self, digest):
        try:
            with open(self.blob_path(digest), 'rb') as f:
                return f.read()
        except OSError as exc:
            raise StoreError.from_oserror('read', 'blob %s' % digest, exc)

    def read_json_blob(self, digest):
        try:
            return json.loads(self.read_blob(digest))
        except ValueError as exc:
            raise StoreError('parse', 'blob %s' % digest, 'not JSON: %s' % exc)

    def commit_blob(self, tmp, digest):
        dest = self.blob_path(digest)
        os.chmod(tmp, 0o600)
        os.rename(tmp, dest)  # same content if a concurrent pull won: replacing it is harmless
        fsync_dir(self.blobs_dir)
        return dest

    # -- layers --------------------------------------------------------------------------
    def layer_path(self, chain_id):
        return os.path.join(self.layers_dir, hex_of(chain_id))

    def layer_diff(self, chain_id):
        return os.path.join(self.layer_path(chain_id), 'diff')

    def has_layer(self, chain_id):
        return os.path.isfile(os.path.join(self.layer_path(chain_id), 'meta.json'))

    def layer_meta(self, chain_id):
        return read_json(os.path.join(self.layer_path(chain_id), 'meta.json'), 'layer %s' % chain_id, LAYER_SCHEMA)

    def commit_layer(self, work, chain_id, short):
        dest = self.layer_path(chain_id)
        link = os.path.join(self.links_dir, short)
        try:
            os.rename(work, dest)
        except OSError:
            if self.has_layer(chain_id):
                return False  # a concurrent pull committed it first: ours goes with the staging dir
            raise
        if not os.path.islink(link):
            with contextlib.suppress(FileExistsError):
                os.symlink(os.path.join('..', hex_of(chain_id), 'diff'), link)
        fsync_dir(self.layers_dir)
        return True

    # -- index ---------------------------------------------------------------------------
    def index(self):
        data = read_json(self.index_path, 'image index %s' % self.index_path, INDEX_SCHEMA)
        return data or {'schema_version': INDEX_SCHEMA, 'references': {}, 'images': {}}

    def _write_index(self, data):
        data['schema_version'] = INDEX_SCHEMA
        write_json(self.index_path, data, 0o600)

    def resolve(self, key):
        """The image record a reference key (``registry/repo:tag`` or ``...@digest``) names, or None."""
        idx = self.index()
        digest = idx['references'].get(key)
        return idx['images'].get(digest) if digest else None

    def complete(self, record):
        """True when every blob and layer of an image record is present."""
        return bool(record) and not self.missing(record)

    def missing(self, record):
        """The blobs and layers of an image record that are not in the store (empty: the image is whole)."""
        blobs = [record['manifest_digest'], record['config_digest']] + list(record.get('index_digests') or ())
        blobs += [layer['digest'] for layer in record['layers']]
        return [d for d in blobs if not self.has_blob(d)] + [lay['chain_id'] for lay in record['layers'] if not self.has_layer(lay['chain_id'])]

    def tag(self, key, record):
        """Point ``key`` at ``record`` (under the store lock); returns the previous manifest digest. An image
        that is not whole is never recorded (:class:`Incomplete`): what it lacks is checked under the lock."""
        with self.lock():
            gone = self.missing(record)
            if gone:
                raise Incomplete('record', 'image %s' % key, 'its %s went while it was stored (a prune?): %s'
                                 % ('part' if len(gone) == 1 else '%d parts' % len(gone), ', '.join(gone[:3])))
            idx = self.index()
            previous = idx['references'].get(key)
            idx['images'][record['manifest_digest']] = record
            idx['references'][key] = record['manifest_digest']
            self._write_index(idx)
        return previous

    def untag(self, keys, in_use=()):
        """Remove references; images no longer referenced leave the index unless a container
        uses them (``in_use``: manifest digests; they stay, untagged, as Docker keeps them). Returns removed keys."""
        with self.lock():
            idx = self.index()
            removed = [k for k in keys if idx['references'].pop(k, None)]
            live = set(idx['references'].values()) | set(in_use)
            for digest in [d for d in idx['images'] if d not in live]:
                del idx['images'][digest]
            if removed:
                self._write_index(idx)
        return removed

    def images(self):
        idx = self.index()
        refs = {}
        for key, digest in idx['references'].items():
            refs.setdefault(digest, []).append(key)
        return [dict(rec, references=sorted(refs.get(d, []))) for d, rec in sorted(idx['images'].items())]

    # -- garbage -------------------------------------------------------------------------
    def mounted_layers(self, mountinfo_path='/proc/self/mountinfo'):
        """Chain IDs of layers in use as overlay lower dirs (short links or full paths): never garbage while mounted."""
        out = set()
        for mnt in mountinfo.read(mountinfo_path):
            lower = mnt.super_option('lowerdir') if mnt.fstype == 'overlay' else None
            for entry in re.split(r'(?<!\\):', lower or ''):
                entry = entry.replace('\\:', ':')
                path = os.path.join(self.layers_dir, entry) if entry.startswith('l/') else entry
                real = os.path.realpath(path)
                if os.path.dirname(os.path.dirname(real)) == os.path.realpath(self.layers_dir) and real.endswith('/diff'):
                    out.add('sha256:' + os.path.basename(os.path.dirname(real)))
        return out

    def garbage(self, extra_layers=()):
        """Blobs and layers no image, no mounted root filesystem, no live ingest (nor ``extra_layers``, e.g.
        containers') refers to."""
        idx = self.index()
        blobs, layers = self.held()
        layers |= set(extra_layers) | self.mounted_layers()
        for rec in idx['images'].values():
            blobs.update([rec['manifest_digest'], rec['config_digest']] + [lay['digest'] for lay in rec['layers']])
            blobs.update(rec.get('index_digests', []))
            layers.update(lay['chain_id'] for lay in rec['layers'])
        dead_blobs = ['sha256:' + h for h in os.listdir(self.blobs_dir) if 'sha256:' + h not in blobs]
        dead_layers = ['sha256:' + h for h in os.listdir(self.layers_dir) if h != 'l' and 'sha256:' + h not in layers]
        return dead_blobs, dead_layers

    def discard(self, committed):
        """What a failed ingest put in the store (``Staging.committed``), unless an image, a live ingest or a mount
        needs it by now: a pull that failed (a full disk, a lost connection) leaves the store as it was."""
        with self.lock():
            dead_blobs, dead_layers = self.garbage()
            self._delete([d for d in committed['blobs'] if d in dead_blobs], [c for c in committed['layers'] if c in dead_layers])

    def prune(self, extra_layers=()):
        """Delete unreferenced blobs and layers (under the lock); returns what went and the bytes freed."""
        with self.lock():
            dead_blobs, dead_layers = self.garbage(extra_layers)
            freed = sum(tree_size(self.blob_path(d)) for d in dead_blobs) + sum(tree_size(self.layer_path(c)) for c in dead_layers)
            self._delete(dead_blobs, dead_layers)
        return {'blobs': dead_blobs, 'layers': dead_layers, 'size': freed}

    def _delete(self, dead_blobs, dead_layers):
        """Blobs and layers gone (under the lock); a layer is renamed away first: a half-removed one never looks present."""
        for digest in dead_blobs:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.blob_path(digest))
        for chain in dead_layers:
            path = self.layer_path(chain)
            meta = self.layer_meta(chain) if self.has_layer(chain) else None
            doomed = os.path.join(self.tmp_dir, 'gone-%s-%d' % (hex_of(chain)[:12], time.time_ns()))
            os.rename(path, doomed)
            if meta and meta.get('link'):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(self.links_dir, meta['link']))
            _rmtree(doomed)
