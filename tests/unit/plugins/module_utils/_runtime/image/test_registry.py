# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Registry client pieces that are pure logic: no_proxy matching, TLS set-up errors."""
from __future__ import annotations

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.registry import RegistryClient, RegistryError, bypass_proxy


@pytest.mark.parametrize('host, no_proxy, bypass', [
    ('registry.example.com', 'example.com', True),
    ('registry.example.com', '.example.com', True),
    ('notexample.com', 'example.com', False),
    ('registry.example.com:5000', 'example.com', True),
    ('registry.example.com:5000', 'registry.example.com:5000', True),
    ('registry.example.com:443', 'registry.example.com:5000', False),
    ('127.0.0.1:5000', 'localhost, 127.0.0.1', True),
    ('10.1.2.3:5000', '10.0.0.0/8', True),
    ('11.1.2.3', '10.0.0.0/8', False),
    ('anything', '*', True),
    ('anything', '', False),
    ('anything', None, False),
    ('Registry.Example.COM', 'example.com', True),
])
def test_no_proxy(host, no_proxy, bypass):
    assert bypass_proxy(host, no_proxy) is bypass


def test_missing_ca_file_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryError, match=r'failed to load the CA file .*/nope.pem for registry r.example: No such file'):
        RegistryClient('r.example', ca_file=str(tmp_path / 'nope.pem'))


def test_bad_client_cert_is_a_clear_error(tmp_path):
    bad = tmp_path / 'client.pem'
    bad.write_text('not a certificate')
    with pytest.raises(RegistryError, match='failed to load the client certificate'):
        RegistryClient('r.example', client_cert=str(bad))


def test_proxies_apply_unless_bypassed():
    def proxy_of(host, proxies):
        client = RegistryClient(host, proxies=proxies)
        handler = [h for h in client._opener.handlers if type(h).__name__ == 'ProxyHandler']  # pylint: disable=protected-access
        return handler[0].proxies if handler else {}  # a ProxyHandler with no proxies is not installed at all
    proxies = {'http_proxy': 'http://p:3128', 'https_proxy': 'http://p:3129', 'no_proxy': 'internal.example'}
    assert proxy_of('r.example', proxies) == {'http': 'http://p:3128', 'https': 'http://p:3129'}
    assert proxy_of('r.internal.example', proxies) == {}
