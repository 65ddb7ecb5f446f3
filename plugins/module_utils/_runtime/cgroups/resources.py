# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The limits asked of a cgroup, typed and checked once, independent of the cgroup version.

Options take Docker's names and units (``memory: 512m``, ``cpus: 1.5``, ``cpu_shares``,
``blkio_weight``, ``device_read_bps``...). A setting left out (None) is not managed: it is
neither written nor compared. Each manager turns these into its version's files.
"""
from __future__ import annotations

import os
import re
import stat

from ..errors import ConfigError
from ..kernel.units import UNLIMITED, parse_cpus, parse_size

PAGE = os.sysconf('SC_PAGE_SIZE')
DEFAULT_CPU_PERIOD = 100000  # microseconds, as the kernel's and Docker's default
THROTTLE_KEYS = ('device_read_bps', 'device_write_bps', 'device_read_iops', 'device_write_iops')
_CPUSET = re.compile(r'^\d+(-\d+)?(,\d+(-\d+)?)*\Z')
_DEVNUM = re.compile(r'^(\d+):(\d+)\Z')


class DeviceRule:
    """Allow ``access`` (subset of 'rwm') to devices of ``kind`` ('a' all, 'b' block, 'c' char), major/minor None = any."""

    __slots__ = ('kind', 'major', 'minor', 'access')

    def __init__(self, kind, major, minor, access):
        self.kind, self.major, self.minor, self.access = kind, major, minor, ''.join(c for c in 'rwm' if c in access)

    @classmethod
    def parse(cls, text):
        """Docker's --device-cgroup-rule form: ``c 1:3 rwm``, ``b 8:* r``, ``a *:* rwm``, ``c *:* m``."""
        parts = str(text).split()
        if len(parts) == 2 and parts[0] == 'a':
            parts = ['a', '*:*', parts[1]]
        if len(parts) != 3 or parts[0] not in ('a', 'b', 'c') or not parts[2] or set(parts[2]) - set('rwm'):
            raise ConfigError('parse', 'device rule %r' % (text,), 'expected "TYPE MAJOR:MINOR ACCESS" such as "c 1:3 rwm" (TYPE a, b or c)')
        major, sep, minor = parts[1].partition(':')
        nums = []
        for part in (major, minor):
            if part == '*':
                nums.append(None)
            elif part.isdigit() and int(part) < (1 << 32):
                nums.append(int(part))
            else:
                raise ConfigError('parse', 'device rule %r' % (text,), 'major and minor are numbers or *')
        if not sep:
            raise ConfigError('parse', 'device rule %r' % (text,), 'expected MAJOR:MINOR')
        return cls(parts[0], nums[0], nums[1], parts[2])

    def __str__(self):
        major, minor = ('*' if n is None else str(n) for n in (self.major, self.minor))
        return '%s %s:%s %s' % (self.kind, major, minor, self.access)

    def __eq__(self, other):
        return isinstance(other, DeviceRule) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))

    def __repr__(self):
        return 'DeviceRule(%r)' % str(self)


def device_number(spec, what):
    """'8:0' or a block device path on this host -> (major, minor)."""
    match = _DEVNUM.match(str(spec))
    if match:
        return int(match.group(1)), int(match.group(2))
    try:
        st = os.stat(spec)
    except OSError as exc:
        raise ConfigError('use', '%s device %r' % (what, spec), exc.strerror, path=spec, errno=exc.errno)
    if not stat.S_ISBLK(st.st_mode):
        raise ConfigError('use', '%s device %r' % (what, spec), 'not a block device')
    return os.major(st.st_rdev), os.minor(st.st_rdev)


class Resources:
    """Typed limits. Attributes are None when not managed; sizes in bytes, UNLIMITED (-1) lifts a limit."""

    FIELDS = ('memory', 'memory_reservation', 'memory_swap', 'cpu_shares', 'cpus', 'cpu_period', 'cpuset_cpus', 'cpuset_mems',
              'pids_limit', 'blkio_weight') + THROTTLE_KEYS + ('devices', 'frozen')

    def __init__(self, **values):
        for name in self.FIELDS:
            setattr(self, name, values.pop(name, None))
        if values:
            raise ConfigError('use', 'cgroup settings', 'unknown settings: %s' % ', '.join(sorted(values)))

    @classmethod
    def from_options(cls, opts):
        """Parse and check module options (None = unmanaged); raises ConfigError naming the option."""
        opts = {k: v for k, v in (opts or {}).items() if v is not None}
        unknown = set(opts) - set(cls.FIELDS)
        if unknown:
            raise ConfigError('use', 'cgroup settings', 'unknown settings: %s (known: %s)' % (', '.join(sorted(unknown)), ', '.join(cls.FIELDS)))
        res = cls()
        for name in ('memory', 'memory_reservation', 'memory_swap'):
            if name in opts:
                size = parse_size(opts[name], name, allow_unlimited=True)
                # The kernel keeps memory limits in whole pages: compare with what it will read back.
                setattr(res, name, size if size == UNLIMITED else size // PAGE * PAGE)
        if res.memory not in (None, UNLIMITED) and res.memory < (6 << 20):
            raise ConfigError('use', 'memory', 'the minimum memory limit is 6m (as Docker), not %d bytes' % res.memory)
        if res.memory_swap not in (None, UNLIMITED):
            if res.memory in (None, UNLIMITED):
                raise ConfigError('use', 'memory_swap', 'it is memory plus swap: set memory too')
            if res.memory_swap < res.memory:
                raise ConfigError('use', 'memory_swap', 'it is memory plus swap, so it cannot be below memory (%d < %d)' % (res.memory_swap, res.memory))
        if 'cpu_shares' in opts:
            res.cpu_shares = _int_in(opts['cpu_shares'], 'cpu_shares', 2, 262144)
        if 'cpu_period' in opts:
            res.cpu_period = _int_in(opts['cpu_period'], 'cpu_period', 1000, 1000000)
        if 'cpus' in opts:
            res.cpus = parse_cpus(opts['cpus'])
            if res.cpu_period is None:
                res.cpu_period = DEFAULT_CPU_PERIOD
        for name in ('cpuset_cpus', 'cpuset_mems'):
            if name in opts:
                value = str(opts[name]).replace(' ', '')
                if not _CPUSET.match(value):
                    raise ConfigError('parse', name, 'expected a list such as 0-3,6, not %r' % (opts[name],))
                setattr(res, name, value)
        if 'pids_limit' in opts:
            value = opts['pids_limit']
            res.pids_limit = UNLIMITED if value in (-1, '-1', 'max', 0, '0') else _int_in(value, 'pids_limit', 1, 1 << 22)
        if 'blkio_weight' in opts:
            res.blkio_weight = _int_in(opts['blkio_weight'], 'blkio_weight', 10, 1000)
        for name in THROTTLE_KEYS + ('devices',):
            if name in opts and not isinstance(opts[name], (list, tuple)):
                raise ConfigError('use', name, 'expected a list, not %r' % (opts[name],))
        for name in THROTTLE_KEYS:
            if name in opts:
                res_list = {}
                for item in opts[name]:
                    if not isinstance(item, dict) or set(item) - {'path', 'rate'} or 'path' not in item or 'rate' not in item:
                        raise ConfigError('use', name, 'each entry is {path: DEVICE, rate: RATE}, not %r' % (item,))
                    dev = device_number(item['path'], name)
                    rate = parse_size(item['rate'], name) if name.endswith('_bps') else _int_in(item['rate'], name, 0, 1 << 62)
                    res_list[dev] = rate
                setattr(res, name, res_list)
        if 'devices' in opts:
            res.devices = [rule if isinstance(rule, DeviceRule) else DeviceRule.parse(rule) for rule in opts['devices']]
        if 'frozen' in opts:
            if not isinstance(opts['frozen'], bool):
                raise ConfigError('use', 'frozen', 'expected true or false')
            res.frozen = opts['frozen']
        return res

    def managed(self):
        return {name: getattr(self, name) for name in self.FIELDS if getattr(self, name) is not None}

    @property
    def cpu_quota(self):
        """Microseconds per period, from ``cpus``; None when not managed."""
        if self.cpus is None:
            return None
        return max(1000, int(round(self.cpus * (self.cpu_period or DEFAULT_CPU_PERIOD))))


def _int_in(value, name, low, high):
    try:
        number = int(str(value), 10)
    except ValueError:
        number = None
    if isinstance(value, bool) or number is None or not low <= number <= high:
        raise ConfigError('use', name, 'expected a whole number from %d to %d, not %r' % (low, high, value))
    return number


def shares_to_weight(shares):
    """cgroup v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), as runc and crun convert."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight):
    """v1 blkio.weight (10..1000) -> v2 io.weight (1..10000), as runc converts."""
    return 1 + (weight - 10) * 9999 // 990


def display(name, value):
    """A value as the module returns it: devices as rule strings, throttles as {'maj:min': rate}."""
    if name == 'devices':
        return [str(r) for r in value]
    if name in THROTTLE_KEYS:
        return {'%d:%d' % dev: rate for dev, rate in sorted(value.items())}
    return value
