# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Removing a cgroup tree the tests made (never the host's own cgroups: callers pass their own directories)."""
from __future__ import annotations

import os
import signal
import time


def remove_tree(top, kill=False, wait=5.0):
    """Remove the cgroup directory ``top`` and every one below it, deepest first. ``kill``: SIGKILL the processes of
    each first. A directory the kernel still calls busy (its last process not gone yet) is retried for up to ``wait``
    seconds; one that is gone already is fine."""
    for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda e: -e[0].count('/')):
        if kill:
            procs = os.path.join(dirpath, 'cgroup.procs')
            for pid in open(procs).read().split() if os.path.exists(procs) else []:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
        deadline = time.monotonic() + wait
        while True:
            try:
                os.rmdir(dirpath)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.02)
