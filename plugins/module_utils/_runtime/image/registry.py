# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A registry v2 / OCI distribution client: manifests and blobs, with the auth flows.

Auth as Docker does it: try anonymously; on ``401`` read ``WWW-Authenticate``. ``Basic``
-> send the credentials; ``Bearer realm,service,scope`` -> get a token from the realm
(with the credentials, if any) and retry with it. Tokens are cached per scope.

Built on the standard library's urllib, like ansible.module_utils.urls, but without
Ansible: the host-side CLI and runner pull with this same code from the installed library.
"""
from __future__ import annotations

import base64
import ipaddress
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request

from ..errors import NsboxError
from .manifest import ACCEPT

DOCKER_HUB_API = 'registry-1.docker.io'
_CHALLENGE = re.compile(r'(\w+)="([^"]*)"')


class RegistryError(NsboxError):
    """The registry refused a request or answered wrongly."""

    def __init__(self, action, obj, cause, status=None, **kw):
        super().__init__(action, obj, cause, **kw)
        self.status = status


class _NoAuthAcrossHosts(urllib.request.HTTPRedirectHandler):
    """Follow redirects (blob storage), but never carry credentials to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header('Authorization')
        return new


def bypass_proxy(host, no_proxy):
    """Whether ``host`` ('name' or 'name:port') is in ``no_proxy``, read as curl and Go read it.

    Entries are separated by commas or spaces: ``*`` (everything), ``name`` (that host and its
    subdomains; a leading dot is the same), ``name:port`` (only that port), an IP address, or
    an IP network in CIDR form.
    """
    name, _sep, port = host.rpartition(':') if host.count(':') == 1 else (host, '', '')
    name = name.strip('[]').lower()
    try:
        addr = ipaddress.ip_address(name)
    except ValueError:
        addr = None
    for entry in re.split(r'[\s,]+', (no_proxy or '').strip().lower()):
        if not entry:
            continue
        if entry == '*':
            return True
        e_name, _sep, e_port = entry.rpartition(':') if entry.count(':') == 1 else (entry, '', '')
        if e_port and e_port != port:
            continue
        if addr is not None and '/' in e_name:
            try:
                if addr in ipaddress.ip_network(e_name, strict=False):
                    return True
            except ValueError:
                pass
            continue
        e_name = e_name.lstrip('.').strip('[]')
        if name == e_name or name.endswith('.' + e_name):
            return True
    return False


def _tls_hint(exc):
    """Why a TLS connection failed, in the words a user can act on."""
    text = str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ('certificate verify failed: %s (trust its CA with ca_path or the host config\'s registries.ca_files, '
                'or set validate_certs: false)' % (exc.verify_message or text))
    if 'WRONG_VERSION_NUMBER' in text or 'record layer failure' in text:
        return '%s (does the registry speak plain HTTP? Then set insecure, or list it in registries.insecure)' % text
    if 'CERTIFICATE_REQUIRED' in text or 'BAD_CERTIFICATE' in text or 'UNKNOWN_CA' in text:
        return '%s (the registry asks for a client certificate it trusts: give client_cert and client_key)' % text
    return text


def parse_challenge(header):
    """``Bearer realm="..",service=".."`` -> ('bearer', {realm, service, scope})."""
    scheme, _sep, rest = (header or '').strip().partition(' ')
    return scheme.lower(), dict(_CHALLENGE.findall(rest))


class RegistryClient:
    """One registry host; ``insecure`` means plain HTTP."""

    def __init__(self, host, insecure=False, username=None, password=None, validate_certs=True,
                 ca_file=None, client_cert=None, client_key=None, proxies=None, timeout=60):
        self.host = host
        api_host = DOCKER_HUB_API if host == 'docker.io' else host
        self.base = '%s://%s' % ('http' if insecure else 'https', api_host)
        self.username = username
        self.password = password
        self.timeout = timeout
        self._tokens = {}
        self.requests = 0
        handlers = [_NoAuthAcrossHosts()]
        if proxies is not None:  # else urllib's own: the environment's *_proxy variables
            use = {} if bypass_proxy(api_host, proxies.get('no_proxy')) else \
                {k[:-len('_proxy')]: v for k, v in proxies.items() if v and k in ('http_proxy', 'https_proxy')}
            handlers.append(urllib.request.ProxyHandler(use))
        if not insecure:
            handlers.append(urllib.request.HTTPSHandler(context=self._tls_context(validate_certs, ca_file, client_cert, client_key)))
        self._opener = urllib.request.build_opener(*handlers)

    def _tls_context(self, validate_certs, ca_file, client_cert, client_key):
        try:
            ctx = ssl.create_default_context(cafile=ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise RegistryError('load', 'the CA file %s for registry %s' % (ca_file, self.host), getattr(exc, 'strerror', None) or str(exc), path=ca_file)
        if not validate_certs:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if client_cert:
            try:
                ctx.load_cert_chain(client_cert, client_key)
            except (OSError, ssl.SSLError) as exc:
                raise RegistryError('load', 'the client certificate %s%s' % (client_cert, ' and key %s' % client_key if client_key else ''),
                                    getattr(exc, 'strerror', None) or str(exc),
                                    path=client_cert)
        return ctx

    # -- transport -----------------------------------------------------------------------
    def _basic(self):
        raw = ('%s:%s' % (self.username, self.password or '')).encode()
        return 'Basic ' + base64.b64encode(raw).decode()

    def _send(self, method, url, headers):
        self.requests += 1
        req = urllib.request.Request(url, method=method, headers=headers)
        try:
            return self._opener.open(req, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            return exc  # an HTTPError is a response too: status, headers, body
        except (urllib.error.URLError, OSError) as exc:
            # An SSLError raised after the handshake comes bare, and its .reason is just a code.
            reason = exc if isinstance(exc, ssl.SSLError) else getattr(exc, 'reason', exc)
            if isinstance(reason, ssl.SSLError):
                raise RegistryError('connect', 'securely to registry %s' % self.host, '%s (%s)' % (_tls_hint(reason), url))
            raise RegistryError('reach', 'registry %s' % self.host, '%s (%s)' % (reason, url))

    def _token(self, challenge, scope):
        params = {'service': challenge.get('service', '')}
        params['scope'] = challenge.get('scope') or scope
        url = challenge['realm'] + ('&' if '?' in challenge['realm'] else '?') + urllib.parse.urlencode(params)
        headers = {'Authorization': self._basic()} if self.username else {}
        resp = self._send('GET', url, headers)
        body = resp.read()
        if resp.status != 200:
            raise RegistryError('authenticate', 'to registry %s' % self.host,
                                'the token service answered %d%s' % (resp.status, '' if self.username else ' (no credentials given)'),
                                status=resp.status)
        try:
            doc = json.loads(body)
            return doc.get('token') or doc['access_token']
        except (ValueError, KeyError, TypeError):
            raise RegistryError('authenticate', 'to registry %s' % self.host, 'the token service sent no token')

    def request(self, method, path, repo, headers=None, what=None):
        """Send a request for ``repo``, doing the auth dance once; returns the (open) response."""
        url = self.base + path
        scope = 'repository:%s:pull' % repo
        headers = dict(headers or {})
        auth = self._tokens.get(scope)
        if auth:
            headers['Authorization'] = auth
        resp = self._send(method, url, headers)
        if resp.status == 401:
            scheme, challenge = parse_challenge(resp.headers.get('WWW-Authenticate'))
            resp.close()
            if scheme == 'bearer' and 'realm' in challenge:
                auth = 'Bearer ' + self._token(challenge, scope)
            elif scheme == 'basic' and self.username:
                auth = self._basic()
            else:
                raise RegistryError('pull', what or repo, 'registry %s requires authentication%s'
                                    % (self.host, '' if self.username else ' (give auth.username and auth.password)'), status=401)
            self._tokens[scope] = auth
            headers['Authorization'] = auth
            resp = self._send(method, url, headers)
        if resp.status >= 400:
            detail = resp.read(2048).decode('utf-8', 'replace').strip()
            resp.close()
            cause = {401: 'authentication failed (wrong credentials?)', 403: 'access denied', 404: 'not found'}.get(resp.status, 'HTTP %d' % resp.status)
            raise RegistryError('pull', what or repo, '%s: %s%s' % (self.host, cause, ' (%s)' % detail[:300] if detail else ''), status=resp.status)
        return resp

    # -- API -----------------------------------------------------------------------------
    def ping(self):
        resp = self._send('GET', self.base + '/v2/', {})
        resp.close()
        return resp.status

    def get_manifest(self, repo, reference):
        """GET a manifest or index by tag or digest: (bytes, media type)."""
        what = '%s/%s:%s' % (self.host, repo, reference) if not reference.startswith('sha256:') else '%s/%s@%s' % (self.host, repo, reference)
        resp = self.request('GET', '/v2/%s/manifests/%s' % (repo, reference), repo, {'Accept': ACCEPT}, what)
        with resp:
            data = resp.read(8 << 20)
            mt = (resp.headers.get('Content-Type') or '').split(';')[0].strip()
        return data, mt

    def open_blob(self, repo, digest):
        """An open streaming response for a blob (the caller verifies its digest)."""
        return self.request('GET', '/v2/%s/blobs/%s' % (repo, digest), repo, what='blob %s of %s/%s' % (digest, self.host, repo))
