# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A forward HTTP proxy on 127.0.0.1 that records what went through it.

``CONNECT host:port`` opens a tunnel (HTTPS through the proxy); a request with an absolute
URI (``GET http://host/path``) is forwarded (plain HTTP through the proxy). Only loopback
destinations are allowed: the tests never reach out. ``log`` lists ('CONNECT', 'host:port')
or ('GET', 'http://...') in arrival order.
"""
from __future__ import annotations

import http.server
import select
import socket
import socketserver
import threading
import urllib.parse

from .lifecycle import Started
from .netutil import free_port

_HOP_BY_HOP = {'connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailers',
               'transfer-encoding', 'upgrade'}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Quiet: the proxy's own ``log`` is what tests read."""

    def _allowed(self, host):
        return host in ('127.0.0.1', 'localhost')

    def do_CONNECT(self):  # pylint: disable=invalid-name
        host, _sep, port = self.path.rpartition(':')
        self.server.log.append(('CONNECT', self.path))
        if not self._allowed(host):
            self.send_error(403, 'only loopback')
            return
        try:
            upstream = socket.create_connection((host, int(port)), timeout=10)
        except OSError:
            self.send_error(502)
            return
        self.send_response(200, 'Connection established')
        self.end_headers()
        self._pipe(self.connection, upstream)

    @staticmethod
    def _pipe(a, b):
        socks = [a, b]
        try:
            while True:
                readable, _w, _x = select.select(socks, [], [], 30)
                if not readable:
                    return
                for s in readable:
                    data = s.recv(65536)
                    if not data:
                        return
                    (b if s is a else a).sendall(data)
        except OSError:
            return
        finally:
            b.close()

    def _forward(self):
        url = urllib.parse.urlsplit(self.path)
        self.server.log.append((self.command, self.path))
        if url.scheme != 'http' or not self._allowed(url.hostname):
            self.send_error(403, 'only http:// to loopback')
            return
        body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
        upstream = socket.create_connection((url.hostname, url.port or 80), timeout=30)
        with upstream:
            path = url.path + ('?' + url.query if url.query else '')
            head = ['%s %s HTTP/1.1' % (self.command, path or '/')]
            head += ['%s: %s' % (k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
            head += ['Connection: close', '', '']
            upstream.sendall('\r\n'.join(head).encode('latin-1') + body)
            # Relay the answer as it comes, then close: no keep-alive through this proxy.
            self.close_connection = True
            while True:
                data = upstream.recv(65536)
                if not data:
                    break
                self.wfile.write(data)

    do_GET = do_HEAD = do_POST = _forward  # noqa: N815


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


class Proxy(Started):
    """Use as a context manager; ``url`` is ``http://127.0.0.1:PORT``."""

    def __init__(self):
        self.port = free_port()
        self.log = []
        self._server = None
        self._thread = None

    @property
    def url(self):
        return 'http://127.0.0.1:%d' % self.port

    def _start(self):
        self._server = _Server(('127.0.0.1', self.port), _Handler)
        self._server.log = self.log
        self._thread = threading.Thread(target=self._server.serve_forever, name='nsbox-test-proxy', daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None
