# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image sources on the host's disk: OCI layouts, oci-archives, docker-archives, rootfs tars.

- OCI layout (a directory) and oci-archive (a tar of one): ``index.json`` names the images;
  one is picked by its ``org.opencontainers.image.ref.name`` annotation, or the only one.
- docker-archive: Docker Engine 25+ writes an OCI layout plus ``manifest.json``: the OCI
  manifests are used as they are. The classic layout (``manifest.json`` with ``Config``,
  ``RepoTags`` and layer tar paths) has no manifest: one is made, with the layers as they
  are stored, so re-loading the same archive gives the same digest.
- rootfs tar: one layer as it is, and an image config made from the given options.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tarfile

from ..errors import NsboxError
from .ingest import Source
from .layer import open_layer
from .manifest import OCI_CONFIG, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, OCI_MANIFEST
from .store import sha256_bytes

REF_NAME = 'org.opencontainers.image.ref.name'
CONTAINERD_NAME = 'io.containerd.image.name'


class ArchiveError(NsboxError):
    """An archive or layout is unreadable or does not hold the asked-for image."""


def _json(data, what):
    try:
        return json.loads(data)
    except ValueError as exc:
        raise ArchiveError('read', what, 'not JSON: %s' % exc)


def _sniff(head):
    if head[:2] == b'\x1f\x8b':
        return OCI_LAYER_GZIP
    if head[:4] == b'\x28\xb5\x2f\xfd':
        return OCI_LAYER_ZSTD
    return OCI_LAYER


def _hash_stream(f):
    h, n, head = hashlib.sha256(), 0, b''
    while True:
        chunk = f.read(1 << 20)
        if not chunk:
            return 'sha256:' + h.hexdigest(), n, head
        if not head:
            head = chunk[:8]
        h.update(chunk)
        n += len(chunk)


class _Files:
    """Read access to a directory or a tar file by relative name."""

    def __init__(self, path):
        self.path = path
        self.tar = None
        try:
            if os.path.isdir(path):
                return
            self.tar = tarfile.open(path, 'r:*')  # pylint: disable=consider-using-with
            self.members = {os.path.normpath(m.name).lstrip('/'): m for m in self.tar.getmembers() if m.isfile()}
        except (OSError, tarfile.TarError) as exc:
            raise ArchiveError('open', 'archive %s' % path, str(exc))

    def exists(self, name):
        return os.path.isfile(os.path.join(self.path, name)) if self.tar is None else os.path.normpath(name) in self.members

    def open(self, name):
        if self.tar is None:
            full = os.path.realpath(os.path.join(self.path, name))
            if not full.startswith(os.path.realpath(self.path) + os.sep):
                raise ArchiveError('read', '%s in %s' % (name, self.path), 'the name leaves the layout')
            try:
                return open(full, 'rb')  # pylint: disable=consider-using-with
            except OSError as exc:
                raise ArchiveError.from_oserror('read', '%s in %s' % (name, self.path), exc)
        member = self.members.get(os.path.normpath(name))
        if member is None:
            raise ArchiveError('read', 'archive %s' % self.path, 'it has no file %s' % name)
        return self.tar.extractfile(member)

    def read(self, name):
        with self.open(name) as f:
            return f.read()

    def close(self):
        if self.tar is not None:
            self.tar.close()


class OCILayoutSource(Source):
    """An OCI layout directory, an oci-archive, or the OCI part of a docker-archive."""

    def __init__(self, files, describe):
        self.files = files
        self.describe = describe
        layout = _json(files.read('oci-layout'), 'oci-layout of %s' % describe) if files.exists('oci-layout') else {}
        if layout.get('imageLayoutVersion', '1.0.0') != '1.0.0':
            raise ArchiveError('read', describe, 'unsupported imageLayoutVersion %r' % layout.get('imageLayoutVersion'))
        self.index = _json(files.read('index.json'), 'index.json of %s' % describe)

    def names(self):
        return [(d.get('annotations') or {}).get(REF_NAME) or (d.get('annotations') or {}).get(CONTAINERD_NAME)
                for d in self.index.get('manifests', [])]

    def pick(self, wanted):
        """The index entry named ``wanted`` (a tag or a full reference), or the only entry."""
        entries = self.index.get('manifests') or []
        if wanted:
            for d in entries:
                ann = d.get('annotations') or {}
                names = {ann.get(REF_NAME), ann.get(CONTAINERD_NAME)}
                if wanted in names or any(n and (n.endswith(':' + wanted) or n.endswith('/' + wanted)) for n in names):
                    return d
        if len(entries) == 1:
            return entries[0]
        raise ArchiveError('find', 'image %r in %s' % (wanted, self.describe),
                           'it holds %d images named %s; say which with the name option' % (len(entries), [n for n in self.names() if n]))

    def get_manifest(self, reference):
        digest = reference if reference and reference.startswith('sha256:') else self.pick(reference)['digest']
        return self.files.read('blobs/sha256/' + digest.split(':', 1)[1]), None

    @contextlib.contextmanager
    def open_blob(self, descriptor):
        f = self.files.open('blobs/sha256/' + descriptor['digest'].split(':', 1)[1])
        try:
            yield f
        finally:
            f.close()


class DockerArchiveSource(Source):
    """A classic docker-archive: a manifest is made from ``manifest.json`` (see module doc)."""

    def __init__(self, files, describe):
        self.files = files
        self.describe = describe
        self.entries = _json(files.read('manifest.json'), 'manifest.json of %s' % describe)
        if not isinstance(self.entries, list) or not self.entries:
            raise ArchiveError('read', describe, 'manifest.json lists no images')
        self._layers = {}

    def pick(self, wanted):
        if wanted:
            for e in self.entries:
                tags = e.get('RepoTags') or []
                if wanted in tags or any(t.endswith(':' + wanted) or t.split(':')[0].endswith('/' + wanted) for t in tags):
                    return e
        if len(self.entries) == 1:
            return self.entries[0]
        raise ArchiveError('find', 'image %r in %s' % (wanted, self.describe), 'it holds %d images; say which with the name option' % len(self.entries))

    def get_manifest(self, reference):
        entry = self.pick(reference)
        config = self.files.read(entry['Config'])
        layers = []
        for name in entry.get('Layers') or []:
            with self.files.open(name) as f:
                digest, size, head = _hash_stream(f)
            self._layers[digest] = name
            layers.append({'mediaType': _sniff(head), 'digest': digest, 'size': size})
        self._config = (sha256_bytes(config), config)
        manifest = {'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                    'config': {'mediaType': OCI_CONFIG, 'digest': sha256_bytes(config), 'size': len(config)}, 'layers': layers}
        return json.dumps(manifest, sort_keys=True, separators=(',', ':')).encode(), OCI_MANIFEST

    @contextlib.contextmanager
    def open_blob(self, descriptor):
        if descriptor['digest'] == self._config[0]:
            yield io.BytesIO(self._config[1])
            return
        f = self.files.open(self._layers[descriptor['digest']])
        try:
            yield f
        finally:
            f.close()


def open_archive(path):
    """The right Source for a path: OCI layout dir, oci-archive, or docker-archive (either kind)."""
    files = _Files(path)
    describe = 'archive %s' % path
    if files.exists('index.json'):
        return OCILayoutSource(files, describe)
    if files.exists('manifest.json'):
        return DockerArchiveSource(files, describe)
    files.close()
    raise ArchiveError('load', path, 'it is neither an OCI layout, an oci-archive nor a docker-archive (no index.json or manifest.json)')


class RootfsSource(Source):
    """A plain rootfs tarball (optionally gzip) as a one-layer image with the given config."""

    def __init__(self, path, config, platform):
        self.path = path
        self.describe = 'rootfs %s' % path
        try:
            with open(path, 'rb') as f:
                digest, size, head = _hash_stream(f)
                media_type = _sniff(head)
                f.seek(0)
                diff_id = digest if media_type == OCI_LAYER else self._diff_id(f, media_type)
        except OSError as exc:
            raise ArchiveError.from_oserror('import', path, exc)
        self.layer = {'mediaType': media_type, 'digest': digest, 'size': size}
        img = {'architecture': platform['architecture'], 'os': platform['os'],
               'config': {k: v for k, v in config.items() if v}, 'rootfs': {'type': 'layers', 'diff_ids': [diff_id]}}
        if platform.get('variant'):
            img['variant'] = platform['variant']
        self.config = json.dumps(img, sort_keys=True, separators=(',', ':')).encode()
        self.config_digest = sha256_bytes(self.config)

    def _diff_id(self, f, media_type):
        if media_type != OCI_LAYER_GZIP:
            raise ArchiveError('import', self.path, 'only plain or gzip-compressed tarballs can be imported')
        stream = open_layer(f, media_type)
        while stream.read(1 << 20):
            pass
        return stream.diff_id

    def get_manifest(self, reference):
        manifest = {'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                    'config': {'mediaType': OCI_CONFIG, 'digest': self.config_digest, 'size': len(self.config)}, 'layers': [self.layer]}
        return json.dumps(manifest, sort_keys=True, separators=(',', ':')).encode(), OCI_MANIFEST

    @contextlib.contextmanager
    def open_blob(self, descriptor):
        if descriptor['digest'] == self.config_digest:
            yield io.BytesIO(self.config)
            return
        with open(self.path, 'rb') as f:
            yield f
