# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Docker token-auth service on 127.0.0.1, so pulls can be tested against a Bearer-auth registry.

It implements the distribution token spec the way docker/distribution 2.8 checks it
(``registry/auth/token``): the JWT header carries ``x5c`` (standard base64 DER, leaf first),
which the registry verifies against its ``rootcertbundle`` with ``ExtKeyUsageAny`` (a
self-signed certificate that is itself in the bundle is a valid one-element chain); ``aud``
must be a plain string equal to the registry's ``service`` (2.8 does not accept a list);
``iss`` must equal its ``issuer``; ``exp``/``nbf`` get 60 s of leeway; the signature is
checked by libtrust, which takes RS256 (PKCS#1 v1.5). ``kid`` is only consulted when there is
no ``x5c``; it is set anyway, as libtrust's fingerprint of the key, which 2.8 trusts too.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from .lifecycle import Started

TOKEN_LIFETIME = 300


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode('ascii')


def libtrust_key_id(public_key):
    """libtrust's key ID: SHA-256 of the PKIX DER key, first 240 bits, base32 in colon-separated groups of 4."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    b32 = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode('ascii').rstrip('=')
    return ':'.join(b32[i:i + 4] for i in range(0, len(b32), 4))


def make_signing_cert(common_name='nsbox test token signer'):
    """An RSA key and a self-signed certificate for it (SHA-256: Go refuses SHA-1 signatures)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def parse_scope(scope):
    """'repository:ns/name:pull,push' -> ('repository', 'ns/name', ['pull', 'push']); the name may hold ':' (registry ports)."""
    typ, rest = scope.split(':', 1)
    name, actions = rest.rsplit(':', 1)
    return typ, name, [a for a in actions.split(',') if a]


class TokenService(Started):
    """Issues registry tokens to known users; use as a context manager.

    ``users`` maps user name to password. Anonymous requests get 401 unless
    ``anonymous_actions`` names what anonymous users may do (e.g. ``('pull',)``, as Docker Hub).
    ``requests`` records (user or None, granted access list, HTTP status) for assertions.
    """

    def __init__(self, users, service='nsbox-test-registry', issuer='nsbox-test-token-issuer', anonymous_actions=()):
        self.users = dict(users)
        self.service = service
        self.issuer = issuer
        self.anonymous_actions = tuple(anonymous_actions)
        self.key, self.cert = make_signing_cert()
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.requests = []
        self._server = None
        self._thread = None
        self.port = None

    @property
    def running(self):
        return self._server is not None

    @property
    def realm(self):
        return 'http://127.0.0.1:%d/token' % self.port

    # -- lifecycle -------------------------------------------------------------------
    def _start(self):
        # Port 0: the kernel picks and the socket is bound before start() returns, so no wait and no race.
        self._server = ThreadingHTTPServer(('127.0.0.1', 0), _handler_for(self))
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name='nsbox-token-service', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(5)
            self._server = self._thread = None

    # -- tokens ----------------------------------------------------------------------
    def make_token(self, subject, access, lifetime=TOKEN_LIFETIME, audience=None):
        """A signed JWT for ``access`` (a list of {type, name, actions}); also usable to forge bad ones in tests."""
        now = int(time.time())
        header = {'typ': 'JWT', 'alg': 'RS256', 'kid': libtrust_key_id(self.key.public_key()),
                  'x5c': [base64.b64encode(self.cert.public_bytes(serialization.Encoding.DER)).decode('ascii')]}
        claims = {'iss': self.issuer, 'sub': subject or '', 'aud': audience or self.service,
                  'exp': now + lifetime, 'nbf': now - 1, 'iat': now, 'jti': uuid.uuid4().hex, 'access': access}
        signing_input = '%s.%s' % (_b64url(json.dumps(header, separators=(',', ':')).encode()),
                                   _b64url(json.dumps(claims, separators=(',', ':')).encode()))
        signature = self.key.sign(signing_input.encode('ascii'), padding.PKCS1v15(), hashes.SHA256())
        return '%s.%s' % (signing_input, _b64url(signature))

    def authenticate(self, authorization):
        """The user named by a Basic Authorization header, None for anonymous; raise PermissionError on bad credentials."""
        if not authorization:
            return None
        scheme, _sep, value = authorization.partition(' ')
        if scheme.lower() != 'basic':
            raise PermissionError('unsupported authorization scheme %r' % scheme)
        try:
            user, _sep, password = base64.b64decode(value.strip(), validate=True).decode('utf-8').partition(':')
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise PermissionError('malformed basic credentials') from exc
        if user not in self.users or self.users[user] != password:
            raise PermissionError('wrong user name or password')
        return user

    def grant(self, user, scopes):
        """What ``user`` gets for the requested scopes: users everything they ask, anonymous only anonymous_actions."""
        access = []
        for scope in scopes:
            typ, name, actions = parse_scope(scope)
            if user is None:
                actions = [a for a in actions if a in self.anonymous_actions]
            if actions:
                access.append({'type': typ, 'name': name, 'actions': actions})
        return access


def _handler_for(service):
    class Handler(BaseHTTPRequestHandler):
        """GET /token?service=S&scope=T:N:A[&scope=...] with optional Basic credentials."""

        def do_GET(self):  # pylint: disable=invalid-name  # http.server's naming
            url = urlsplit(self.path)
            if url.path != '/token':
                self._reply(404, {'errors': [{'code': 'NOT_FOUND', 'message': 'only /token is served'}]})
                return
            query = parse_qs(url.query)
            if query.get('service', [service.service])[0] != service.service:
                self._reply(400, {'errors': [{'code': 'INVALID_REQUEST', 'message': 'unknown service'}]})
                return
            try:
                user = service.authenticate(self.headers.get('Authorization'))
            except PermissionError as exc:
                self._deny(None, str(exc))
                return
            if user is None and not service.anonymous_actions:
                self._deny(None, 'authentication required')
                return
            scopes = [s for value in query.get('scope', []) for s in value.split()]
            try:
                access = service.grant(user, scopes)
            except ValueError:
                self._reply(400, {'errors': [{'code': 'INVALID_REQUEST', 'message': 'malformed scope'}]})
                return
            token = service.make_token(user, access)
            service.requests.append((user, access, 200))
            issued = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')
            self._reply(200, {'token': token, 'access_token': token, 'expires_in': TOKEN_LIFETIME, 'issued_at': issued})

        def _deny(self, user, message):
            service.requests.append((user, [], 401))
            self._reply(401, {'errors': [{'code': 'UNAUTHORIZED', 'message': message}]},
                        {'WWW-Authenticate': 'Basic realm="nsbox-test-token"'})

        def _reply(self, status, body, headers=None):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format, *args):  # pylint: disable=redefined-builtin  # http.server's signature
            pass  # requests are recorded in service.requests; stderr stays quiet under pytest

    return Handler
