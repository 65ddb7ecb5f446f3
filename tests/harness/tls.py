# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A throwaway PKI for TLS tests, made with the openssl command: a CA, a server and a client certificate."""
from __future__ import annotations

import os
import subprocess

OPENSSL = '/usr/bin/openssl'


def _openssl(*args, cwd):
    subprocess.run([OPENSSL] + list(args), cwd=cwd, check=True, stdin=subprocess.DEVNULL, capture_output=True)


class PKI:
    """Files in ``directory``: ca.pem, server.pem/server.key (for 127.0.0.1 and localhost), client.pem/client.key.

    ``other_ca.pem`` is a second CA that signed nothing here: a client trusting only it must refuse the server.
    """

    def __init__(self, directory, hosts=('127.0.0.1', 'localhost'), days=2):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca = self._path('ca.pem')
        self.other_ca = self._path('other_ca.pem')
        self.server_cert, self.server_key = self._path('server.pem'), self._path('server.key')
        self.client_cert, self.client_key = self._path('client.pem'), self._path('client.key')
        for name in ('ca', 'other_ca'):
            _openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', str(days),
                     '-subj', '/CN=nsbox test %s' % name, '-keyout', name + '.key', '-out', name + '.pem',
                     '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', cwd=directory)
        san = ','.join(('IP:%s' if h.replace('.', '').isdigit() else 'DNS:%s') % h for h in hosts)
        self._leaf('server', '/CN=%s' % hosts[0], 'subjectAltName=%s\nextendedKeyUsage=serverAuth\n' % san, days)
        self._leaf('client', '/CN=nsbox test client', 'extendedKeyUsage=clientAuth\n', days)

    def _path(self, name):
        return os.path.join(self.dir, name)

    def _leaf(self, name, subject, extensions, days):
        with open(self._path(name + '.ext'), 'w') as f:
            f.write(extensions)
        _openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', subject,
                 '-keyout', name + '.key', '-out', name + '.csr', cwd=self.dir)
        _openssl('x509', '-req', '-in', name + '.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', str(days),
                 '-extfile', name + '.ext', '-out', name + '.pem', cwd=self.dir)
