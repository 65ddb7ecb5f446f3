# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""How one setting is kept by each backend: the kinds a row of the resource table declares.

runc writes each controller with a Set function (``libcontainer/cgroups/fs/memory.go``,
``fs2/cpu.go``...) that repeats the same open/parse/format steps per file. Here the repeated part
is one kind (:class:`File`: a controller, a file, how its text reads and writes) and the rows of
``resources.TABLE`` are data; what is logic keeps a small kind of its own, named for what it keeps:
a v1 quota that must fit its period, v2's ``cpu.max`` that holds two settings, v2's swap that is
memory-plus-swap minus memory, a throttle file that takes one device per write.

A kind reads through, and writes to, the manager it is given (``cg``): ``cg.read_file``,
``cg.has_file``, ``cg.write_file``, ``cg.freeze`` (and ``cg.dir`` on v2). Values are in the setting's own units
(bytes, CPUs, shares); UNLIMITED (-1) lifts a limit. A kind that keeps two settings (a shared
instance in two rows) is written once, at the first of its rows that changed. ``also`` names the
settings whose change rewrites this one too (v2 swap follows memory).
"""
from __future__ import annotations

from ..errors import CgroupError
from ..kernel.units import UNLIMITED
from . import devices as devfilter

# v1 reads back "no limit" as PAGE_COUNTER_MAX * page size.
V1_NO_LIMIT = 1 << 62
# A systemd property's "infinity" (uint64 max).
INFINITY = (1 << 64) - 1


# -- conversions a row declares -----------------------------------------------------------------
def v1_size(text):
    value = int(text)
    return UNLIMITED if value >= V1_NO_LIMIT else value


def v2_max(text):
    return UNLIMITED if text == 'max' else int(text)


def fmt_max(value):
    return 'max' if value == UNLIMITED else value


def last_int(text):
    """'default 100' or '100' (io.weight, blkio.bfq.weight) -> 100."""
    words = text.split()
    return int(words[-1]) if words else None


def shares_to_weight(shares):
    """cgroup v1 cpu.shares (2..262144) -> v2 cpu.weight (1..10000), as runc and crun convert."""
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight):
    """v1 blkio.weight (10..1000) -> v2 io.weight (1..10000), as runc converts."""
    return 1 + (weight - 10) * 9999 // 990


def infinity(value):
    return INFINITY if value == UNLIMITED else value


def zero_if_unlimited(value):
    """A soft limit lifted: v2 ``memory.low`` and systemd's ``MemoryLow`` say so with 0."""
    return 0 if value == UNLIMITED else value


class Kind:
    """What every kind answers when a change is written (see manager.to_write)."""

    also = ()  # settings whose change rewrites this one too

    def goes_first(self, changes):  # pylint: disable=unused-argument
        """Whether this change must be written before the others (v1 memsw, see V1Memsw)."""
        return False


# -- cgroup files ---------------------------------------------------------------------------------
class File(Kind):
    """A setting kept in one file of one controller (``filename``; a tuple: the first the kernel has).

    ``parse`` turns the file's text into the setting's value, ``fmt`` the value into what is written.
    ``convert`` (v2 weights): the kernel keeps ``convert(value)``; a read that equals the wanted value's
    conversion reports the wanted value. ``hint``: why the file may be missing on a host."""

    def __init__(self, controller, filename, parse=int, fmt=str, convert=None, hint=None, default=None):
        self.controller, self.filename = controller, filename
        self.parse, self.fmt, self.convert, self.hint, self.default = parse, fmt, convert, hint, default

    def _name(self, cg, name):
        if isinstance(self.filename, str):
            return self.filename
        for filename in self.filename:
            if cg.has_file(self.controller, filename, name):
                return filename
        raise CgroupError('set', '%s on cgroup %s' % (name, cg.path), 'this host has no %s (%s)' % (' or '.join(self.filename), self.hint))

    def get(self, cg, name, res):
        raw = self.parse(cg.read_file(self.controller, self._name(cg, name), name, self.hint, self.default))
        if self.convert is None:
            return raw
        wanted = getattr(res, name, None)
        return wanted if wanted is not None and self.convert(wanted) == raw else raw

    def set(self, cg, name, res, changes):
        value = getattr(res, name)
        cg.write_file(self.controller, self._name(cg, name), self.fmt(self.convert(value) if self.convert else value), name, self.hint)


class V1Memsw(File):
    """v1 ``memory.memsw.limit_in_bytes`` (memory plus swap) must stay >= ``memory.limit_in_bytes`` at every
    write: when the new memory limit passes the current memsw, memsw is raised first; otherwise memory
    goes first, as the table orders them (lowering both: memory, then memsw)."""

    def goes_first(self, changes):
        if 'memory' not in changes or 'memory_swap' not in changes:
            return False
        memory, memsw_now = changes['memory'][1], changes['memory_swap'][0]
        return memory != UNLIMITED and memsw_now not in (None, UNLIMITED) and memory > memsw_now  # None: a new cgroup's is unlimited


class Lines(File):
    """A file read as one value per line (v1 ``devices.list``); written by the row's own kind."""

    def get(self, cg, name, res):
        return [self.parse(line) for line in cg.read_file(self.controller, self.filename, name).splitlines() if line.strip()]


class V1Devices(Lines):
    """v1 devices: deny everything, then allow each rule (Docker's default-deny model)."""

    def set(self, cg, name, res, changes):
        cg.write_file(self.controller, 'devices.deny', 'a', name)
        for rule in getattr(res, name):
            cg.write_file(self.controller, 'devices.allow', str(rule), name)


class Freezer(File):
    """Frozen or thawed: read from the state file, changed by the manager's ``freeze`` (which waits)."""

    def set(self, cg, name, res, changes):
        cg.freeze(getattr(res, name))


class V1Throttle(File):
    """A v1 blkio throttle file: 'MAJ:MIN RATE' lines; one device per write, rate 0 removes one."""

    def get(self, cg, name, res):
        out = {}
        for line in cg.read_file(self.controller, self.filename, name).splitlines():
            dev, _sep, rate = line.partition(' ')
            major, _sep, minor = dev.partition(':')
            out[(int(major), int(minor))] = int(rate)
        return out

    def set(self, cg, name, res, changes):
        before, after = changes[name]
        for dev in sorted(set(before or {}) - set(after)):
            cg.write_file(self.controller, self.filename, '%d:%d 0' % dev, name)
        for dev, rate in sorted(after.items()):
            cg.write_file(self.controller, self.filename, '%d:%d %d' % (dev[0], dev[1], rate), name)


class IoMax(File):
    """One key of v2 ``io.max`` ('MAJ:MIN rbps=N wbps=max ...'); one device per write, =max removes one."""

    def __init__(self, key):
        super().__init__('io', 'io.max')
        self.key = key

    def get(self, cg, name, res):
        out = {}
        for line in cg.read_file(self.controller, self.filename, name).splitlines():
            dev, *pairs = line.split()
            major, _sep, minor = dev.partition(':')
            for pair in pairs:
                key, _sep, value = pair.partition('=')
                if key == self.key and value != 'max':
                    out[(int(major), int(minor))] = int(value)
        return out

    def set(self, cg, name, res, changes):
        before, after = changes[name]
        for dev in sorted(set(before or {}) - set(after)):
            cg.write_file(self.controller, self.filename, '%d:%d %s=max' % (dev[0], dev[1], self.key), name)
        for dev, rate in sorted(after.items()):
            cg.write_file(self.controller, self.filename, '%d:%d %s=%d' % (dev[0], dev[1], self.key, rate), name)


class V1CpuQuota(File):
    """v1 ``cpus`` and ``cpu_period`` (one instance in both rows): a quota must fit its period, so a new
    period lifts the quota, sets the period, then writes the quota again."""

    def __init__(self):
        super().__init__('cpu', 'cpu.cfs_quota_us', hint='the kernel has no CFS bandwidth control (CONFIG_CFS_BANDWIDTH)')

    def get(self, cg, name, res):
        period = int(cg.read_file('cpu', 'cpu.cfs_period_us', name, self.hint))
        if name == 'cpu_period':
            return period
        quota = int(cg.read_file('cpu', 'cpu.cfs_quota_us', name, self.hint))
        return None if quota < 0 else quota / period

    def set(self, cg, name, res, changes):
        if 'cpu_period' in changes:
            cg.write_file('cpu', 'cpu.cfs_quota_us', -1, 'cpu_period', self.hint)
            cg.write_file('cpu', 'cpu.cfs_period_us', res.cpu_period, 'cpu_period', self.hint)
        if res.cpus is not None:
            cg.write_file('cpu', 'cpu.cfs_quota_us', res.cpu_quota, 'cpus', self.hint)


class CpuMax(File):
    """v2 ``cpu.max`` ('QUOTA PERIOD'), which holds ``cpus`` and ``cpu_period`` (one instance in both rows)."""

    def __init__(self):
        super().__init__('cpu', 'cpu.max')

    def get(self, cg, name, res):
        quota, _sep, period = cg.read_file(self.controller, self.filename, name).partition(' ')
        if name == 'cpu_period':
            return int(period)
        return None if quota == 'max' else int(quota) / int(period)

    def set(self, cg, name, res, changes):
        quota = res.cpu_quota
        cg.write_file(self.controller, self.filename, '%s %d' % ('max' if quota is None else quota, res.cpu_period), name)


class SwapMax(File):
    """v2 ``memory.swap.max`` is swap alone, the setting is memory plus swap (Docker's): read as the sum,
    written as ``Resources.swap_only`` — and rewritten when memory changes."""

    also = ('memory',)

    def __init__(self):
        super().__init__('memory', 'memory.swap.max')

    def get(self, cg, name, res):
        swap = v2_max(cg.read_file('memory', 'memory.swap.max', name))
        mem = v2_max(cg.read_file('memory', 'memory.max', name))
        return UNLIMITED if UNLIMITED in (swap, mem) else mem + swap

    def set(self, cg, name, res, changes):
        cg.write_file('memory', 'memory.swap.max', fmt_max(res.swap_only), name)


class DeviceProgram(File):
    """v2 devices: the eBPF cgroup-device program attached to the cgroup (devices.py)."""

    def __init__(self):
        super().__init__(None, None)

    def get(self, cg, name, res):
        return devfilter.attached_rules(cg.dir, getattr(res, name))

    def set(self, cg, name, res, changes):
        devfilter.apply_rules(cg.dir, getattr(res, name))


# -- systemd unit properties ------------------------------------------------------------------------
class Prop(Kind):
    """A setting kept as one unit property: ``(property, D-Bus signature, convert(value))``.
    ``source``: the Resources attribute that gives the value (default: the row's own)."""

    from_unit = False  # read back from the cgroup files systemd keeps (the v2 column), not from the unit

    def __init__(self, prop, sig='t', convert=None, source=None, also=()):
        self.prop, self.sig, self.convert, self.source, self.also = prop, sig, convert, source, also

    def props(self, name, res, manager):  # pylint: disable=unused-argument
        value = getattr(res, self.source or name)
        return [(self.prop, self.sig, self.convert(value) if self.convert else value)]

    def after_props(self, manager, name, res):
        """What is done once the properties are set (nothing, but for a freeze)."""


class CpuQuotaProps(Prop):
    """``cpus`` and ``cpu_period`` (one instance in both rows): the period, and the quota per second of CPU time."""

    def __init__(self):
        super().__init__('CPUQuotaPerSecUSec')

    def props(self, name, res, manager):
        per_sec = INFINITY if res.cpus is None else int(round(res.cpus * 1000000))
        return [('CPUQuotaPeriodUSec', 't', res.cpu_period), (self.prop, 't', per_sec)]


class DeviceAllowProps(Prop):
    """Devices as ``DevicePolicy=strict`` + ``DeviceAllow`` (the manager names each rule as systemd does)."""

    from_unit = True

    def __init__(self):
        super().__init__('DeviceAllow', 'a(ss)')

    def props(self, name, res, manager):
        return [('DevicePolicy', 's', 'strict'), (self.prop, self.sig, manager.device_allows(getattr(res, name)))]

    def get(self, manager, name, res):  # pylint: disable=unused-argument
        return manager.device_rules(res)


class FreezeUnit(Prop):
    """Frozen or thawed through FreezeUnit/ThawUnit, after the properties are set (not a property)."""

    def __init__(self):
        super().__init__(None)

    def props(self, name, res, manager):
        return []

    def after_props(self, manager, name, res):
        manager.freeze(getattr(res, name))
