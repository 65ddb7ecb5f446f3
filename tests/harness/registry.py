# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real image registry (Debian's docker-registry, distribution 2.8) on 127.0.0.1, for pull tests.

Each instance has its own config, storage and log in a temp dir and runs the binary directly
(not the Debian service, whose shipped config listens on :5000 with htpasswd auth). Plain HTTP,
which clients must treat as insecure, unless ``tls`` (a :class:`harness.tls.PKI`) is given: then
HTTPS with the PKI's server certificate, and with ``client_auth=True`` it also demands a client
certificate signed by the PKI's CA. ``auth`` is None (anonymous), ``'basic'`` (htpasswd, bcrypt)
or ``'token'`` (Bearer tokens from a harness TokenService, started and stopped with it;
``anonymous_pull=True`` makes it hand anonymous clients pull-only tokens, as Docker Hub does).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from .lifecycle import Started
from .netutil import free_port
from .tokenservice import TokenService

DOCKER_REGISTRY = '/usr/bin/docker-registry'
HTPASSWD = '/usr/bin/htpasswd'


def http_get(url, headers=None, timeout=10, context=None):
    """GET without raising on 4xx/5xx: (status, headers, body). No proxies: the registry is on loopback."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with opener.open(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers, exc.read()


class Registry(Started):
    """One registry process; use as a context manager (stop() always runs, also after a failed start)."""

    def __init__(self, auth=None, username='nsbox', password=None, anonymous_pull=False, binary=DOCKER_REGISTRY, start_timeout=15.0,
                 tls=None, client_auth=False):
        if auth not in (None, 'basic', 'token'):
            raise ValueError('auth must be None, "basic" or "token", not %r' % (auth,))
        if anonymous_pull and auth != 'token':
            raise ValueError('anonymous_pull needs auth="token" (an htpasswd registry has no anonymous access)')
        self.auth = auth
        self.anonymous_pull = anonymous_pull
        self.username = username if auth else None
        self.password = (password or secrets.token_urlsafe(12)) if auth else None
        self.binary = binary
        self.start_timeout = start_timeout
        self.workdir = self.log_path = self.storage = None  # made by start(), removed by stop()
        self.port = None
        self.proc = None
        self.token_service = None
        self.tls = tls
        self.client_auth = client_auth
        if client_auth and not tls:
            raise ValueError('client_auth needs tls')

    @property
    def host(self):
        """'127.0.0.1:PORT', the registry part of an image reference."""
        return '127.0.0.1:%d' % self.port

    @property
    def url(self):
        return '%s://%s' % ('https' if self.tls else 'http', self.host)

    def _client_context(self):
        """For the harness's own requests: trust the PKI's CA, show its client certificate."""
        if not self.tls:
            return None
        ctx = ssl.create_default_context(cafile=self.tls.ca)
        ctx.load_cert_chain(self.tls.client_cert, self.tls.client_key)
        return ctx

    @property
    def cert_dir(self):
        """A directory in the layout skopeo's --dest-cert-dir reads (client.cert/.key, ca.crt), or None."""
        if not self.tls:
            return None
        path = os.path.join(self.workdir, 'certs.d')
        if not os.path.isdir(path):
            os.makedirs(path)
            for src, name in ((self.tls.ca, 'ca.crt'), (self.tls.client_cert, 'client.cert'), (self.tls.client_key, 'client.key')):
                shutil.copyfile(src, os.path.join(path, name))
        return path

    @property
    def creds(self):
        """'user:password' for skopeo's --creds, or None for an anonymous registry."""
        return '%s:%s' % (self.username, self.password) if self.auth else None

    # -- lifecycle -------------------------------------------------------------------
    def _start(self):
        self.workdir = tempfile.mkdtemp(prefix='nsbox-registry-', dir='/tmp')
        self.log_path = os.path.join(self.workdir, 'registry.log')
        self.storage = os.path.join(self.workdir, 'storage')
        os.makedirs(self.storage)
        self.port = free_port()
        config = os.path.join(self.workdir, 'config.yml')
        with open(config, 'w') as f:
            json.dump(self._config(), f, indent=1)  # YAML is a superset of JSON: no YAML library needed
        # REGISTRY_* variables would override the config file: drop any inherited ones.
        env = {k: v for k, v in os.environ.items() if not k.startswith('REGISTRY_')}
        with open(self.log_path, 'wb') as log:
            self.proc = subprocess.Popen([self.binary, 'serve', config], stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, cwd=self.workdir)
        self._wait_ready()

    def _config(self):
        config = {
            'version': 0.1,
            'log': {'level': 'info', 'formatter': 'text', 'accesslog': {'disabled': False}},
            'storage': {'filesystem': {'rootdirectory': self.storage}, 'delete': {'enabled': True},
                        'maintenance': {'uploadpurging': {'enabled': False}}},
            'http': {'addr': self.host, 'secret': secrets.token_hex(16), 'headers': {'X-Content-Type-Options': ['nosniff']}},
        }
        if self.tls:
            config['http']['tls'] = {'certificate': self.tls.server_cert, 'key': self.tls.server_key}
            if self.client_auth:
                config['http']['tls']['clientcas'] = [self.tls.ca]
        if self.auth == 'basic':
            path = os.path.join(self.workdir, 'htpasswd')
            out = subprocess.run([HTPASSWD, '-Bbn', self.username, self.password], check=True, capture_output=True, text=True).stdout
            with open(path, 'w') as f:
                f.write(out.strip() + '\n')
            config['auth'] = {'htpasswd': {'realm': 'nsbox-test-registry', 'path': path}}
        elif self.auth == 'token':
            anonymous = ('pull',) if self.anonymous_pull else ()
            self.token_service = TokenService({self.username: self.password}, anonymous_actions=anonymous).start()
            bundle = os.path.join(self.workdir, 'token-ca.pem')
            with open(bundle, 'wb') as f:
                f.write(self.token_service.cert_pem)
            config['auth'] = {'token': {'realm': self.token_service.realm, 'service': self.token_service.service,
                                        'issuer': self.token_service.issuer, 'rootcertbundle': bundle}}
        return config

    def _wait_ready(self):
        """Until GET /v2/ answers 200 (anonymous) or 401 (auth): the process is up and its auth configured."""
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('docker-registry exited with %s during start:\n%s' % (self.proc.returncode, self.log_tail()))
            try:
                status = http_get(self.url + '/v2/', timeout=2, context=self._client_context())[0]
                if status in (200, 401):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                raise RuntimeError('docker-registry did not answer on %s within %.0fs:\n%s' % (self.url, self.start_timeout, self.log_tail()))
            time.sleep(0.05)

    def stop(self):
        """End the process this instance started (by its PID), its token service, and remove its temp dir."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        if self.token_service is not None:
            self.token_service.stop()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- helpers for tests -------------------------------------------------------------
    def log_tail(self, lines=40):
        try:
            with open(self.log_path, 'rb') as f:
                return b''.join(f.readlines()[-lines:]).decode('utf-8', 'replace')
        except (OSError, TypeError):  # TypeError: never started, no log path
            return '(no log)'

    def get(self, path, headers=None):
        """GET a registry path (e.g. '/v2/busybox/manifests/latest'): (status, headers, body)."""
        return http_get(self.url + path, headers, context=self._client_context())
