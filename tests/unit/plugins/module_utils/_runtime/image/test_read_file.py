# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""image/rootfs.read_file: a file as the image's root has it, read from its layers without a mount (the user check
before a recreate stops the container it replaces)."""
from __future__ import annotations

import os

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import rootfs


class Layers:
    """The part of ImageStore read_file uses: layer dirs by chain id."""

    def __init__(self, root, driver='overlay'):
        self.root, self.storage_driver = root, driver

    def layer_diff(self, chain_id):
        return os.path.join(self.root, chain_id, 'diff')

    def record(self, *chains):
        return {'layers': [{'chain_id': c} for c in chains]}

    def put(self, chain, path, text=None, whiteout=False, opaque=False, symlink=None):
        full = os.path.join(self.layer_diff(chain), path.lstrip('/'))
        os.makedirs(os.path.dirname(full), exist_ok=True)
        if whiteout:
            os.mknod(full, 0o600 | 0o020000, os.makedev(0, 0))
        elif symlink:
            os.symlink(symlink, full)
        elif opaque:
            os.makedirs(full, exist_ok=True)
            os.setxattr(full, 'trusted.overlay.opaque', b'y')
        else:
            with open(full, 'w') as f:
                f.write(text)


@pytest.fixture(name='layers')
def layer_dirs(tmp_path):
    return Layers(str(tmp_path))


def test_the_top_layer_wins_and_lower_ones_show_through(layers):
    layers.put('a', '/etc/passwd', 'root:x:0:0::/root:/bin/sh\n')
    layers.put('a', '/etc/group', 'root:x:0:\n')
    layers.put('b', '/etc/passwd', 'root:x:0:0::/root:/bin/sh\napp:x:100:100::/app:/bin/sh\n')
    layers.put('c', '/srv/data', 'x')
    record = layers.record('a', 'b', 'c')
    assert 'app:x:100' in rootfs.read_file(layers, record, '/etc/passwd')
    assert rootfs.read_file(layers, record, '/etc/group') == 'root:x:0:\n'  # from the lowest layer
    assert rootfs.read_file(layers, record, '/etc/shadow') is None


def test_whiteouts_and_opaque_directories_hide_lower_layers(layers):
    layers.put('a', '/etc/passwd', 'root:x:0:0::/root:/bin/sh\n')
    layers.put('a', '/etc/group', 'root:x:0:\n')
    layers.put('b', '/etc/passwd', whiteout=True)
    assert rootfs.read_file(layers, layers.record('a', 'b'), '/etc/passwd') is None
    layers.put('c', '/etc', opaque=True)
    assert rootfs.read_file(layers, layers.record('a', 'c'), '/etc/group') is None


def test_a_symlink_on_the_way_is_not_followed(layers, tmp_path):
    (tmp_path / 'host-passwd').write_text('hostuser:x:5:5::/:/bin/sh\n')
    layers.put('a', '/etc/passwd', symlink=str(tmp_path / 'host-passwd'))
    with pytest.raises(rootfs.Unknown):
        rootfs.read_file(layers, layers.record('a'), '/etc/passwd')


def test_vfs_reads_the_whole_top_tree(tmp_path):
    layers = Layers(str(tmp_path), 'vfs')
    layers.put('a', '/etc/passwd', 'old\n')
    layers.put('b', '/etc/group', 'g\n')  # vfs: each layer is the whole tree; b has no passwd
    assert rootfs.read_file(layers, layers.record('a', 'b'), '/etc/passwd') is None
    assert rootfs.read_file(layers, layers.record('a', 'b'), '/etc/group') == 'g\n'
