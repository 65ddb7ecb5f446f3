# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup v1: one directory per controller hierarchy (and the cgroup2 tree joined on hybrid hosts)."""
from __future__ import annotations

import os
import time

from ..errors import CgroupError
from .layout import V1_CONTROLLERS, read_text, write_text
from .manager import CgroupManager, make_dirs, read_kv


class CgroupV1Manager(CgroupManager):
    version = 'v1'
    column = 'v1'

    def __init__(self, path, layout):
        super().__init__(path)
        self.layout = layout
        self.version = 'hybrid' if layout.unified else 'v1'
        self.controllers = {c: os.path.join(point, path.lstrip('/')) for c, point in layout.v1.items() if c in V1_CONTROLLERS}
        self.unified = os.path.join(layout.unified, path.lstrip('/')) if layout.unified else None

    def dirs(self):
        dirs = [self.controllers[c] for c in sorted(self.controllers)]
        return dirs + ([self.unified] if self.unified else [])

    def _path(self, controller, filename, name):
        if controller not in self.controllers:
            raise CgroupError('set', '%s on cgroup %s' % (name, self.path), 'the %s controller is not mounted on this host' % controller)
        return os.path.join(self.controllers[controller], filename)

    # -- create ------------------------------------------------------------------------------
    def _create(self):
        for controller, path in sorted(self.controllers.items()):
            made = make_dirs(path)
            if controller == 'cpuset':
                # A new cpuset starts empty and takes no task: copy cpus/mems down from the parent.
                for d in made:
                    for name in ('cpuset.cpus', 'cpuset.mems'):
                        if not read_text(os.path.join(d, name), '').strip():
                            write_text(os.path.join(d, name), read_text(os.path.join(os.path.dirname(d), name)).strip())
        if self.unified:
            make_dirs(self.unified)

    def freeze(self, frozen=True):
        """Freeze or thaw every process (v1 freezer), waiting until the kernel says it is done."""
        path = os.path.join(self.controllers.get('freezer', ''), 'freezer.state')
        if 'freezer' not in self.controllers:
            raise CgroupError('freeze', 'cgroup %s' % self.path, 'the freezer controller is not mounted on this host')
        write_text(path, 'FROZEN' if frozen else 'THAWED')
        for _i in range(1000):
            if read_text(path).strip() == ('FROZEN' if frozen else 'THAWED'):
                return
            time.sleep(0.005)
            write_text(path, 'FROZEN' if frozen else 'THAWED')
        raise CgroupError('freeze' if frozen else 'thaw', 'cgroup %s' % self.path, 'the freezer did not settle')

    # -- end ---------------------------------------------------------------------------------
    def kill(self, timeout=10.0):
        """Kill every process: one write to cgroup.kill where the cgroup2 tree has it, else freeze + SIGKILL + thaw."""
        kill_file = os.path.join(self.unified, 'cgroup.kill') if self.unified else None
        if kill_file and os.path.exists(kill_file):
            write_text(kill_file, 1)
        self._signal_until_empty(timeout, freeze=self.freeze if 'freezer' in self.controllers and os.path.isdir(self.controllers['freezer']) else None)

    def stats(self):
        mem = self.controllers.get('memory')
        out = {'pids': len(self.procs()) if self.exists() else 0}
        if mem and os.path.isdir(mem):
            oom = read_kv(os.path.join(mem, 'memory.oom_control'))
            out['memory'] = {'usage': int(read_text(os.path.join(mem, 'memory.usage_in_bytes'), '0') or 0),
                             'peak': int(read_text(os.path.join(mem, 'memory.max_usage_in_bytes'), '0') or 0),
                             'oom_kills': oom.get('oom_kill', 0), 'under_oom': bool(oom.get('under_oom', 0))}
        acct = self.controllers.get('cpuacct')
        cpu = self.controllers.get('cpu')
        if acct and os.path.isdir(acct):
            out['cpu'] = {'usage_usec': int(read_text(os.path.join(acct, 'cpuacct.usage'), '0') or 0) // 1000}
        if cpu and os.path.isdir(cpu):
            st = read_kv(os.path.join(cpu, 'cpu.stat'))
            out.setdefault('cpu', {}).update(nr_periods=st.get('nr_periods', 0), nr_throttled=st.get('nr_throttled', 0),
                                             throttled_usec=st.get('throttled_time', 0) // 1000)
        pids = self.controllers.get('pids')
        if pids and os.path.isdir(pids):
            out['pids'] = int(read_text(os.path.join(pids, 'pids.current'), '0') or 0)
        return out
