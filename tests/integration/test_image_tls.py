# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pulls over HTTPS (validate_certs, CA files, client certificates) and through proxies, over SSH."""
from __future__ import annotations

import json
import os

import pytest

from harness import images
from harness.proxy import Proxy
from harness.registry import Registry
from harness.tls import PKI

REPO = 'nsbox/busybox'


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    return PKI(str(tmp_path_factory.mktemp('pki')))


@pytest.fixture(scope='module')
def regs(pki, fixtures):
    """'tls' (HTTPS), 'mtls' (HTTPS that demands a client certificate), 'http' (plain), each with busybox for amd64."""
    out = {}
    try:
        for name, kw in (('tls', {'tls': pki}), ('mtls', {'tls': pki, 'client_auth': True}), ('http', {})):
            out[name] = Registry(**kw).start()
            images.push(out[name], fixtures.ref('busybox-amd64'), REPO, 'latest')
        yield out
    finally:
        for reg in out.values():
            reg.stop()


@pytest.fixture
def proxy():
    with Proxy() as p:
        yield p


def ref(reg):
    return '%s/%s:latest' % (reg.host, REPO)


def nothing_written(host):
    root = os.path.join(host.workdir, 'data-root')
    path = os.path.join(root, 'images', 'index.json')
    refs = json.load(open(path))['references'] if os.path.exists(path) else {}
    tmp = os.listdir(os.path.join(root, 'tmp')) if os.path.isdir(os.path.join(root, 'tmp')) else []
    return refs == {} and tmp == []


def pull(ansible, reg, **kw):
    return ansible.module('nsbox.runtime.image', dict({'name': ref(reg)}, **kw))


def test_https_needs_a_trusted_ca(ansible, fresh_host, regs, pki, fixtures):
    reg = regs['tls']
    for kw in ({}, {'ca_path': pki.other_ca}):
        res = pull(ansible, reg, **kw)
        assert res['_status'] == 'failed', res
        assert res['msg'].startswith('failed to connect securely to registry %s: certificate verify failed' % reg.host), res['msg']
        assert 'ca_path' in res['msg'] and 'validate_certs' in res['msg']
        assert nothing_written(fresh_host)
    res = pull(ansible, reg, ca_path=pki.ca)
    assert res['_status'] == 'changed', res
    assert res['image']['digest'] == fixtures.digests['busybox-amd64']
    assert pull(ansible, reg, ca_path=pki.ca)['_status'] == 'ok'


def test_validate_certs_false(ansible, fresh_host, regs):
    assert pull(ansible, regs['tls'], validate_certs=False)['_status'] == 'changed'


def test_ca_files_from_the_host_config(ansible, fresh_host, regs, pki):
    reg = regs['tls']
    ansible.module('nsbox.runtime.host', {'install_library': False, 'registries': {'ca_files': {reg.host: pki.ca}}})
    assert pull(ansible, reg)['_status'] == 'changed'


def test_missing_ca_file_is_a_clear_error(ansible, fresh_host, regs, pki):
    res = pull(ansible, regs['tls'], ca_path=os.path.join(pki.dir, 'absent.pem'))
    assert res['_status'] == 'failed' and res['msg'].startswith('failed to load the CA file'), res
    assert nothing_written(fresh_host)


def test_plain_http_registry_needs_insecure(ansible, fresh_host, regs):
    res = pull(ansible, regs['http'])
    assert res['_status'] == 'failed' and 'plain HTTP' in res['msg'] and 'insecure' in res['msg'], res
    assert pull(ansible, regs['http'], insecure=True)['_status'] == 'changed'


def test_client_certificate(ansible, fresh_host, regs, pki):
    reg = regs['mtls']
    res = pull(ansible, reg, ca_path=pki.ca)
    assert res['_status'] == 'failed' and 'client_cert' in res['msg'], res
    assert nothing_written(fresh_host)
    res = pull(ansible, reg, ca_path=pki.ca, client_cert=pki.client_cert, client_key=pki.client_key)
    assert res['_status'] == 'changed', res


def test_https_through_a_proxy_and_no_proxy(ansible, fresh_host, regs, pki, proxy):
    reg = regs['tls']
    config = {'install_library': False, 'registries': {'ca_files': {reg.host: pki.ca}},
              'proxies': {'https_proxy': proxy.url, 'http_proxy': proxy.url}}
    ansible.module('nsbox.runtime.host', config)
    assert pull(ansible, reg)['_status'] == 'changed'
    assert proxy.log and set(proxy.log) == {('CONNECT', reg.host)}, proxy.log
    # no_proxy: the same pull goes direct.
    fresh_host.ssh('rm -rf /var/lib/nsbox/*')
    ansible.module('nsbox.runtime.host', dict(config, proxies=dict(config['proxies'], no_proxy='localhost,127.0.0.0/8')))
    seen = len(proxy.log)
    assert pull(ansible, reg)['_status'] == 'changed'
    assert len(proxy.log) == seen, proxy.log[seen:]


def test_plain_http_through_a_proxy(ansible, fresh_host, regs, proxy):
    reg = regs['http']
    ansible.module('nsbox.runtime.host', {'install_library': False, 'registries': {'insecure': [reg.host]}, 'proxies': {'http_proxy': proxy.url}})
    assert pull(ansible, reg)['_status'] == 'changed'
    assert proxy.log and all(method == 'GET' and url.startswith('http://%s/v2/' % reg.host) for method, url in proxy.log), proxy.log
