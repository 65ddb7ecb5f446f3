# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.reference import Reference

D = 'sha256:' + 'a' * 64


@pytest.mark.parametrize('ref, expected, key', [
    ('busybox', 'docker.io/library/busybox:latest', 'docker.io/library/busybox:latest'),
    ('user/app:1.0', 'docker.io/user/app:1.0', 'docker.io/user/app:1.0'),
    ('index.docker.io/library/busybox', 'docker.io/library/busybox:latest', None),
    ('localhost/app', 'localhost/app:latest', None),
    ('127.0.0.1:5000/a/b/c:v1', '127.0.0.1:5000/a/b/c:v1', None),
    ('registry.example.com/team/app@' + D, 'registry.example.com/team/app@' + D, 'registry.example.com/team/app@' + D),
    ('quay.io/x/y:tag@' + D, 'quay.io/x/y:tag@' + D, 'quay.io/x/y:tag'),
    ('host:5000/app', 'host:5000/app:latest', None),
    ('[::1]:5000/app', '[::1]:5000/app:latest', None),
])
def test_normalisation(ref, expected, key):
    r = Reference.parse(ref)
    assert str(r) == expected
    if key:
        assert r.key == key


@pytest.mark.parametrize('ref', ['', ' busybox', 'Busybox', 'busybox:', 'busybox@sha256:abc', 'a//b', 'busybox:-x',
                                 'bad_host:5000:x/app', 'app@md5:' + 'a' * 32, '/app', 'a/' * 130 + 'b'])
def test_rejected(ref):
    with pytest.raises(ConfigError, match='failed to parse image reference'):
        Reference.parse(ref)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet='abcAB09:/@._-[]', max_size=40))
def test_random_input_parses_or_fails_cleanly(text):
    try:
        r = Reference.parse(text)
    except ConfigError:
        return
    assert Reference.parse(str(r)) == r
