# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bringing an image into the store from any source: a registry, an archive, a rootfs tar.

Every source answers two questions -- "the top manifest (or index) for this reference"
and "a stream of this blob" -- and :func:`ingest` does the rest once for all of them:
platform pick, verification, download outside locks, layer unpacking, and the tag commit.
"""
from __future__ import annotations

import contextlib
import time

from .manifest import INDEX_TYPES, ManifestError, check_config, check_manifest, detect_type, platform_str, select_platform
from .registry import RegistryClient
from .store import Incomplete, chain_ids, sha256_bytes

TAG_ATTEMPTS = 3  # a prune can take a part only in the instant before the hold: a second pass has it held


class Source:
    """Where an image comes from. ``describe`` names it in messages and records."""

    describe = 'source'

    def get_manifest(self, reference):
        """(bytes, declared media type) of the top manifest/index for ``reference`` (a tag, a digest, or None)."""
        raise NotImplementedError

    def open_blob(self, descriptor):
        """A readable binary stream of the blob; closed by the caller."""
        raise NotImplementedError


class RegistrySource(Source):
    def __init__(self, client, repository):
        self.client = client
        self.repository = repository
        self.describe = 'registry %s' % client.host

    def get_manifest(self, reference):
        return self.client.get_manifest(self.repository, reference)

    def open_blob(self, descriptor):
        return self.client.open_blob(self.repository, descriptor['digest'])


def registry_client(ref, host_config, auth=None, insecure=None, validate_certs=True, ca_path=None, client_cert=None, client_key=None):
    """A client for ``ref``'s registry, with the host config's insecure list, CA files and proxies."""
    regs = host_config['registries']
    return RegistryClient(
        ref.registry,
        insecure=insecure if insecure is not None else ref.registry in regs['insecure'],
        username=(auth or {}).get('username'), password=(auth or {}).get('password'),
        validate_certs=validate_certs, ca_file=ca_path or regs['ca_files'].get(ref.registry),
        client_cert=client_cert, client_key=client_key,
        proxies=host_config['proxies'] if any(host_config['proxies'].values()) else None)


class Plan:
    """What ingesting a reference means, found with the fewest reads; ``apply`` does it."""

    def __init__(self, store, source, key, reference, platform):
        self.store = store
        self.source = source
        self.key = key
        self.platform = platform
        top, declared = source.get_manifest(reference)
        top_digest = sha256_bytes(top)
        if reference and reference.startswith('sha256:') and top_digest != reference:
            raise ManifestError('verify', 'manifest %s' % reference, 'the content hashes to %s' % top_digest)
        doc, mt = detect_type(top, declared)
        self.index_digests = []
        self.blobs = {}  # manifest/index bytes to store, by digest
        if mt in INDEX_TYPES:
            desc = select_platform(doc, platform)
            self.index_digests.append(top_digest)
            self.blobs[top_digest] = top
            digest = desc['digest']
            data = store.read_blob(digest) if store.has_blob(digest) else source.get_manifest(digest)[0]
            if sha256_bytes(data) != digest:
                raise ManifestError('verify', 'manifest %s' % digest, 'the content hashes to %s' % sha256_bytes(data))
            doc, mt = detect_type(data, desc.get('mediaType'))
            if mt in INDEX_TYPES:
                raise ManifestError('use', 'manifest %s' % digest, 'nested indexes are not supported')
            self.manifest_digest, manifest = digest, data
        else:
            self.manifest_digest, manifest = top_digest, top
        self.blobs[self.manifest_digest] = manifest
        self.media_type = mt
        self.config_desc, self.layer_descs = check_manifest(doc)
        self.current = store.resolve(key)
        self.up_to_date = bool(self.current and self.current['manifest_digest'] == self.manifest_digest and store.complete(self.current))

    @property
    def changed(self):
        return not self.up_to_date

    def apply(self, progress=None):
        """Fetch, verify, unpack and tag; returns (record, actions).

        ``progress(layer digest, status, bytes done, bytes total)`` hears of each layer: ``exists``
        (already in the store), ``downloading`` (after every chunk), ``downloaded``, ``unpacked``.
        What the image needs is held (``Staging.hold``) before its presence is looked at, so a prune
        running meanwhile spares it; the tag checks under the store lock that the image is whole, and
        should a prune have taken a part in the instant before the hold, the parts are fetched again.
        """
        report = progress or (lambda *_a: None)
        stage = None
        try:
            with self.store.staging() as stage:
                stage.hold(blobs=list(self.blobs) + [self.config_desc['digest']] + [d['digest'] for d in self.layer_descs])
                record, counts, previous = self._fetch_and_tag(stage, report)
        except Exception:
            if stage is not None:  # its staging dir is gone: what it put in the store goes too, unless needed by now
                with contextlib.suppress(Exception):
                    self.store.discard(stage.committed)
            raise
        actions = []
        if any(counts):
            actions.append('fetched %d and unpacked %d of %d layers from %s' % (counts + (len(self.layer_descs), self.source.describe)))
        actions.append('tagged %s -> %s%s' % (self.key, self.manifest_digest, ' (was %s)' % previous if previous and previous != self.manifest_digest else ''))
        return record, actions

    def _fetch_and_tag(self, stage, report):
        for attempt in range(TAG_ATTEMPTS):
            config, diff_ids, chains, counts = self._fetch(stage, report)
            record = self._record(config, diff_ids, chains)
            try:
                return record, counts, self.store.tag(self.key, record)
            except Incomplete:
                if attempt + 1 == TAG_ATTEMPTS:
                    raise
        raise AssertionError('unreachable')  # pragma: no cover

    def _fetch(self, stage, report):
        """Every blob and layer of the image into the store; (config, diff_ids, chain ids, (fetched, unpacked))."""
        store = self.store
        for data in self.blobs.values():
            stage.put_blob(data)
        with self.source.open_blob(self.config_desc) as stream:
            stage.fetch_blob(self.config_desc['digest'], self.config_desc['size'], stream)
        config = store.read_json_blob(self.config_desc['digest'])
        diff_ids = check_config(config, len(self.layer_descs))
        chains = chain_ids(diff_ids)
        stage.hold(layers=chains)
        fetched = unpacked = 0
        for i, desc in enumerate(self.layer_descs):
            digest, size = desc['digest'], desc['size']
            if store.has_layer(chains[i]) and store.has_blob(digest):
                report(digest, 'exists', size, size)
                continue
            if not store.has_blob(digest):
                with self.source.open_blob(desc) as stream:
                    stage.fetch_blob(digest, size, stream, lambda n, d=digest, t=size: report(d, 'downloading', n, t))
                fetched += 1
            report(digest, 'downloaded', size, size)
            if stage.unpack_layer(digest, desc.get('mediaType'), diff_ids[i], chains[i - 1] if i else None, chains[i]):
                unpacked += 1
            report(digest, 'unpacked', size, size)
        return config, diff_ids, chains, (fetched, unpacked)

    def _record(self, config, diff_ids, chains):
        return {
            'manifest_digest': self.manifest_digest, 'media_type': self.media_type, 'index_digests': self.index_digests,
            'config_digest': self.config_desc['digest'], 'id': self.config_desc['digest'],
            'platform': platform_str({'os': config.get('os'), 'architecture': config.get('architecture'), 'variant': config.get('variant')}),
            'created': config.get('created'), 'source': self.source.describe, 'stored_at': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
            'size': sum(d['size'] for d in self.layer_descs),
            'layers': [{'digest': d['digest'], 'media_type': d.get('mediaType'), 'size': d['size'], 'diff_id': diff_ids[i], 'chain_id': chains[i]}
                       for i, d in enumerate(self.layer_descs)],
        }
