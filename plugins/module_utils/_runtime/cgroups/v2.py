# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup v2: one tree; controllers are enabled down the path through ``cgroup.subtree_control``."""
from __future__ import annotations

import os
import time

from ..errors import CgroupError
from .layout import read_text, write_text
from .manager import CgroupManager, make_dirs, read_kv
from .resources import ROWS


class CgroupV2Manager(CgroupManager):
    version = 'v2'
    column = 'v2'

    def __init__(self, path, root, may_enable_root=False):
        """``root`` is the cgroup2 mount point; ``may_enable_root``: the root's subtree_control may be
        written (a v2 host whose cgroups nobody else manages, as runc does there); never on systemd
        hosts or on the cgroup2 tree of a hybrid host."""
        super().__init__(path)
        self.root = root
        self.dir = os.path.join(root, path.lstrip('/'))
        self.may_enable_root = may_enable_root

    def dirs(self):
        return [self.dir]

    def _file(self, name):
        return os.path.join(self.dir, name)

    def _path(self, controller, filename, name):
        return os.path.join(self.dir, filename)

    # -- create ------------------------------------------------------------------------------
    def _create(self):
        make_dirs(self.dir)

    def enable_controllers(self, wanted):
        """Make ``wanted`` controllers available in this cgroup: enable each in the subtree_control of
        every ancestor below the root (and the root's only when allowed). A controller the root does not
        offer, or may not be enabled there, is a clear error."""
        wanted = set(wanted)
        if not wanted:
            return
        ancestors, head = [], os.path.dirname(self.dir)
        while head.startswith(self.root) and len(head) >= len(self.root):
            ancestors.append(head)
            if head == self.root:
                break
            head = os.path.dirname(head)
        for d in reversed(ancestors):
            available = set(read_text(os.path.join(d, 'cgroup.controllers'), '').split())
            missing = wanted - available
            if missing:
                raise CgroupError('enable', 'controllers %s for cgroup %s' % (', '.join(sorted(missing)), self.path),
                                  'the cgroup %s does not offer them (its parent does not delegate them)' % ('/' + os.path.relpath(d, self.root)).rstrip('.'))
            enabled = set(read_text(os.path.join(d, 'cgroup.subtree_control'), '').split())
            need = wanted - enabled
            if not need:
                continue
            if d == self.root and not self.may_enable_root:
                raise CgroupError('enable', 'controllers %s for cgroup %s' % (', '.join(sorted(need)), self.path),
                                  'they are not enabled in the root cgroup, and nsbox does not write the root on this host')
            write_text(os.path.join(d, 'cgroup.subtree_control'), ' '.join('+' + c for c in sorted(need)))

    def controllers(self):
        return set(read_text(self._file('cgroup.controllers'), '').split())

    # -- read and write through the table's v2 column ---------------------------------------
    def read(self, resources, names=None):
        """Current values; a setting whose controller is not enabled here yet reads as unset (None): writing it enables it."""
        names = list(resources.managed()) if names is None else names
        available = self.controllers() | {None}
        return {name: ROWS[name].v2.get(self, name, resources) if ROWS[name].v2.controller in available else None for name in names}

    def _write(self, resources, changes):
        self.enable_controllers({ROWS[n].v2.controller for n in changes} - {None})
        super()._write(resources, changes)

    def freeze(self, frozen=True):
        """Freeze (waiting until cgroup.events says every process is stopped) or thaw (effective at once)."""
        write_text(self._file('cgroup.freeze'), 1 if frozen else 0)
        deadline = time.monotonic() + 10
        while frozen and read_kv(self._file('cgroup.events')).get('frozen') != 1:
            if time.monotonic() > deadline:
                raise CgroupError('freeze', 'cgroup %s' % self.path, 'the freezer did not settle within 10s')
            time.sleep(0.005)

    # -- end ---------------------------------------------------------------------------------
    def kill(self, timeout=10.0):
        """cgroup.kill (Linux 5.14+): one write kills the whole subtree, forks included; then wait until it is empty.
        Older kernels: freeze, SIGKILL each process, thaw, until none is left."""
        if not os.path.isdir(self.dir):
            return
        if os.path.exists(self._file('cgroup.kill')):
            write_text(self._file('cgroup.kill'), 1)
            self._signal_until_empty(timeout)
        else:
            self._signal_until_empty(timeout, freeze=self.freeze if os.path.exists(self._file('cgroup.freeze')) else None)

    def stats(self):
        if not os.path.isdir(self.dir):
            return {}
        out = {'pids': len(self.procs())}
        available = self.controllers()
        if 'memory' in available:
            events = read_kv(self._file('memory.events'))
            out['memory'] = {'usage': int(read_text(self._file('memory.current'), '0') or 0),
                             'peak': int(read_text(self._file('memory.peak'), '0') or 0),
                             'oom_kills': events.get('oom_kill', 0)}
        st = read_kv(self._file('cpu.stat'))
        out['cpu'] = {'usage_usec': st.get('usage_usec', 0), 'nr_periods': st.get('nr_periods', 0),
                      'nr_throttled': st.get('nr_throttled', 0), 'throttled_usec': st.get('throttled_usec', 0)}
        if 'pids' in available:
            out['pids'] = int(read_text(self._file('pids.current'), '0') or 0)
        return out
