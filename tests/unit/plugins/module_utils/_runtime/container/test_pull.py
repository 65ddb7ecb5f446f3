# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container/pull.py pull_image: which policy asks the registry when (the store and the image service faked)."""
from __future__ import annotations

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import pull as converge  # the pull policy: container/pull.py
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container.store import ContainerError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import images as image_service
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.registry import RegistryError

OLD, NEW = 'sha256:' + 'a' * 64, 'sha256:' + 'b' * 64
TAG = 'reg.lan:5000/app:1'
BY_DIGEST = 'reg.lan:5000/app@' + OLD


class Fake:
    """An image store holding ``refs`` ({ref or digest: digest}); a registry whose tags name ``remote``."""

    def __init__(self, monkeypatch, refs, remote):
        self.refs, self.remote, self.pulls = dict(refs), remote, []
        monkeypatch.setattr(converge, 'image_of', self.image_of)
        monkeypatch.setattr(image_service, 'pull', self.pull)

    def image_of(self, cfg, ref):
        if ref not in self.refs:
            raise ContainerError('find', 'image %s' % ref, 'it is not in the store at /x: pull, load or import it first')
        return {'name': ref, 'digest': self.refs[ref], 'id': 'sha256:' + 'c' * 64}, {'Cmd': ['sh']}

    def pull(self, cfg, ref, check_mode=False):
        self.pulls.append((ref, check_mode))
        if self.remote is None:
            raise RegistryError('reach', 'registry reg.lan:5000', 'connection refused')
        digest = ref.split('@')[1] if '@' in ref else self.remote
        changed = self.refs.get(ref) != digest
        if changed and not check_mode:
            self.refs[ref] = self.refs[digest] = digest
        return {'changed': changed, 'actions': ['tagged %s -> %s' % (ref, digest)] if changed and not check_mode else [],
                'image': {'digest': digest}}


@pytest.mark.parametrize('policy', converge.PULL)
def test_present_tag(monkeypatch, policy):
    fake = Fake(monkeypatch, {TAG: OLD}, remote=OLD)
    out = converge.pull_image(None, TAG, policy)
    assert out['image']['digest'] == OLD and out['actions'] == []
    assert fake.pulls == ([(TAG, False)] if policy == 'always' else [])  # always asks, finds nothing new


def test_missing_pulls_an_absent_tag(monkeypatch):
    fake = Fake(monkeypatch, {}, remote=OLD)
    out = converge.pull_image(None, TAG, 'missing')
    assert out['image']['digest'] == OLD and out['actions'] == ['pulled image %s: %s (tagged %s -> %s)' % (TAG, OLD, TAG, OLD)]
    assert fake.pulls == [(TAG, False)]


def test_always_moves_the_tag(monkeypatch):
    fake = Fake(monkeypatch, {TAG: OLD, OLD: OLD}, remote=NEW)
    check = converge.pull_image(None, TAG, 'always', check_mode=True)
    assert check == {'image': None, 'config': None, 'digest': NEW, 'actions': ['would pull image %s: %s -> %s' % (TAG, OLD, NEW)]}
    assert fake.refs[TAG] == OLD
    out = converge.pull_image(None, TAG, 'always')
    assert out['image']['digest'] == NEW and out['actions'][0].startswith('pulled image %s: %s -> %s (' % (TAG, OLD, NEW))


def test_check_mode_knows_an_image_already_stored_under_another_name(monkeypatch):
    Fake(monkeypatch, {NEW: NEW}, remote=NEW)
    out = converge.pull_image(None, TAG, 'missing', check_mode=True)
    assert out['image'] == {'name': TAG, 'digest': NEW, 'id': 'sha256:' + 'c' * 64} and out['config'] == {'Cmd': ['sh']}
    assert out['actions'] == ['would pull image %s: %s' % (TAG, NEW)]


@pytest.mark.parametrize('policy', converge.PULL)
def test_by_digest_is_pulled_only_when_missing(monkeypatch, policy):
    fake = Fake(monkeypatch, {BY_DIGEST: OLD}, remote=NEW)
    assert converge.pull_image(None, BY_DIGEST, policy)['actions'] == [] and fake.pulls == []
    fake.refs.clear()
    if policy == 'never':
        with pytest.raises(ContainerError, match='not in the store'):
            converge.pull_image(None, BY_DIGEST, policy)
    else:
        assert converge.pull_image(None, BY_DIGEST, policy)['digest'] == OLD and fake.pulls == [(BY_DIGEST, False)]


@pytest.mark.parametrize('ref', [TAG, OLD])
def test_never_and_bare_ids_do_not_pull(monkeypatch, ref):
    fake = Fake(monkeypatch, {}, remote=NEW)
    for policy in (('never',) if ref == TAG else converge.PULL):
        with pytest.raises(ContainerError, match='not in the store'):
            converge.pull_image(None, ref, policy)
    assert fake.pulls == []


def test_a_failed_pull_says_why(monkeypatch):
    Fake(monkeypatch, {}, remote=None)
    with pytest.raises(ContainerError, match='failed to pull image %s: it is not in the store and pulling it failed: '
                                             'failed to reach registry reg.lan:5000: connection refused' % TAG):
        converge.pull_image(None, TAG, 'missing')
    Fake(monkeypatch, {TAG: OLD}, remote=None)
    with pytest.raises(RegistryError, match='failed to reach registry'):  # always, the tag present: the registry's own error
        converge.pull_image(None, TAG, 'always')


def test_unknown_policy():
    with pytest.raises(ConfigError, match='expected one of missing, always, never'):
        converge.pull_image(None, TAG, 'sometimes')
