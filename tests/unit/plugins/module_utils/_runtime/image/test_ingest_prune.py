# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A prune during an ingest (issue 19 item 2): an in-flight ingest holds what it relies on and prune spares it, and an
image whose parts are not all in the store is never recorded. Real store on disk, an image made in memory."""
from __future__ import annotations

import io
import json
import os
import shutil
import tarfile

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import ingest
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.manifest import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.store import ImageStore, Incomplete, chain_ids, sha256_bytes


def layer(name):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w') as tar:
        data = ('content of %s\n' % name).encode()
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


class MemorySource(ingest.Source):
    """An image of ``n`` layers in memory; ``on_blob(digest)`` runs before each blob is handed out."""

    describe = 'memory'

    def __init__(self, n, on_blob=None):
        self.layers = [layer('f%d' % i) for i in range(n)]
        self.config = json.dumps({'os': 'linux', 'architecture': 'amd64',
                                  'rootfs': {'type': 'layers', 'diff_ids': [sha256_bytes(data) for data in self.layers]}}).encode()
        self.blobs = {sha256_bytes(b): b for b in self.layers + [self.config]}
        self.manifest = json.dumps({'schemaVersion': 2, 'mediaType': OCI_MANIFEST,
                                    'config': {'mediaType': OCI_CONFIG, 'digest': sha256_bytes(self.config), 'size': len(self.config)},
                                    'layers': [{'mediaType': OCI_LAYER, 'digest': sha256_bytes(b), 'size': len(b)} for b in self.layers]}).encode()
        self.on_blob = on_blob or (lambda digest: None)

    def get_manifest(self, reference):
        return self.manifest, OCI_MANIFEST

    def open_blob(self, descriptor):
        self.on_blob(descriptor['digest'])
        return io.BytesIO(self.blobs[descriptor['digest']])


@pytest.fixture(name='store')
def image_store(tmp_path):
    return ImageStore(str(tmp_path / 'root'), 'overlay').ensure()


def pull(store, source, key='memory/app:1'):
    return ingest.Plan(store, source, key, None, None).apply()


def test_a_prune_during_an_ingest_spares_what_it_holds(store):
    pruned = []
    source = MemorySource(4, on_blob=lambda digest: pruned.append(store.prune()))
    record, _actions = pull(store, source)
    assert store.missing(record) == [] and store.resolve('memory/app:1') == record
    assert len(pruned) == 5 and not any(p['blobs'] or p['layers'] for p in pruned)  # every prune found nothing to take
    assert store.held() == (set(), set())  # the ingest is over: nothing held
    store.untag(['memory/app:1'])
    assert len(store.prune()['layers']) == 4  # unreferenced and unheld: gone


def test_a_part_taken_before_the_hold_is_fetched_again(store, monkeypatch):
    """The instant a prune had listed its garbage before the hold: a layer found present goes right after."""
    source = MemorySource(3)
    pull(store, source, 'memory/old:1')
    store.untag(['memory/old:1'])  # its layers are garbage now, and a new image shares them
    chains = chain_ids([sha256_bytes(b) for b in source.layers])
    real, taken = store.has_layer, []

    def has_layer(chain):
        present = real(chain)
        if present and chain == chains[1] and not taken:
            taken.append(chain)
            shutil.rmtree(store.layer_path(chain))  # as that prune's delete, after the check said present
        return present
    monkeypatch.setattr(store, 'has_layer', has_layer)
    record, actions = pull(store, source, 'memory/new:1')
    assert taken and store.missing(record) == [] and store.resolve('memory/new:1') == record
    assert 'unpacked 1 of 3 layers' in actions[0], actions


def test_an_incomplete_image_is_never_recorded(store):
    source = MemorySource(2)
    record, _actions = pull(store, source)
    before = store.index()
    shutil.rmtree(store.layer_path(record['layers'][1]['chain_id']))
    os.unlink(store.blob_path(record['layers'][0]['digest']))
    with pytest.raises(Incomplete, match='its 2 parts went'):
        store.tag('memory/other:1', record)
    assert store.index() == before and not store.complete(record)
    record2, actions = pull(store, source)  # a pull repairs it
    assert store.complete(record2) and 'fetched 1 and unpacked 1 of 2 layers' in actions[0], actions


def test_a_failed_ingest_takes_back_what_it_stored(store):
    """A pull that fails midway (a full disk, a lost connection) used to leave its blobs and layers until a prune."""
    kept = MemorySource(2)
    pull(store, kept, 'memory/kept:1')
    before = (sorted(os.listdir(store.blobs_dir)), sorted(os.listdir(store.layers_dir)))

    class Broken(MemorySource):
        def open_blob(self, descriptor):
            if descriptor['digest'] == sha256_bytes(self.layers[2]):
                raise OSError(28, 'No space left on device')
            return super().open_blob(descriptor)
    with pytest.raises(OSError):  # its first two layers are the kept image's (the same bytes): those stay
        pull(store, Broken(3), 'memory/broken:1')
    assert (sorted(os.listdir(store.blobs_dir)), sorted(os.listdir(store.layers_dir))) == before
    assert os.listdir(store.tmp_dir) == [] and store.resolve('memory/kept:1') is not None
