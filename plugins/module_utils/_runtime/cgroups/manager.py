# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one interface every cgroup manager (v1, v2, systemd) offers.

A manager owns one cgroup path. Settings go through :meth:`plan` (read back, compare) and
:meth:`apply` (write only what differs, in an order the kernel accepts); the container code
and the ``cgroup`` module use nothing else. Which file keeps which setting is not here: each
row of ``resources.TABLE`` says it per backend, and a manager reads and writes through the row.
"""
from __future__ import annotations

import os
import signal
import time

from ..errors import CgroupError
from .layout import read_text, write_text
from .resources import ROWS, TABLE


class CgroupManager:
    version = None
    driver = 'cgroupfs'
    column = None  # which column of resources.TABLE this backend writes through

    def __init__(self, path):
        self.path = path

    # -- what each version provides --------------------------------------------------------
    def dirs(self):
        """Every directory that makes up this cgroup (one per v1 hierarchy, one on v2)."""
        raise NotImplementedError

    def _path(self, controller, filename, name):
        """The path of ``filename`` of ``controller`` (None: the cgroup's own core files) for setting ``name``."""
        raise NotImplementedError

    def _write(self, resources, changes):
        """Write the settings in ``changes`` ({name: (before, after)})."""
        for kind, name in to_write(self.column, resources, changes):
            kind.set(self, name, resources, changes)

    def _create(self):
        raise NotImplementedError

    def stats(self):
        raise NotImplementedError

    def kill(self, timeout=10.0):
        raise NotImplementedError

    def freeze(self, frozen=True):
        raise NotImplementedError

    # -- files, for the table's kinds ----------------------------------------------------------
    def has_file(self, controller, filename, name):
        return os.path.exists(self._path(controller, filename, name))

    def read_file(self, controller, filename, name, hint=None, default=None):
        """A cgroup file's text, stripped; a missing file says which setting needed it (and why it may be missing)."""
        path = self._path(controller, filename, name)
        if default is not None:
            return read_text(path, default).strip()
        if not os.path.exists(path):
            raise CgroupError('set', '%s on cgroup %s' % (name, self.path), 'this host has no %s%s' % (filename, ' (%s)' % hint if hint else ''),
                              path=path)
        return read_text(path).strip()

    def write_file(self, controller, filename, value, name, hint=None):
        path = self._path(controller, filename, name)
        if hint and not os.path.exists(path):
            raise CgroupError('set', '%s on cgroup %s' % (name, self.path), 'this host has no %s (%s)' % (filename, hint), path=path)
        write_text(path, value)

    # -- shared ------------------------------------------------------------------------------
    def exists(self):
        return all(os.path.isdir(d) for d in self.dirs())

    def create(self):
        """Create the cgroup (idempotent); returns True when something was made."""
        if self.exists():
            return False
        self._create()
        return True

    def read(self, resources, names=None):
        """The current value of each setting ``resources`` manages (or of ``names``), in its units."""
        names = list(resources.managed()) if names is None else names
        return {name: getattr(ROWS[name], self.column).get(self, name, resources) for name in names}

    def plan(self, resources):
        """{name: (current, wanted)} for every managed setting that differs (nothing written)."""
        wanted = resources.managed()
        if not self.exists():
            return {name: (None, value) for name, value in wanted.items()}
        current = self.read(resources)
        return {name: (current.get(name), value) for name, value in wanted.items() if not self.same(name, current.get(name), value)}

    def apply(self, resources, changes=None):
        """Create if needed and write what differs; returns the plan that was carried out. ``changes``: a plan
        this caller has just made with :meth:`plan` (the files are then not read a second time)."""
        self.create()
        if changes is None:
            changes = self.plan(resources)
        if changes:
            self._write(resources, changes)
        return changes

    @staticmethod
    def same(name, current, wanted):
        return ROWS[name].same(current, wanted)

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


def to_write(column, resources, changes):
    """[(kind, name)] to write, in table order: a kind once (cpu.max keeps two settings), at the first of its
    rows that changed, or that is managed and follows a change (``kind.also``: v2 swap follows memory);
    a kind that says it ``goes_first`` in this change (v1 memsw raised past memory) is moved ahead."""
    out, done = [], []
    for row in TABLE:
        kind = getattr(row, column)
        if any(kind is k for k in done):
            continue
        if row.name in changes or (getattr(resources, row.name) is not None and any(a in changes for a in kind.also)):
            done.append(kind)
            out.append((kind, row.name))
    return sorted(out, key=lambda entry: not entry[0].goes_first(changes))  # stable: table order otherwise
