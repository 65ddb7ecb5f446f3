# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import manifest as m
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.registry import parse_challenge
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.store import chain_ids

D = 'sha256:' + 'b' * 64


def index(*platforms):
    return {'schemaVersion': 2, 'mediaType': m.OCI_INDEX,
            'manifests': [{'mediaType': m.OCI_MANIFEST, 'digest': 'sha256:%064x' % i, 'size': 1, 'platform': p} for i, p in enumerate(platforms)]}


def test_platform_pick_and_variants():
    idx = index({'os': 'linux', 'architecture': 'amd64'}, {'os': 'linux', 'architecture': 'arm64', 'variant': 'v8'},
                {'os': 'linux', 'architecture': 'arm', 'variant': 'v7'})
    assert m.select_platform(idx, m.parse_platform('linux/arm64'))['digest'].endswith('1')
    assert m.select_platform(idx, m.parse_platform('linux/arm/v7'))['digest'].endswith('2')
    with pytest.raises(m.ManifestError, match='offers only: linux/amd64, linux/arm64/v8, linux/arm/v7'):
        m.select_platform(idx, m.parse_platform('linux/arm/v6'))


@pytest.mark.parametrize('text', ['linux', 'linux/', '/amd64', 'a/b/c/d', ''])
def test_bad_platform(text):
    with pytest.raises(m.ManifestError, match='expected os/arch'):
        m.parse_platform(text)


def test_host_platform():
    assert m.parse_platform(None)['os'] == 'linux'


def test_detect_type_by_field_header_and_shape():
    man = {'schemaVersion': 2, 'config': {'digest': D, 'size': 2}, 'layers': []}
    assert m.detect_type(json.dumps(man).encode())[1] == m.OCI_MANIFEST
    assert m.detect_type(json.dumps(man).encode(), m.DOCKER_MANIFEST)[1] == m.DOCKER_MANIFEST
    assert m.detect_type(json.dumps(index()).encode())[1] == m.OCI_INDEX
    with pytest.raises(m.ManifestError, match='schema 1'):
        m.detect_type(json.dumps({'schemaVersion': 1}).encode())
    with pytest.raises(m.ManifestError, match='not JSON'):
        m.detect_type(b'<html>')


def test_check_manifest_and_config():
    man = {'schemaVersion': 2, 'config': {'digest': D, 'size': 2},
           'layers': [{'mediaType': m.OCI_LAYER_GZIP, 'digest': D, 'size': 3}]}
    config, layers = m.check_manifest(man)
    assert config['digest'] == D and len(layers) == 1
    with pytest.raises(m.ManifestError, match='unsupported layer media type'):
        m.check_manifest(dict(man, layers=[{'mediaType': 'text/plain', 'digest': D, 'size': 1}]))
    with pytest.raises(m.ManifestError, match='not a valid descriptor'):
        m.check_manifest(dict(man, config={'digest': D, 'size': -1}))
    with pytest.raises(m.ManifestError, match='1 diff_ids for 2 layers'):
        m.check_config({'rootfs': {'diff_ids': [D]}}, 2)


def test_chain_ids_follow_the_spec():
    a, b = 'sha256:' + 'a' * 64, 'sha256:' + 'b' * 64
    chains = chain_ids([a, b])
    assert chains[0] == a
    import hashlib  # pylint: disable=import-outside-toplevel
    assert chains[1] == 'sha256:' + hashlib.sha256(('%s %s' % (a, b)).encode()).hexdigest()


def test_parse_challenge():
    scheme, c = parse_challenge('Bearer realm="http://127.0.0.1:1/token",service="reg",scope="repository:a/b:pull"')
    assert scheme == 'bearer' and c == {'realm': 'http://127.0.0.1:1/token', 'service': 'reg', 'scope': 'repository:a/b:pull'}
    assert parse_challenge('Basic realm="Registry Realm"')[0] == 'basic'
    assert parse_challenge(None) == ('', {})
