# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test registries are real: images go up and come back with the same digests, auth is enforced,
and each registry leaves no process and no files behind."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re

import pytest

from harness import images
from harness.registry import Registry, http_get
from harness.tokenservice import TokenService

ACCEPT = ', '.join([images.OCI_INDEX, images.OCI_MANIFEST])


@pytest.fixture(scope='module')
def fixtures(tmp_path_factory):
    return images.FixtureImages(tmp_path_factory.mktemp('images')).build()


def _basic(user, password):
    return 'Basic ' + base64.b64encode(('%s:%s' % (user, password)).encode()).decode()


def _assert_gone(pid, workdir):
    assert not os.path.exists('/proc/%d' % pid)
    assert not os.path.exists(workdir)


def _challenge(header):
    """'Bearer realm="..",service="..",scope=".."' -> ('Bearer', {realm, service, scope})."""
    scheme, _sep, params = header.partition(' ')
    return scheme, dict(re.findall(r'(\w+)="([^"]*)"', params))


def test_anonymous_push_pull_round_trip(fixtures, tmp_path):
    with Registry() as reg:
        pid, workdir = reg.proc.pid, reg.workdir
        assert reg.get('/v2/')[0] == 200
        assert images.push(reg, fixtures.oci_dir + ':busybox', 'nsbox/busybox', 'latest') == fixtures.digests['busybox']
        ref = 'docker://%s/nsbox/busybox:latest' % reg.host
        raw = images.skopeo('inspect', '--tls-verify=false', '--raw', ref).stdout.encode()
        assert 'sha256:' + hashlib.sha256(raw).hexdigest() == fixtures.digests['busybox']
        # Both platforms went up: the index and each manifest it lists are served.
        index = json.loads(raw)
        assert index['mediaType'] == images.OCI_INDEX
        assert sorted(m['platform']['architecture'] for m in index['manifests']) == ['amd64', 'arm64']
        for desc in index['manifests']:
            status, headers, _body = reg.get('/v2/nsbox/busybox/manifests/' + desc['digest'], {'Accept': ACCEPT})
            assert status == 200 and headers['Docker-Content-Digest'] == desc['digest']
        status, headers, body = reg.get('/v2/nsbox/busybox/manifests/latest', {'Accept': ACCEPT})
        assert status == 200 and body == raw and headers['Docker-Content-Digest'] == fixtures.digests['busybox']
        # And back down into a fresh OCI layout, digest intact.
        back = str(tmp_path / 'back')
        images.skopeo('copy', '--multi-arch', 'all', '--preserve-digests', '--src-tls-verify=false', ref, 'oci:%s:copy' % back)
        with open(os.path.join(back, 'index.json')) as f:
            assert json.load(f)['manifests'][0]['digest'] == fixtures.digests['busybox']
    _assert_gone(pid, workdir)


def test_basic_auth_registry(fixtures):
    with Registry(auth='basic') as reg:
        pid, workdir = reg.proc.pid, reg.workdir
        status, headers, _body = reg.get('/v2/')
        assert status == 401 and headers['WWW-Authenticate'].startswith('Basic ')
        assert reg.get('/v2/', {'Authorization': _basic(reg.username, 'wrong')})[0] == 401
        assert reg.get('/v2/', {'Authorization': _basic(reg.username, reg.password)})[0] == 200
        with pytest.raises(RuntimeError):
            images.push(reg, fixtures.ref('busybox-amd64'), 'nsbox/busybox', 'latest', creds='%s:wrong' % reg.username)
        assert images.push(reg, fixtures.ref('busybox-amd64'), 'nsbox/busybox', 'latest') == fixtures.digests['busybox-amd64']
        path = '/v2/nsbox/busybox/manifests/latest'
        assert reg.get(path, {'Accept': ACCEPT})[0] == 401
        status, headers, _body = reg.get(path, {'Accept': ACCEPT, 'Authorization': _basic(reg.username, reg.password)})
        assert status == 200 and headers['Docker-Content-Digest'] == fixtures.digests['busybox-amd64']
    _assert_gone(pid, workdir)


def test_token_auth_registry(fixtures):
    with Registry(auth='token') as reg:
        pid, workdir, tokens = reg.proc.pid, reg.workdir, reg.token_service
        scheme, params = _challenge(reg.get('/v2/')[1]['WWW-Authenticate'])
        assert (scheme, params['realm'], params['service']) == ('Bearer', tokens.realm, tokens.service)
        assert images.push(reg, fixtures.ref('multilayer'), 'nsbox/multilayer', 'v1') == fixtures.digests['multilayer']
        assert tokens.requests[-1][:2] == (reg.username, [{'type': 'repository', 'name': 'nsbox/multilayer', 'actions': ['pull', 'push']}])

        # The client's side of the spec: 401 with a scope, a token for that scope, the retry.
        path = '/v2/nsbox/multilayer/manifests/v1'
        status, headers, _body = reg.get(path, {'Accept': ACCEPT})
        assert status == 401
        params = _challenge(headers['WWW-Authenticate'])[1]
        assert params['scope'] == 'repository:nsbox/multilayer:pull'
        query = '?service=%s&scope=%s' % (params['service'], params['scope'])
        for bad in (None, _basic(reg.username, 'wrong'), _basic('nobody', reg.password)):
            status, _headers, body = http_get(params['realm'] + query, {'Authorization': bad} if bad else {})
            assert status == 401 and b'token' not in body
        status, _headers, body = http_get(params['realm'] + query, {'Authorization': _basic(reg.username, reg.password)})
        reply = json.loads(body)
        assert status == 200 and reply['expires_in'] == 300 and reply['access_token'] == reply['token'] and reply['issued_at']
        status, headers, _body = reg.get(path, {'Accept': ACCEPT, 'Authorization': 'Bearer ' + reply['token']})
        assert status == 200 and headers['Docker-Content-Digest'] == fixtures.digests['multilayer']

        # The registry really checks the token: scope, audience and signer.
        other_repo = tokens.make_token(reg.username, [{'type': 'repository', 'name': 'other', 'actions': ['pull']}])
        wrong_aud = tokens.make_token(reg.username, [{'type': 'repository', 'name': 'nsbox/multilayer', 'actions': ['pull']}],
                                      audience='another-registry')
        forger = TokenService({}, service=tokens.service, issuer=tokens.issuer)  # same names, another key (never started)
        forged = forger.make_token(reg.username, [{'type': 'repository', 'name': 'nsbox/multilayer', 'actions': ['pull']}])
        for token, error in ((other_repo, 'insufficient_scope'), (wrong_aud, 'invalid_token'), (forged, 'invalid_token')):
            status, headers, _body = reg.get(path, {'Accept': ACCEPT, 'Authorization': 'Bearer ' + token})
            assert status == 401 and _challenge(headers['WWW-Authenticate'])[1]['error'] == error
    _assert_gone(pid, workdir)
    assert not tokens.running  # the token service stopped too


def test_token_registry_with_anonymous_pull(fixtures):
    """Docker Hub's way: anonymous clients get tokens, but for pull only."""
    with Registry(auth='token', anonymous_pull=True) as reg:
        images.push(reg, fixtures.ref('busybox-amd64'), 'nsbox/busybox', 'latest')
        status, _headers, body = http_get(reg.token_service.realm + '?service=%s&scope=repository:nsbox/busybox:pull,push' % reg.token_service.service)
        assert status == 200
        assert reg.token_service.requests[-1] == (None, [{'type': 'repository', 'name': 'nsbox/busybox', 'actions': ['pull']}], 200)
        status, headers, _body = reg.get('/v2/nsbox/busybox/manifests/latest', {'Accept': ACCEPT, 'Authorization': 'Bearer ' + json.loads(body)['token']})
        assert status == 200 and headers['Docker-Content-Digest'] == fixtures.digests['busybox-amd64']
        with pytest.raises(RuntimeError, match='(?i)unauthorized|denied|authentication'):
            images.push(reg, fixtures.ref('busybox-amd64'), 'nsbox/busybox', 'anon', creds='')
        assert images.skopeo('inspect', '--tls-verify=false', '--no-creds', 'docker://%s/nsbox/busybox:latest' % reg.host).returncode == 0


def test_start_failure_reports_log_and_cleans_up():
    reg = Registry(binary='/bin/false')
    with pytest.raises(RuntimeError, match='exited with 1'):
        reg.start()
    assert not os.path.exists(reg.workdir)
    assert reg.proc.poll() is not None
