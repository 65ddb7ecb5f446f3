# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Layer extraction over SSH, through the image module: crafted layers, zstd layers, podman's archives.

Each malicious case is its own crafted layer, loaded from an OCI layout on top of a harmless
base layer, with both storage drivers. A canary directory outside the data-root stands for
the host: it must come out unchanged, whatever the layer tried. A refused image leaves no
tag, no layer directory and nothing in the store's tmp/.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

import pytest

from harness import images
from harness.podman import PrivatePodman

FIXTURE_CACHE = '/var/tmp/nsbox-fixture-images'
OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'


def make_canary(path):
    """A directory of the real machine's /tmp (seen by the test host too) that no layer may touch."""
    path.mkdir()
    (path / 'secret').write_bytes(b'host data')
    return path


def untouched(canary):
    return sorted(os.listdir(canary)) == ['secret'] and (canary / 'secret').read_bytes() == b'host data' \
        and os.stat(canary / 'secret').st_nlink == 1


def data_root(host):
    return os.path.join(host.workdir, 'data-root')


def store_state(host):
    """(tags, layer dirs, tmp entries) of the test host's store."""
    root = data_root(host)
    try:
        with open(os.path.join(root, 'images', 'index.json')) as f:
            tags = json.load(f)['references']
    except FileNotFoundError:
        tags = {}
    layers = set(os.listdir(os.path.join(root, 'layers'))) - {'l'} if os.path.isdir(os.path.join(root, 'layers')) else set()
    tmp = os.listdir(os.path.join(root, 'tmp')) if os.path.isdir(os.path.join(root, 'tmp')) else []
    return tags, layers, tmp


BASE = images.TarWriter().dir('etc').file('etc/hostname', b'base\n').dir('tmp', mode=0o1777).getvalue()
REFUSED = 'refused'


def crafted(canary):
    """name -> (builder of the evil layer, outcome per driver).

    An outcome is REFUSED, or the path (relative to the layer's root) where the entry lands
    when it is neutralised instead: names are clamped inside the root, and the vfs driver
    resolves symlinks inside the rootfs being built (as Docker's chrooted extraction does),
    while an overlay layer dir, which is not a whole rootfs, refuses to write through one.
    """
    c = str(canary)
    up = '../' * 12 + c.lstrip('/')
    inside = c.lstrip('/') + '/pwned'
    return {
        'dotdot-name': (lambda t: t.file(up + '/pwned', b'bad'), inside, inside),
        'absolute-name': (lambda t: t.file(c + '/pwned', b'bad'), inside, inside),
        'pax-path-override': (lambda t: t.file('innocent', b'bad', pax={'path': up + '/pwned'}), inside, inside),
        'write-through-absolute-symlink': (lambda t: t.symlink('evil', c).file('evil/pwned', b'bad'), REFUSED, inside),
        'write-through-relative-symlink': (lambda t: t.symlink('evil', up).file('evil/pwned', b'bad'), REFUSED, inside),
        'symlink-to-parent-then-write': (lambda t: t.symlink('up', '..').file('up/up/pwned', b'bad'), REFUSED, 'pwned'),
        'hardlink-absolute-outside': (lambda t: t.hardlink('stolen', c + '/secret'), REFUSED, REFUSED),
        'hardlink-dotdot-outside': (lambda t: t.hardlink('stolen', up + '/secret'), REFUSED, REFUSED),
        'hardlink-through-symlink': (lambda t: t.symlink('evil', c).hardlink('stolen', 'evil/secret'), REFUSED, REFUSED),
        'whiteout-outside': (lambda t: t.file(up + '/.wh.secret', b''), None, None),
        'bad-whiteout-name': (lambda t: t.file('etc/.wh..', b''), REFUSED, REFUSED),
    }


@pytest.mark.parametrize('driver', ['overlay', 'vfs'])
def test_crafted_layers(ansible, fresh_host, tmp_path, driver):
    """Each case is its own image (a base layer + the crafted one), loaded in one play; the host stays untouched."""
    cases = {}
    for name in sorted(crafted('/x')):
        canary = make_canary(tmp_path / ('canary-' + name))
        build, on_overlay, on_vfs = crafted(canary)[name]
        tar = images.TarWriter()
        build(tar)
        layout = str(tmp_path / ('oci-' + name))
        images.write_oci_layout(layout, {'evil': images.Image([images.Layer(BASE), images.Layer(tar.getvalue())])})
        cases[name] = (canary, layout, on_overlay if driver == 'overlay' else on_vfs)
    play = ansible.tasks([
        {'name': 'driver', 'nsbox.runtime.host': {'storage_driver': driver, 'install_library': False}},
        {'name': 'load', 'nsbox.runtime.image': {'name': 'localhost/evil:{{ item }}', 'source': 'load', 'path': '{{ layout[item] }}'},
         'loop': sorted(cases), 'ignore_errors': True, 'vars': {'layout': {n: c[1] for n, c in cases.items()}}},
    ])
    results = {r['item']: r for r in play.task('load')['results']}
    tags, layers, tmp = store_state(fresh_host)
    root = data_root(fresh_host)
    wrong = {}
    for name, (canary, _layout, expect) in sorted(cases.items()):
        res, tag = results[name], 'localhost/evil:' + name
        if not untouched(canary):
            wrong[name] = 'the host was touched: %s' % sorted(os.listdir(canary))
        elif expect == REFUSED:
            if not res.get('failed') or not res['msg'].startswith('failed to ') or tag in tags:
                wrong[name] = 'not refused cleanly: %s' % res.get('msg', res.get('actions'))
        elif res.get('failed') or tag not in tags:
            wrong[name] = 'not loaded: %s' % res.get('msg')
        elif expect:
            top = res['image']['layers'][-1]
            chain = [d for d in layers if os.path.exists(os.path.join(root, 'layers', d, 'diff', expect))]
            if not chain or tag not in tags or top is None:
                wrong[name] = 'the entry did not land at %s inside the layer' % expect
    assert wrong == {}
    assert tmp == []
    # Refused images left no layer of their own: only the base layer and the loaded images' layers.
    loaded = sum(1 for name in cases if cases[name][2] != REFUSED)
    assert len(layers) == 1 + loaded, sorted(layers)


# -- zstd -------------------------------------------------------------------------------------
class ZstdLayer(images.Layer):
    """A layer stored zstd-compressed, as podman --compression-format zstd writes them."""

    def __init__(self, tar_bytes):
        super().__init__(tar_bytes, compress=False)
        self.blob = subprocess.run(['zstd', '-q', '-c', '-19'], input=tar_bytes, capture_output=True, check=True).stdout
        self.media_type = OCI_LAYER_ZSTD
        self.digest = images.sha256(self.blob)


def test_zstd_layers(ansible, fresh_host, tmp_path):
    """zstd layers decompress through the zstandard package (python3-zstandard on the host) and check their diff_ids."""
    with open(os.path.join(FIXTURE_CACHE, 'busybox-rootfs.tar'), 'rb') as f:
        rootfs = f.read()
    layout = str(tmp_path / 'oci')
    image = images.Image([ZstdLayer(rootfs), ZstdLayer(BASE)])
    images.write_oci_layout(layout, {'zstd': image})
    res = ansible.module('nsbox.runtime.image', {'name': 'localhost/zstd:1', 'source': 'load', 'path': layout})
    assert res['_status'] == 'changed', res
    assert res['image']['layers'] == [layer.digest for layer in image.layers]
    with open(os.path.join(data_root(fresh_host), 'images', 'index.json')) as f:
        rec = json.load(f)['images'][res['image']['digest']]
    assert [lay['diff_id'] for lay in rec['layers']] == [images.sha256(rootfs), images.sha256(BASE)]
    diff = os.path.join(data_root(fresh_host), 'layers', images.sha256(rootfs).split(':')[1], 'diff')
    assert os.path.isfile(os.path.join(diff, 'bin', 'busybox'))
    # A blob whose content does not match its diff_id is refused after decompression.
    bad = str(tmp_path / 'bad')
    liar = ZstdLayer(BASE)
    liar.diff_id = images.sha256(b'not this')
    images.write_oci_layout(bad, {'zstd': images.Image([liar])})
    res = ansible.module('nsbox.runtime.image', {'name': 'localhost/zstd:bad', 'source': 'load', 'path': bad})
    assert res['_status'] == 'failed' and 'uncompressed content hashes to' in res['msg'], res


# -- podman save -------------------------------------------------------------------------------
@pytest.mark.parametrize('fmt', ['docker-archive', 'oci-archive'])
def test_load_archives_made_by_podman(ansible, fresh_host, tmp_path, fmt):
    """``podman save`` archives of a fixture image load and give the same layers.

    podman keeps everything in a store of the test's own (harness.podman.PrivatePodman: its own root, run root,
    storage.conf and containers.conf, in a private mount namespace): the machine's podman store, whatever driver
    made it ("database configuration mismatch" when it was another one), is neither read nor touched.
    """
    src = os.path.join(FIXTURE_CACHE, 'multilayer-docker.tar')
    out = str(tmp_path / ('podman-%s.tar' % fmt))
    home = tempfile.mkdtemp(prefix='nsbox-pm-', dir='/var/tmp')  # podman refuses a run root over 50 characters
    podman = PrivatePodman(home, driver='vfs')
    try:
        podman('--events-backend', 'none', '--cgroup-manager', 'cgroupfs', 'load', '-q', '-i', src)
        podman('--events-backend', 'none', '--cgroup-manager', 'cgroupfs', 'save', '-q', '--format', fmt, '-o', out,
               'localhost/nsbox/multilayer:latest')
    finally:
        podman.reset()
        shutil.rmtree(home, ignore_errors=True)
    res = ansible.module('nsbox.runtime.image', {'name': 'localhost/nsbox/multilayer:latest', 'source': 'load', 'path': out})
    assert res['_status'] == 'changed', res
    assert res['image']['config']['Env'][-1] == 'NSBOX_FIXTURE=multilayer'
    with open(os.path.join(data_root(fresh_host), 'images', 'index.json')) as f:
        rec = json.load(f)['images'][res['image']['digest']]
    assert len(rec['layers']) == 4
    again = ansible.module('nsbox.runtime.image', {'name': 'localhost/nsbox/multilayer:latest', 'source': 'load', 'path': out})
    assert again['_status'] == 'ok', again
