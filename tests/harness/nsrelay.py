# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SSH's ProxyCommand for a test host in a network namespace of its own:
``python3 nsrelay.py /proc/PID/ns/net [HOST] PORT`` joins that namespace and relays stdin/stdout to
HOST:PORT there (default 127.0.0.1; for Molecule's lab hosts, the lab's namespace and a
host's address). The machine's own network is never touched: no veth, no address."""
from __future__ import annotations

import ctypes
import os
import select
import socket
import sys

CLONE_NEWNET = 0x40000000


def main(ns_path, port, host='127.0.0.1'):
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(ns_path, os.O_RDONLY)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        sys.stderr.write('nsrelay: setns %s: %s\n' % (ns_path, os.strerror(err)))
        return 1
    os.close(fd)
    sock = socket.create_connection((host, int(port)))
    ins, out = sys.stdin.fileno(), sys.stdout.fileno()
    readers = [ins, sock]
    while readers:
        for r in select.select(readers, [], [])[0]:
            if r is sock:
                data = sock.recv(65536)
                if not data:
                    return 0
                os.write(out, data)
            else:
                data = os.read(ins, 65536)
                if not data:
                    sock.shutdown(socket.SHUT_WR)
                    readers.remove(ins)
                else:
                    sock.sendall(data)
    return 0


if __name__ == '__main__':
    if len(sys.argv) == 4:
        sys.exit(main(sys.argv[1], sys.argv[3], sys.argv[2]))
    sys.exit(main(sys.argv[1], sys.argv[2]))
