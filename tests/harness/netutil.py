# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Loopback port helpers: test servers listen on 127.0.0.1 only, on ports the kernel picks."""
from __future__ import annotations

import socket
import time


def free_port():
    """A TCP port free on 127.0.0.1 right now (for servers that cannot be told to bind port 0)."""
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_port(host, port, timeout=10.0):
    """Wait until something accepts TCP connections on host:port; raise TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError('nothing listens on %s:%s after %.1fs: %s' % (host, port, timeout, exc)) from exc
            time.sleep(0.05)
