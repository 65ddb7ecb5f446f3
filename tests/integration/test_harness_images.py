# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fixture images are real: valid OCI layouts and archives that umoci and skopeo read as intended."""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import tarfile

import pytest

from harness import images


@pytest.fixture(scope='module')
def fixtures(tmp_path_factory):
    return images.FixtureImages(tmp_path_factory.mktemp('images')).build()


def _blob(layout, digest):
    with open(os.path.join(layout, 'blobs', 'sha256', digest.split(':', 1)[1]), 'rb') as f:
        data = f.read()
    assert 'sha256:' + hashlib.sha256(data).hexdigest() == digest
    return data


def _inspect(ref, *flags):
    return json.loads(images.skopeo('inspect', *(flags + (ref,))).stdout)


def test_busybox_rootfs_is_deterministic_and_complete(tmp_path):
    first = images.build_busybox_rootfs(str(tmp_path / 'a.tar'))
    assert images.build_busybox_rootfs(str(tmp_path / 'b.tar')) == first
    with tarfile.open(str(tmp_path / 'a.tar')) as tar:
        members = tar.getmembers()
        by_name = {m.name.rstrip('/'): m for m in members}
        assert by_name['bin/busybox'].isfile() and by_name['bin/busybox'].mode == 0o755
        assert by_name['bin/sh'].issym() and by_name['bin/sh'].linkname == '/bin/busybox'
        assert by_name['usr/bin/wget'].issym()
        assert by_name['tmp'].isdir() and by_name['tmp'].mode == 0o1777
        assert tar.extractfile('var/www/index.html').read() == images.HELLO
        assert b'root:x:0:0:' in tar.extractfile('etc/passwd').read()
    assert {(m.uid, m.gid, m.mtime) for m in members} == {(0, 0, images.MTIME)}
    names = [m.name.rstrip('/') for m in members]
    assert names == sorted(names)


def test_oci_layout_digests_sizes_and_diff_ids(fixtures):
    layout = fixtures.oci_dir
    with open(os.path.join(layout, 'oci-layout')) as f:
        assert json.load(f) == {'imageLayoutVersion': '1.0.0'}
    with open(os.path.join(layout, 'index.json')) as f:
        refs = {d['annotations'][images.REF_NAME]: d for d in json.load(f)['manifests']}
    assert sorted(refs) == ['busybox', 'busybox-amd64', 'busybox-arm64', 'multilayer']
    index = json.loads(_blob(layout, refs['busybox']['digest']))
    assert index['mediaType'] == images.OCI_INDEX
    assert [m['platform']['architecture'] for m in index['manifests']] == ['amd64', 'arm64']
    media_types = set()
    for ref in ('busybox-amd64', 'busybox-arm64', 'multilayer'):
        desc = refs[ref]
        assert desc['digest'] == fixtures.digests[ref]
        raw = _blob(layout, desc['digest'])
        assert len(raw) == desc['size']
        manifest = json.loads(raw)
        assert manifest['mediaType'] == images.OCI_MANIFEST and manifest['config']['mediaType'] == images.OCI_CONFIG
        config = json.loads(_blob(layout, manifest['config']['digest']))
        assert config['architecture'] == desc['platform']['architecture'] and config['os'] == 'linux'
        assert config['config']['Cmd'] and config['config']['Env'] and config['config']['WorkingDir']
        diff_ids = []
        for layer in manifest['layers']:
            data = _blob(layout, layer['digest'])
            assert len(data) == layer['size']
            media_types.add(layer['mediaType'])
            plain = gzip.decompress(data) if layer['mediaType'] == images.OCI_LAYER_GZIP else data
            diff_ids.append('sha256:' + hashlib.sha256(plain).hexdigest())
        assert config['rootfs'] == {'type': 'layers', 'diff_ids': diff_ids}
        assert len(config['history']) == len(diff_ids)
    assert media_types == {images.OCI_LAYER_GZIP, images.OCI_LAYER_TAR}
    assert diff_ids[0] == fixtures.busybox_diff_id  # multilayer's base is the busybox layer


def test_umoci_unpacks_multilayer_with_whiteouts(fixtures, tmp_path):
    bundle = str(tmp_path / 'bundle')
    subprocess.run(['umoci', 'unpack', '--image', fixtures.oci_dir + ':multilayer', bundle], check=True, capture_output=True)
    rootfs = os.path.join(bundle, 'rootfs')
    assert images.check_multilayer_rootfs(rootfs) == []
    assert sorted(os.listdir(os.path.join(rootfs, 'data', 'olddir'))) == ['new.txt']  # the opaque dir was replaced
    if os.geteuid() == 0:  # the rootfs really runs: busybox's shell in a chroot
        out = subprocess.run(['chroot', rootfs, '/bin/sh', '-c', 'cat /data/keep.txt; ls /usr/local/bin'], check=True,
                             capture_output=True, text=True).stdout
        assert out == 'keep v2\nsuid\n'


def test_checker_sees_a_naive_extraction(fixtures, tmp_path):
    """Layers untarred one over another (no whiteout handling) must fail the check: it is not vacuous."""
    with open(os.path.join(fixtures.oci_dir, 'blobs', 'sha256', fixtures.digests['multilayer'][7:])) as f:
        manifest = json.load(f)
    for layer in manifest['layers']:
        subprocess.run(['tar', '-C', str(tmp_path), '-xf', os.path.join(fixtures.oci_dir, 'blobs', 'sha256', layer['digest'][7:])],
                       check=True)
    problems = images.check_multilayer_rootfs(str(tmp_path))
    assert 'data/remove-me.txt should be deleted' in problems
    assert any(p.startswith('whiteout left:') for p in problems)


def test_docker_archives_read_by_skopeo(fixtures):
    for path in (fixtures.docker_archive, fixtures.docker_archive_oci):
        info = _inspect('docker-archive:' + path)
        assert info['Architecture'] == 'amd64' and info['Os'] == 'linux'
        assert info['Layers'] == [fixtures.busybox_diff_id]  # docker save layers are plain tars
    info = _inspect('docker-archive:' + fixtures.multilayer_docker_archive)
    assert len(info['Layers']) == 4 and info['Env'][-1] == 'NSBOX_FIXTURE=multilayer'
    with tarfile.open(fixtures.docker_archive) as tar:
        classic = set(tar.getnames())
        manifest = json.load(tar.extractfile('manifest.json'))
    assert {'manifest.json', 'repositories'} <= classic and manifest[0]['Layers'][0].endswith('/layer.tar')
    assert manifest[0]['RepoTags'] == ['nsbox/busybox:latest']
    with tarfile.open(fixtures.docker_archive_oci) as tar:
        oci = set(tar.getnames())
        manifest = json.load(tar.extractfile('manifest.json'))
        index = json.load(tar.extractfile('index.json'))
    assert {'oci-layout', 'index.json', 'manifest.json', 'repositories'} <= oci
    assert manifest[0]['Layers'] == ['blobs/sha256/' + fixtures.busybox_diff_id[7:]]
    assert index['manifests'][0]['annotations']['io.containerd.image.name'] == 'docker.io/nsbox/busybox:latest'


def test_oci_archive_read_by_skopeo(fixtures):
    info = _inspect('oci-archive:' + fixtures.oci_archive)
    assert info['Architecture'] == 'amd64' and info['Digest'] == fixtures.digests['busybox']
    raw = json.loads(images.skopeo('inspect', '--raw', 'oci-archive:' + fixtures.oci_archive).stdout)
    assert raw['mediaType'] == images.OCI_INDEX
    assert _inspect('oci-archive:' + fixtures.oci_archive, '--override-arch', 'arm64')['Architecture'] == 'arm64'


def test_cache_is_reused_and_skopeo_state_stays_private(fixtures):
    stamp = os.path.join(fixtures.cache_dir, 'fixtures.json')
    before = os.stat(stamp).st_mtime_ns, os.stat(fixtures.docker_archive).st_mtime_ns
    again = images.FixtureImages(fixtures.cache_dir).build()
    assert again.digests == fixtures.digests and again.busybox_diff_id == fixtures.busybox_diff_id
    assert (os.stat(stamp).st_mtime_ns, os.stat(fixtures.docker_archive).st_mtime_ns) == before
    cache = '/var/lib/containers/cache'
    existed = os.path.exists(cache)
    _inspect(fixtures.ref('busybox'))
    assert existed or not os.path.exists(cache)  # root's blob-info cache was not created by the harness
