# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""cgroup v2: one tree; controllers are enabled down the path through ``cgroup.subtree_control``."""
from __future__ import annotations

import os
import time

from ..kernel.units import UNLIMITED
from . import devices as devfilter
from ..errors import CgroupError
from .layout import read_text, write_text
from .manager import CgroupManager, make_dirs, read_kv
from .resources import THROTTLE_KEYS, blkio_to_io_weight, shares_to_weight

CONTROLLER = {'memory': 'memory', 'memory_reservation': 'memory', 'memory_swap': 'memory', 'cpu_shares': 'cpu', 'cpus': 'cpu',
              'cpu_period': 'cpu', 'cpuset_cpus': 'cpuset', 'cpuset_mems': 'cpuset', 'pids_limit': 'pids', 'blkio_weight': 'io'}
CONTROLLER.update({k: 'io' for k in THROTTLE_KEYS})
_IO_KEY = {'device_read_bps': 'rbps', 'device_write_bps': 'wbps', 'device_read_iops': 'riops', 'device_write_iops': 'wiops'}


def _max(text):
    return UNLIMITED if text == 'max' else int(text)


class CgroupV2Manager(CgroupManager):
    version = 'v2'

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

    # -- read --------------------------------------------------------------------------------
    def read(self, resources):
        """Current values; a setting whose controller is not enabled here yet reads as unset (None): writing it enables it."""
        available = self.controllers()
        return {name: self._read_one(name, resources) if CONTROLLER.get(name, 'core') in available | {'core'} else None
                for name in resources.managed()}

    def _rd(self, filename, name):
        path = self._file(filename)
        if not os.path.exists(path):
            raise CgroupError('set', '%s on cgroup %s' % (name, self.path), 'this host has no %s' % filename, path=path)
        return read_text(path).strip()

    def _read_one(self, name, resources):
        if name == 'devices':
            return devfilter.attached_rules(self.dir, resources.devices)
        if name == 'frozen':
            return read_text(self._file('cgroup.freeze'), '0').strip() == '1'
        if name == 'memory':
            return _max(self._rd('memory.max', name))
        if name == 'memory_reservation':
            return int(self._rd('memory.low', name))
        if name == 'memory_swap':
            swap = _max(self._rd('memory.swap.max', name))
            mem = _max(self._rd('memory.max', name))
            return UNLIMITED if UNLIMITED in (swap, mem) else mem + swap
        if name == 'cpu_shares':
            # Stored as a weight: report the shares the wanted value converts to when they agree.
            weight = int(self._rd('cpu.weight', name))
            wanted = resources.cpu_shares
            return wanted if wanted is not None and shares_to_weight(wanted) == weight else weight
        if name in ('cpus', 'cpu_period'):
            quota, _sep, period = self._rd('cpu.max', name).partition(' ')
            if name == 'cpu_period':
                return int(period)
            return None if quota == 'max' else int(quota) / int(period)
        if name in ('cpuset_cpus', 'cpuset_mems'):
            return self._rd('cpuset.' + name.split('_')[1], name)
        if name == 'pids_limit':
            return _max(self._rd('pids.max', name))
        if name == 'blkio_weight':
            text = self._rd('io.weight', name).split()
            weight = int(text[1]) if len(text) > 1 else int(text[0])
            wanted = resources.blkio_weight
            return wanted if wanted is not None and blkio_to_io_weight(wanted) == weight else weight
        if name in THROTTLE_KEYS:
            out = {}
            for line in self._rd('io.max', name).splitlines():
                dev, *pairs = line.split()
                major, _sep, minor = dev.partition(':')
                for pair in pairs:
                    key, _sep, value = pair.partition('=')
                    if key == _IO_KEY[name] and value != 'max':
                        out[(int(major), int(minor))] = int(value)
            return out
        raise CgroupError('read', name, 'unknown setting')

    # -- write -------------------------------------------------------------------------------
    def _write(self, resources, changes):
        self.enable_controllers({CONTROLLER[n] for n in changes if n in CONTROLLER})

        def wr(filename, value):
            write_text(self._file(filename), value)

        def fmt(value):
            return 'max' if value == UNLIMITED else value
        if 'memory' in changes:
            wr('memory.max', fmt(resources.memory))
        if 'memory_swap' in changes or ('memory' in changes and resources.memory_swap is not None):
            swap = resources.memory_swap
            wr('memory.swap.max', 'max' if UNLIMITED in (swap, resources.memory) else swap - resources.memory)
        if 'memory_reservation' in changes:
            wr('memory.low', 0 if resources.memory_reservation == UNLIMITED else resources.memory_reservation)
        if 'cpu_shares' in changes:
            wr('cpu.weight', shares_to_weight(resources.cpu_shares))
        if 'cpus' in changes or 'cpu_period' in changes:
            quota = resources.cpu_quota
            wr('cpu.max', '%s %d' % ('max' if quota is None else quota, resources.cpu_period))
        for name in ('cpuset_cpus', 'cpuset_mems'):
            if name in changes:
                wr('cpuset.' + name.split('_')[1], getattr(resources, name))
        if 'pids_limit' in changes:
            wr('pids.max', fmt(resources.pids_limit))
        if 'blkio_weight' in changes:
            wr('io.weight', 'default %d' % blkio_to_io_weight(resources.blkio_weight))
        for name in THROTTLE_KEYS:
            if name in changes:
                before, after = changes[name]
                for dev in set(before or {}) - set(after):
                    wr('io.max', '%d:%d %s=max' % (dev[0], dev[1], _IO_KEY[name]))
                for dev, rate in sorted(after.items()):
                    wr('io.max', '%d:%d %s=%d' % (dev[0], dev[1], _IO_KEY[name], rate))
        if 'devices' in changes:
            devfilter.apply_rules(self.dir, resources.devices)
        if 'frozen' in changes:
            self.freeze(resources.frozen)

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
