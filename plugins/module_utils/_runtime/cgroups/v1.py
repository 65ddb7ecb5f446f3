# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup v1: one directory per controller hierarchy (and the cgroup2 tree joined on hybrid hosts)."""
from __future__ import annotations

import os
import time

from ..kernel.units import UNLIMITED
from ..errors import CgroupError
from .layout import V1_CONTROLLERS, read_text, write_text
from .manager import CgroupManager, make_dirs, read_kv
from .resources import THROTTLE_KEYS, DeviceRule

# memory.limit_in_bytes reads back as PAGE_COUNTER_MAX * page size when there is no limit.
_NO_LIMIT = 1 << 62
_THROTTLE_FILES = {'device_read_bps': 'blkio.throttle.read_bps_device', 'device_write_bps': 'blkio.throttle.write_bps_device',
                   'device_read_iops': 'blkio.throttle.read_iops_device', 'device_write_iops': 'blkio.throttle.write_iops_device'}
# Which hierarchy each setting lives in.
_CONTROLLER = {'memory': 'memory', 'memory_reservation': 'memory', 'memory_swap': 'memory', 'cpu_shares': 'cpu', 'cpus': 'cpu',
               'cpu_period': 'cpu', 'cpuset_cpus': 'cpuset', 'cpuset_mems': 'cpuset', 'pids_limit': 'pids', 'blkio_weight': 'blkio',
               'devices': 'devices', 'frozen': 'freezer'}
_CONTROLLER.update({k: 'blkio' for k in THROTTLE_KEYS})


def _size(text):
    value = int(text)
    return UNLIMITED if value >= _NO_LIMIT else value


class CgroupV1Manager(CgroupManager):
    version = 'v1'

    def __init__(self, path, layout):
        super().__init__(path)
        self.layout = layout
        self.version = 'hybrid' if layout.unified else 'v1'
        self.controllers = {c: os.path.join(point, path.lstrip('/')) for c, point in layout.v1.items() if c in V1_CONTROLLERS}
        self.unified = os.path.join(layout.unified, path.lstrip('/')) if layout.unified else None

    def dirs(self):
        dirs = [self.controllers[c] for c in sorted(self.controllers)]
        return dirs + ([self.unified] if self.unified else [])

    def _dir(self, name):
        controller = _CONTROLLER[name]
        if controller not in self.controllers:
            raise CgroupError('set', '%s on cgroup %s' % (name, self.path), 'the %s controller is not mounted on this host' % controller)
        return self.controllers[controller]

    def _file(self, name, filename, required=True):
        path = os.path.join(self._dir(name), filename)
        if required and not os.path.exists(path):
            raise CgroupError('set', '%s on cgroup %s' % (name, self.path),
                              'this host has no %s (%s)' % (filename, _MISSING_HINT.get(filename, 'kernel option off')), path=path)
        return path

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

    # -- read --------------------------------------------------------------------------------
    def read(self, resources):
        out = {}
        for name in resources.managed():
            out[name] = self._read_one(name)
        return out

    def _read_one(self, name):
        def rd(filename):
            return read_text(self._file(name, filename)).strip()
        if name == 'memory':
            return _size(rd('memory.limit_in_bytes'))
        if name == 'memory_reservation':
            return _size(rd('memory.soft_limit_in_bytes'))
        if name == 'memory_swap':
            return _size(rd('memory.memsw.limit_in_bytes'))
        if name == 'cpu_shares':
            return int(rd('cpu.shares'))
        if name == 'cpu_period':
            return int(rd('cpu.cfs_period_us'))
        if name == 'cpus':
            quota = int(rd('cpu.cfs_quota_us'))
            return None if quota < 0 else quota / int(rd('cpu.cfs_period_us'))
        if name in ('cpuset_cpus', 'cpuset_mems'):
            return rd('cpuset.' + name.split('_')[1])
        if name == 'pids_limit':
            value = rd('pids.max')
            return UNLIMITED if value == 'max' else int(value)
        if name == 'blkio_weight':
            return self._blkio_weight()[1]
        if name in THROTTLE_KEYS:
            out = {}
            for line in rd(_THROTTLE_FILES[name]).splitlines():
                dev, _sep, rate = line.partition(' ')
                major, _sep, minor = dev.partition(':')
                out[(int(major), int(minor))] = int(rate)
            return out
        if name == 'devices':
            return [DeviceRule.parse(line) for line in rd('devices.list').splitlines() if line.strip()]
        if name == 'frozen':
            return rd('freezer.state') == 'FROZEN'
        raise CgroupError('read', name, 'unknown setting')

    def _blkio_weight(self):
        """(file, weight): blkio.weight (CFQ) or blkio.bfq.weight ('default N'), whichever the kernel has."""
        for filename in ('blkio.weight', 'blkio.bfq.weight'):
            path = os.path.join(self._dir('blkio_weight'), filename)
            if os.path.exists(path):
                text = read_text(path).split()
                return path, int(text[-1]) if text else None
        raise CgroupError('set', 'blkio_weight on cgroup %s' % self.path,
                          'this host has no blkio.weight or blkio.bfq.weight (no CFQ/BFQ I/O scheduler)')

    # -- write -------------------------------------------------------------------------------
    def _wr(self, name, filename, value):
        write_text(self._file(name, filename), value)

    def _write(self, resources, changes):
        wr = self._wr
        if 'memory' in changes or 'memory_swap' in changes:
            self._write_memory(resources, changes)
        if 'memory_reservation' in changes:
            wr('memory_reservation', 'memory.soft_limit_in_bytes', resources.memory_reservation)
        if 'cpu_shares' in changes:
            wr('cpu_shares', 'cpu.shares', resources.cpu_shares)
        if 'cpu_period' in changes or 'cpus' in changes:
            # A quota must fit the period: lift the quota, set the period, then the new quota.
            if 'cpu_period' in changes:
                wr('cpu_period', 'cpu.cfs_quota_us', -1)
                wr('cpu_period', 'cpu.cfs_period_us', resources.cpu_period)
            if resources.cpus is not None:
                wr('cpus', 'cpu.cfs_quota_us', resources.cpu_quota)
        for name in ('cpuset_cpus', 'cpuset_mems'):
            if name in changes:
                wr(name, 'cpuset.' + name.split('_')[1], getattr(resources, name))
        if 'pids_limit' in changes:
            wr('pids_limit', 'pids.max', 'max' if resources.pids_limit == UNLIMITED else resources.pids_limit)
        if 'blkio_weight' in changes:
            path, _weight = self._blkio_weight()
            write_text(path, resources.blkio_weight)
        for name in THROTTLE_KEYS:
            if name in changes:
                before, after = changes[name]
                for dev in set(before or {}) - set(after):
                    wr(name, _THROTTLE_FILES[name], '%d:%d 0' % dev)  # 0 removes the limit
                for dev, rate in sorted(after.items()):
                    wr(name, _THROTTLE_FILES[name], '%d:%d %d' % (dev[0], dev[1], rate))
        if 'devices' in changes:
            # Deny everything, then allow each rule: the same default-deny model as Docker's.
            wr('devices', 'devices.deny', 'a')
            for rule in resources.devices:
                wr('devices', 'devices.allow', str(rule))
        if 'frozen' in changes:
            self.freeze(resources.frozen)

    def _write_memory(self, resources, changes):
        """memory.memsw must stay >= memory at every step: raise memsw first when memory would pass it."""
        wr = self._wr
        mem = resources.memory if 'memory' in changes else None
        swap = resources.memory_swap if 'memory_swap' in changes else None
        if swap is not None and mem is not None and mem != UNLIMITED:
            current_swap = self._read_one('memory_swap')
            if current_swap != UNLIMITED and mem > current_swap:
                wr('memory_swap', 'memory.memsw.limit_in_bytes', swap)
                swap = None
        if mem is not None:
            wr('memory', 'memory.limit_in_bytes', mem)
        if swap is not None:
            wr('memory_swap', 'memory.memsw.limit_in_bytes', swap)

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


_MISSING_HINT = {'memory.memsw.limit_in_bytes': 'swap accounting is off: boot with swapaccount=1',
                 'cpu.cfs_quota_us': 'the kernel has no CFS bandwidth control (CONFIG_CFS_BANDWIDTH)'}
