# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The static probe program (tests/probe/probe.c): built once with ``gcc -static`` and cached.

Tests bind it read-only into a container (``volumes: ['PATH:/probe:ro']``) to make the system
calls busybox cannot (keyctl, io_uring_setup, userfaultfd, clone3, bpf, kexec_load...). The
binary is cached in $NSBOX_BUILD/probe under the hash of its source (several runs may share it:
built under a lock, renamed into place).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess

SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'probe', 'probe.c')
IN_CONTAINER = '/probe'


def cache_dir():
    return os.path.join(os.environ.get('NSBOX_BUILD') or '/var/tmp/nsbox-build', 'probe')


def build():
    """The path of the built probe (built now when missing); raises RuntimeError when it cannot be built."""
    with open(SOURCE, 'rb') as f:
        key = hashlib.sha256(f.read()).hexdigest()[:16]
    out_dir = cache_dir()
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, 'probe-' + key)
    with open(os.path.join(out_dir, '.lock'), 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(path):
            return path
        gcc = shutil.which('gcc')
        if gcc is None:
            raise RuntimeError('gcc is missing: scripts/setup.sh installs gcc and libc6-dev')
        res = subprocess.run([gcc, '-static', '-O2', '-Wall', '-o', path + '.tmp', SOURCE], capture_output=True, text=True, check=False)
        if res.returncode != 0:
            raise RuntimeError('gcc -static failed for %s: %s' % (SOURCE, res.stderr.strip()))
        os.chmod(path + '.tmp', 0o755)
        os.rename(path + '.tmp', path)
    return path


def volume(path):
    """The volumes entry that binds the probe at /probe, read-only."""
    return '%s:%s:ro' % (path, IN_CONTAINER)
