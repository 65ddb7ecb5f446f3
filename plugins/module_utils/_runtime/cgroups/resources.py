# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The limits asked of a cgroup: one table where each resource name is written once, and the typed
:class:`Resources` built from it.

Options take Docker's names and units (``memory: 512m``, ``cpus: 1.5``, ``cpu_shares``,
``blkio_weight``, ``device_read_bps``...). A setting left out (None) is not managed: it is
neither written nor compared.

Each row of :data:`TABLE` says, for one setting: how a module value is parsed and checked (and
its range), its Ansible type and doc line, whether it is a container option, how two values
compare, how it is shown, and how each backend keeps it (``v1`` and ``v2``: a kind from
``mapping.py`` — controller, file, conversion; ``systemd``: a unit property). Resources, the three
managers, the ``cgroup`` module's argument spec (a unit test holds its DOCUMENTATION to the rows)
and the container option table's resource rows (:data:`CONTAINER_FIELDS`) derive from it. Rules
across rows are small named code: :func:`check_swap`, :func:`default_period` here, ``mapping.V1Memsw``.
"""
from __future__ import annotations

import os
import re
import stat

from ..errors import ConfigError
from ..kernel.units import UNLIMITED, parse_cpus, parse_size
from .mapping import (
    CpuMax, CpuQuotaProps, DeviceAllowProps, DeviceProgram, File, Freezer, FreezeUnit, IoMax, Prop, SwapMax, V1CpuQuota, V1Devices,
    V1Memsw, V1Throttle, blkio_to_io_weight, fmt_max, infinity, last_int, shares_to_weight, v1_size, v2_max, zero_if_unlimited)

PAGE = os.sysconf('SC_PAGE_SIZE')
DEFAULT_CPU_PERIOD = 100000  # microseconds, as the kernel's and Docker's default
MIN_MEMORY = 6 << 20  # as Docker
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


def expand_list(text):
    """'0-2,5' -> {0, 1, 2, 5} (cpuset lists)."""
    out = set()
    for part in str(text).strip().split(','):
        if not part:
            continue
        low, _sep, high = part.partition('-')
        out.update(range(int(low), int(high or low) + 1))
    return out


def cpu_mask(text):
    """'0-2,5' -> the bytes of systemd's AllowedCPUs/AllowedMemoryNodes (bit n = CPU n)."""
    ids = expand_list(text)
    out = bytearray((max(ids) // 8 + 1) if ids else 0)
    for i in ids:
        out[i // 8] |= 1 << (i % 8)
    return bytes(out)


# -- parsers: (value, row) -> the typed value; each raises ConfigError naming the option ----------------
def _size(value, row):
    size = parse_size(value, row.name, allow_unlimited=True)
    # The kernel keeps memory limits in whole pages: compare with what it will read back.
    size = size if size == UNLIMITED else size // PAGE * PAGE
    if row.range and size != UNLIMITED and size < row.range[0]:
        raise ConfigError('use', row.name, 'the minimum memory limit is %dm (as Docker), not %d bytes' % (row.range[0] >> 20, size))
    return size


def _whole(value, row):
    return _int_in(value, row.name, *row.range)


def _cpus(value, row):
    return parse_cpus(value, row.name)


def _cpuset(value, row):
    text = str(value).replace(' ', '')
    if not _CPUSET.match(text):
        raise ConfigError('parse', row.name, 'expected a list such as 0-3,6, not %r' % (value,))
    return text


def _pids(value, row):
    """Docker's meaning: -1 and 0 (and max) lift the limit, else 1-4194304 processes."""
    if value in (-1, '-1', 'max', 0, '0'):
        return UNLIMITED
    try:
        return _int_in(value, row.name, *row.range)
    except ConfigError:
        raise ConfigError('use', row.name, 'expected a whole number from %d to %d, or -1 or 0 for no limit, not %r' % (row.range + (value,))) from None


def _list(value, row):
    if not isinstance(value, (list, tuple)):
        raise ConfigError('use', row.name, 'expected a list, not %r' % (value,))
    return value


def _throttle(value, row):
    """[{path, rate}] -> {(major, minor): rate}: bytes (``*_bps``, sizes) or operations (``*_iops``) per second."""
    out = {}
    for item in _list(value, row):
        if not isinstance(item, dict) or set(item) - {'path', 'rate'} or 'path' not in item or 'rate' not in item:
            raise ConfigError('use', row.name, 'each entry is {path: DEVICE, rate: RATE}, not %r' % (item,))
        rate = parse_size(item['rate'], row.name) if row.range is None else _int_in(item['rate'], row.name, *row.range)
        out[device_number(item['path'], row.name)] = rate
    return out


def _rules(value, row):
    return [rule if isinstance(rule, DeviceRule) else DeviceRule.parse(rule) for rule in _list(value, row)]


def _bool(value, row):
    if not isinstance(value, bool):
        raise ConfigError('use', row.name, 'expected true or false')
    return value


def _int_in(value, name, low, high):
    try:
        number = int(str(value), 10)
    except ValueError:
        number = None
    if isinstance(value, bool) or number is None or not low <= number <= high:
        raise ConfigError('use', name, 'expected a whole number from %d to %d, not %r' % (low, high, value))
    return number


# -- comparisons and display --------------------------------------------------------------------
def _same_list(current, wanted):
    return current is not None and expand_list(current) == expand_list(wanted)


def _same_rules(current, wanted):
    return current is not None and sorted(map(str, current)) == sorted(map(str, wanted))


def _same_cpus(current, wanted):
    return current is not None and abs(current - wanted) < 0.0005


def _show_rules(value):
    return [str(r) for r in value]


def _show_throttle(value):
    return {'%d:%d' % dev: rate for dev, rate in sorted(value.items())}


def _equal(current, wanted):
    return current == wanted


class Field:
    """One row: a resource setting, named once.

    ``parse(value, row)`` and ``range`` (low, high) check a module's value; ``argspec`` (the Ansible
    type) and ``doc`` (the line the module's DOCUMENTATION carries); ``container``: when the container
    module takes it too, the doc line of that option there (the container option table's row is made
    from this one), ``follows``: a container sets it with that option (cpu_period
    with cpus); ``same`` compares a value read back with the wanted one, ``show`` formats it for a
    module's result; ``v1``, ``v2``, ``systemd``: how each backend keeps it (mapping.py)."""

    __slots__ = ('name', 'parse', 'range', 'argspec', 'doc', 'container', 'follows', 'same', 'show', 'v1', 'v2', 'systemd')

    def __init__(self, name, parse, argspec, doc, v1, v2, systemd, range_=None, container=False, follows=None, same=_equal, show=None):
        self.name, self.parse, self.range, self.argspec, self.doc = name, parse, range_, argspec, doc
        self.container, self.follows, self.same, self.show = container, follows, same, show
        self.v1, self.v2, self.systemd = v1, v2, systemd

    def __repr__(self):
        return 'Field(%r)' % self.name


def _devices_arg(rate_type):
    return {'type': 'list', 'elements': 'dict',
            'options': {'path': {'type': 'str', 'required': True}, 'rate': {'type': rate_type, 'required': True}}}


def _throttle_row(name, v1_file, io_key, prop, doc):
    bps = name.endswith('_bps')
    return Field(name, _throttle, _devices_arg('str' if bps else 'int'), doc, range_=None if bps else (0, 1 << 62), show=_show_throttle,
                 v1=V1Throttle('blkio', v1_file), v2=IoMax(io_key),
                 systemd=Prop(prop, 'a(st)', lambda v: [('/dev/block/%d:%d' % dev, rate) for dev, rate in sorted(v.items())]))


_STR, _INT = {'type': 'str'}, {'type': 'int'}
_V1_CPU, _V2_CPU, _CPU_PROPS = V1CpuQuota(), CpuMax(), CpuQuotaProps()  # each keeps cpus and cpu_period together
_NO_SWAP_ACCOUNTING = 'swap accounting is off: boot with swapaccount=1'

TABLE = (
    Field('memory', _size, _STR, 'Memory limit (V(512m), V(1g), bytes). V(-1) lifts it. At least V(6m).', range_=(MIN_MEMORY, None),
          container='Memory limit (V(256m), V(1g))',
          v1=File('memory', 'memory.limit_in_bytes', parse=v1_size),
          v2=File('memory', 'memory.max', parse=v2_max, fmt=fmt_max),
          systemd=Prop('MemoryMax', 't', infinity)),
    Field('memory_reservation', _size, _STR, 'Soft limit (v1 C(memory.soft_limit_in_bytes), v2 C(memory.low)).',
          container='Soft memory limit, reclaimed first under pressure',
          v1=File('memory', 'memory.soft_limit_in_bytes', parse=v1_size),
          v2=File('memory', 'memory.low', fmt=zero_if_unlimited),
          systemd=Prop('MemoryLow', 't', zero_if_unlimited)),
    Field('memory_swap', _size, _STR, "Memory plus swap, as Docker's C(--memory-swap); V(-1) for unlimited swap. Needs O(memory).",
          container='Memory plus swap limit (needs O(memory)',
          v1=V1Memsw('memory', 'memory.memsw.limit_in_bytes', parse=v1_size, hint=_NO_SWAP_ACCOUNTING),
          v2=SwapMax(),
          systemd=Prop('MemorySwapMax', 't', infinity, source='swap_only', also=('memory',))),
    Field('cpu_shares', _whole, _INT, 'Relative CPU weight (2-262144, default 1024); converted to C(cpu.weight) on v2 as runc does.',
          range_=(2, 262144), container='Relative CPU weight (2-262144, default 1024',
          v1=File('cpu', 'cpu.shares'),
          v2=File('cpu', 'cpu.weight', convert=shares_to_weight),
          systemd=Prop('CPUWeight', 't', shares_to_weight)),
    Field('cpus', _cpus, {'type': 'float'}, 'CPUs the cgroup may use (V(0.5), V(1.5)), as a CFS quota of O(cpu_period).',
          container='CPUs the container may use (V(0.5))',
          same=_same_cpus, v1=_V1_CPU, v2=_V2_CPU, systemd=_CPU_PROPS),
    Field('cpu_period', _whole, _INT, 'CFS period in microseconds (1000-1000000, default 100000).', range_=(1000, 1000000),
          follows='cpus', v1=_V1_CPU, v2=_V2_CPU, systemd=_CPU_PROPS),
    Field('cpuset_cpus', _cpuset, _STR, 'CPUs allowed, e.g. V(0-1,3).', container='CPUs the container may run on (V(0-1), V(0,2))', same=_same_list,
          v1=File('cpuset', 'cpuset.cpus', parse=str),
          v2=File('cpuset', 'cpuset.cpus', parse=str),
          systemd=Prop('AllowedCPUs', 'ay', cpu_mask)),
    Field('cpuset_mems', _cpuset, _STR, 'Memory nodes allowed, e.g. V(0).', same=_same_list,
          v1=File('cpuset', 'cpuset.mems', parse=str),
          v2=File('cpuset', 'cpuset.mems', parse=str),
          systemd=Prop('AllowedMemoryNodes', 'ay', cpu_mask)),
    Field('pids_limit', _pids, _INT, 'Maximum number of processes; V(-1) or V(0) for no limit.', range_=(1, 1 << 22),
          container='Most processes (threads) at once',
          v1=File('pids', 'pids.max', parse=v2_max, fmt=fmt_max),
          v2=File('pids', 'pids.max', parse=v2_max, fmt=fmt_max),
          systemd=Prop('TasksMax', 't', infinity)),
    Field('blkio_weight', _whole, _INT, 'Relative block I/O weight (10-1000); C(io.weight) on v2. Needs an I/O scheduler that has weights.',
          range_=(10, 1000), container='Relative block I/O weight (10-1000',
          v1=File('blkio', ('blkio.weight', 'blkio.bfq.weight'), parse=last_int, hint='no CFQ/BFQ I/O scheduler'),
          v2=File('io', 'io.weight', parse=last_int, fmt='default %d'.__mod__, convert=blkio_to_io_weight),
          systemd=Prop('IOWeight', 't', blkio_to_io_weight)),
    _throttle_row('device_read_bps', 'blkio.throttle.read_bps_device', 'rbps', 'IOReadBandwidthMax', 'Read rate limits per block device.'),
    _throttle_row('device_write_bps', 'blkio.throttle.write_bps_device', 'wbps', 'IOWriteBandwidthMax',
                  'Write rate limits per block device, as O(device_read_bps).'),
    _throttle_row('device_read_iops', 'blkio.throttle.read_iops_device', 'riops', 'IOReadIOPSMax',
                  'Read operations per second per block device.'),
    _throttle_row('device_write_iops', 'blkio.throttle.write_iops_device', 'wiops', 'IOWriteIOPSMax',
                  'Write operations per second per block device.'),
    Field('devices', _rules, {'type': 'list', 'elements': 'str'},
          "Device access allowed to the cgroup, in Docker's C(--device-cgroup-rule) form (V(c 1:3 rwm), V(b 8:* r)); everything else is denied.",
          same=_same_rules, show=_show_rules,
          v1=V1Devices('devices', 'devices.list', parse=DeviceRule.parse),
          v2=DeviceProgram(),
          systemd=DeviceAllowProps()),
    Field('frozen', _bool, {'type': 'bool'}, 'Freeze (true) or thaw (false) every process in the cgroup.',
          v1=Freezer('freezer', 'freezer.state', parse='FROZEN'.__eq__),
          v2=Freezer(None, 'cgroup.freeze', parse='1'.__eq__, default='0'),
          systemd=FreezeUnit()),
)
ROWS = {row.name: row for row in TABLE}
# The rows the container module takes as options (its option table makes its resource rows from them:
# name, argspec, doc), and every setting a container's record keeps under ``resources`` (cpu_period with cpus).
CONTAINER_FIELDS = tuple(row for row in TABLE if row.container)
CONTAINER_STORED = tuple(row.name for row in TABLE if row.container or row.follows in {r.name for r in CONTAINER_FIELDS})


def check_swap(res):
    """memory_swap is memory plus swap: it needs a memory limit and cannot be below it."""
    if res.memory_swap in (None, UNLIMITED):
        return
    if res.memory in (None, UNLIMITED):
        raise ConfigError('use', 'memory_swap', 'it is memory plus swap: set memory too')
    if res.memory_swap < res.memory:
        raise ConfigError('use', 'memory_swap', 'it is memory plus swap, so it cannot be below memory (%d < %d)' % (res.memory_swap, res.memory))


def default_period(res):
    """A CPU quota needs a period: the kernel's default when cpus is given alone."""
    if res.cpus is not None and res.cpu_period is None:
        res.cpu_period = DEFAULT_CPU_PERIOD


class Resources:
    """Typed limits. Attributes are None when not managed; sizes in bytes, UNLIMITED (-1) lifts a limit."""

    FIELDS = tuple(ROWS)

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
        for row in TABLE:
            if row.name in opts:
                setattr(res, row.name, row.parse(opts[row.name], row))
        check_swap(res)
        default_period(res)
        return res

    def managed(self):
        return {name: getattr(self, name) for name in self.FIELDS if getattr(self, name) is not None}

    @property
    def cpu_quota(self):
        """Microseconds per period, from ``cpus``; None when not managed."""
        if self.cpus is None:
            return None
        return max(1000, int(round(self.cpus * (self.cpu_period or DEFAULT_CPU_PERIOD))))

    @property
    def swap_only(self):
        """The swap alone (memory_swap less memory), as v2 and systemd keep it; UNLIMITED when either is."""
        if self.memory_swap is None:
            return None
        return UNLIMITED if UNLIMITED in (self.memory_swap, self.memory) else self.memory_swap - self.memory


def display(name, value):
    """A value as the module returns it: devices as rule strings, throttles as {'maj:min': rate}."""
    row = ROWS.get(name)
    return row.show(value) if row is not None and row.show is not None else value
