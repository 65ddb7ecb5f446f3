# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface every cgroup manager (v1, v2, systemd) offers.

A manager owns one cgroup path. Settings go through :meth:`plan` (read back, compare) and
:meth:`apply` (write only what differs, in an order the kernel accepts); the container code
and the ``cgroup`` module use nothing else.
"""
from __future__ import annotations

import os
import signal
import time

from ..errors import CgroupError
from .layout import read_text, write_text


class CgroupManager:
    version = None
    driver = 'cgroupfs'

    def __init__(self, path):
        self.path = path

    # -- what each version provides --------------------------------------------------------
    def dirs(self):
        """Every directory that makes up this cgroup (one per v1 hierarchy, one on v2)."""
        raise NotImplementedError

    def read(self, resources):
        """The current value of each setting ``resources`` manages, in its units."""
        raise NotImplementedError

    def _write(self, resources, changes):
        """Write the settings in ``changes`` ({name: (before, after)})."""
        raise NotImplementedError

    def _create(self):
        raise NotImplementedError

    def stats(self):
        raise NotImplementedError

    def kill(self, timeout=10.0):
        raise NotImplementedError

    # -- shared ------------------------------------------------------------------------------
    def exists(self):
        return all(os.path.isdir(d) for d in self.dirs())

    def create(self):
        """Create the cgroup (idempotent); returns True when something was made."""
        if self.exists():
            return False
        self._create()
        return True

    def plan(self, resources):
        """{name: (current, wanted)} for every managed setting that differs (nothing written)."""
        wanted = resources.managed()
        if not self.exists():
            return {name: (None, value) for name, value in wanted.items()}
        current = self.read(resources)
        return {name: (current.get(name), value) for name, value in wanted.items() if not self.same(name, current.get(name), value)}

    def apply(self, resources):
        """Create if needed and write what differs; returns the plan that was carried out."""
        self.create()
        changes = self.plan(resources)
        if changes:
            self._write(resources, changes)
        return changes

    @staticmethod
    def same(name, current, wanted):
        if name in ('cpuset_cpus', 'cpuset_mems'):
            return current is not None and expand_list(current) == expand_list(wanted)
        if name == 'devices':
            return current is not None and sorted(map(str, current)) == sorted(map(str, wanted))
        if name == 'cpus':
            return current is not None and abs(current - wanted) < 0.0005
        return current == wanted

    def procs(self):
        """PIDs in the cgroup (from its first directory: every hierarchy holds the same ones)."""
        text = read_text(os.path.join(self.dirs()[0], 'cgroup.procs'), '')
        return sorted(int(p) for p in text.split())

    def add_procs(self, pids):
        for pid in pids:
            for d in self.dirs():
                try:
                    write_text(os.path.join(d, 'cgroup.procs'), int(pid))
                except CgroupError as exc:
                    raise CgroupError('move', 'process %s into cgroup %s' % (pid, self.path), exc.cause, path=d, errno=exc.errno)

    def remove(self, timeout=10.0):
        """Kill every process, then remove the cgroup and any child cgroups (bottom-up). True if it existed."""
        existing = [d for d in self.dirs() if os.path.isdir(d)]
        if not existing:
            return False
        self.kill(timeout)
        for top in existing:
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda e: -e[0].count('/')):
                _rmdir(dirpath, timeout)
        return True

    def _signal_until_empty(self, timeout, freeze=None):
        """Send SIGKILL to every process until none is left (the v1 way: freeze so none can fork meanwhile)."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self._all_procs()
            if not pids:
                return
            if freeze:
                freeze(True)
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            if freeze:
                freeze(False)
            if time.monotonic() > deadline:
                raise CgroupError('kill', 'the processes of cgroup %s' % self.path, 'still running after %ss: %s' % (timeout, pids[:10]))
            time.sleep(0.01)

    def _all_procs(self):
        """PIDs in the cgroup and its children."""
        pids = set()
        for dirpath, _dirs, files in os.walk(self.dirs()[0]):
            if 'cgroup.procs' in files:
                pids.update(int(p) for p in read_text(os.path.join(dirpath, 'cgroup.procs'), '').split())
        return sorted(pids)


def _rmdir(path, timeout):
    """rmdir a cgroup: EBUSY lasts a moment after the last process died (it is being reaped)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != 16 or time.monotonic() > deadline:  # EBUSY
                raise CgroupError.from_oserror('remove', 'cgroup %s' % path, exc)
            time.sleep(0.01)


def make_dirs(path):
    """mkdir -p for cgroups; returns the directories it made, top first (a new v1 cpuset needs its cpus/mems filled)."""
    made, head = [], path
    while not os.path.isdir(head):
        made.append(head)
        head = os.path.dirname(head)
    for d in reversed(made):
        try:
            os.mkdir(d, 0o755)
        except FileExistsError:
            pass
        except OSError as exc:
            raise CgroupError.from_oserror('create', 'cgroup %s' % d, exc)
    return list(reversed(made))


def expand_list(text):
    """'0-2,5' -> {0, 1, 2, 5} (cpuset lists)."""
    out = set()
    for part in str(text).strip().split(','):
        if not part:
            continue
        low, _sep, high = part.partition('-')
        out.update(range(int(low), int(high or low) + 1))
    return out


def read_kv(path):
    """'key value' lines (memory.stat, cpu.stat, memory.events, memory.oom_control) -> {key: int}."""
    out = {}
    for line in read_text(path, '').splitlines():
        key, _sep, value = line.partition(' ')
        try:
            out[key] = int(value)
        except ValueError:
            continue
    return out
