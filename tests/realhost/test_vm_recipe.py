# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lane's image recipe, without a VM: the mirror apt uses, and a cache key that follows the recipe."""
from __future__ import annotations

import os

from harness import vm


def _apt_dir(tmp_path, files):
    os.makedirs(tmp_path / 'sources.list.d')
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    return str(tmp_path)


def test_mirror_from_deb822_sources(tmp_path, monkeypatch):
    monkeypatch.delenv('NSBOX_VM_MIRROR', raising=False)
    apt = _apt_dir(tmp_path, {
        'sources.list.d/cloud.sources': 'Types: deb\nURIs: https://example.invalid/apt\nSuites: cloud-bookworm\nComponents: main\n',
        'sources.list.d/debian.sources': (
            'Types: deb\n# a comment\nURIs: http://mirror.invalid/debian/\nSuites: bookworm bookworm-updates\n'
            'Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n'
            'Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n'),
    })
    assert vm.debian_mirror(apt_dir=apt) == 'http://mirror.invalid/debian'


def test_mirror_from_one_line_sources(tmp_path, monkeypatch):
    monkeypatch.delenv('NSBOX_VM_MIRROR', raising=False)
    apt = _apt_dir(tmp_path, {'sources.list': (
        '# deb http://old.invalid/debian bookworm main\n'
        'deb-src http://src.invalid/debian bookworm main\n'
        'deb [arch=amd64 signed-by=/k.gpg] http://one.invalid/debian bookworm main contrib\n')})
    assert vm.debian_mirror(apt_dir=apt) == 'http://one.invalid/debian'


def test_mirror_fallback_and_override(tmp_path, monkeypatch):
    monkeypatch.delenv('NSBOX_VM_MIRROR', raising=False)
    assert vm.debian_mirror(apt_dir=_apt_dir(tmp_path, {})) == vm.DEFAULT_MIRROR
    monkeypatch.setenv('NSBOX_VM_MIRROR', 'http://override.invalid/debian')
    assert vm.debian_mirror(apt_dir=str(tmp_path)) == 'http://override.invalid/debian'


def test_recipe_hash_follows_the_recipe(monkeypatch):
    before = vm.ImageBuilder.recipe_hash()
    assert vm.ImageBuilder.recipe_hash() == before
    monkeypatch.setattr(vm, 'PACKAGES', vm.PACKAGES + ('jq',))
    assert vm.ImageBuilder.recipe_hash() != before
    monkeypatch.undo()
    monkeypatch.setattr(vm, 'CHROOT_COMMANDS', vm.CHROOT_COMMANDS + ('true',))
    assert vm.ImageBuilder.recipe_hash() != before
