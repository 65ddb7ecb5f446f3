# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systemd cgroup driver: systemd owns the tree, nsbox asks it over D-Bus (D4).

A cgroup named ``web`` under ``nsbox.slice`` is the transient slice unit ``nsbox-web.slice``
(a slice can exist with no process and carries the limits). Each process moved in goes into a
transient scope unit of its own inside it (``nsbox-web-<pid>.scope``): systemd never finds a
process it does not know about, and when the OOM killer hits one, systemd (whose OOMPolicy
stops the whole unit) ends only that scope. Limits are unit properties (``MemoryMax``, ``CPUQuotaPerSecUSec``...) set
with ``SetUnitProperties`` (runtime), never by writing the cgroup files behind systemd's back;
values are read back from the cgroup files, which systemd keeps in step. Device rules become
``DevicePolicy=strict`` + ``DeviceAllow`` (see :func:`device_allow` for how a rule is named; strict, not
closed: closed would add systemd's own pseudo-device list to what the rules say).

D-Bus is reached through ``busctl`` (systemd's own client, present wherever systemd is), so
the driver needs no Python D-Bus binding on the host.
"""
from __future__ import annotations

import os
import re
import subprocess
import time

from ..errors import CgroupError
from .layout import read_text
from .manager import CgroupManager, to_write
from .resources import ROWS, DeviceRule
from .v2 import CgroupV2Manager

BUSCTL = '/usr/bin/busctl'
SYSTEMCTL = '/usr/bin/systemctl'
_COMPONENT = re.compile(r'^[A-Za-z0-9_.:@-]+\Z')


def escape(name):
    """A name as one component of a slice name: '-' separates levels there, so it is escaped (systemd-escape)."""
    if not _COMPONENT.match(name):
        raise CgroupError('use', 'cgroup name %r' % (name,), 'under the systemd driver names use letters, digits and _ . : @ -')
    return name.replace('-', '\\x2d')


def slice_unit(parent, parts):
    """('nsbox.slice', ['pods', 'web']) -> 'nsbox-pods-web.slice'."""
    if not parent.endswith('.slice') or '/' in parent:
        raise CgroupError('use', 'cgroup parent %r' % (parent,), 'under the systemd driver the parent is a slice unit such as nsbox.slice')
    stem = parent[:-len('.slice')]
    return '-'.join(([stem] if stem != '-' else []) + [escape(p) for p in parts]) + '.slice'


def slice_dir(unit):
    """The slice's cgroup path: 'nsbox-pods-web.slice' -> '/nsbox.slice/nsbox-pods.slice/nsbox-pods-web.slice'."""
    stem = unit[:-len('.slice')]
    levels = stem.split('-')
    return '/' + '/'.join('-'.join(levels[:i + 1]) + '.slice' for i in range(len(levels)))


def _run(argv):
    try:
        res = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    except OSError as exc:
        raise CgroupError.from_oserror('run', argv[0], exc)
    if res.returncode != 0:
        raise CgroupError('ask', 'systemd (%s)' % ' '.join(argv[1:4]), (res.stderr or res.stdout).strip() or 'exit status %d' % res.returncode)
    return res.stdout


def _variant(sig, value):
    """busctl's text form of one property value."""
    if sig in ('t', 'u', 'i', 'b', 's'):
        return [str(value).lower() if sig == 'b' else str(value)]
    if sig == 'ay':
        return [str(len(value))] + [str(b) for b in value]
    if sig == 'au':
        return [str(len(value))] + [str(v) for v in value]
    if sig in ('a(st)', 'a(ss)'):
        return [str(len(value))] + [str(x) for pair in value for x in pair]
    raise ValueError(sig)


def _props(props):
    """[(name, signature, value)] -> busctl arguments for a(sv)."""
    args = [str(len(props))]
    for name, sig, value in props:
        args += [name, sig] + _variant(sig, value)
    return args


def device_allow(rule, proc_devices='/proc/devices'):
    """A 'c' or 'b' DeviceRule as a DeviceAllow entry (node specifier, access).

    systemd names a device by node (``/dev/char/1:3``) or by driver group from /proc/devices
    (``char-pts``, with glob patterns): a rule for one device becomes its node, ``c 136:* rw`` the
    group of major 136 (``char-pts``), a wildcard major (``c *:* m``) every group (``char-*``).
    systemd resolves groups when it applies the property: a driver registered later is not covered."""
    kind = {'c': 'char', 'b': 'block'}.get(rule.kind)
    if kind is None:
        raise CgroupError('use', 'device rule %r' % str(rule), 'the systemd driver maps rules of type c and b (a is both)')
    if rule.major is None:
        if rule.minor is not None:
            raise CgroupError('use', 'device rule %r' % str(rule), 'the systemd driver cannot allow one minor of every major')
        return ('%s-*' % kind, rule.access)
    if rule.minor is not None:
        return ('/dev/%s/%d:%d' % (kind, rule.major, rule.minor), rule.access)
    section = None
    for line in read_text(proc_devices, '').splitlines():
        if line.endswith(':'):
            section = 'char' if line.startswith('Character') else 'block'
        elif section == kind and line.split()[:1] == [str(rule.major)]:
            return ('%s-%s' % (kind, line.split()[1]), rule.access)
    raise CgroupError('use', 'device rule %r' % str(rule), 'no %s driver with major %d on this host' % (kind, rule.major))


def device_allows(rules, proc_devices='/proc/devices'):
    """DeviceRules -> the sorted DeviceAllow entries (used with DevicePolicy=strict: nothing else is allowed).
    A rule of type ``a`` is the same rule for character and block devices."""
    out = []
    for rule in rules:
        kinds = ('c', 'b') if rule.kind == 'a' else (rule.kind,)
        for kind in kinds:
            entry = device_allow(DeviceRule(kind, rule.major, rule.minor, rule.access), proc_devices)
            if entry not in out:
                out.append(entry)
    return sorted(out)


class SystemdManager(CgroupManager):
    driver = 'systemd'
    version = 'v2'
    column = 'systemd'

    def __init__(self, parent, parts, root, run=_run, proc_devices='/proc/devices'):
        super().__init__('/' + parent + '/' + '/'.join(parts))
        self.unit = slice_unit(parent, parts)
        self.cgroup = CgroupV2Manager(slice_dir(self.unit), root)
        self._run = run
        self.proc_devices = proc_devices

    def dirs(self):
        return self.cgroup.dirs()

    def _call(self, method, signature, *args):
        return self._run([BUSCTL, 'call', '--json=short', 'org.freedesktop.systemd1', '/org/freedesktop/systemd1',
                          'org.freedesktop.systemd1.Manager', method, signature] + [str(a) for a in args])

    def _start(self, unit, props):
        self._call('StartTransientUnit', 'ssa(sv)a(sa(sv))', unit, 'fail', *(_props(props) + ['0']))

    def _create(self):
        self._start(self.unit, [('Description', 's', 'nsbox cgroup %s' % self.path)])
        self._wait(lambda: os.path.isdir(self.cgroup.dir), 'the cgroup of %s to appear' % self.unit)

    def _wait(self, done, what, timeout=30.0):
        deadline = time.monotonic() + timeout
        while not done():
            if time.monotonic() > deadline:
                raise CgroupError('wait', 'for %s' % what, 'not done after %.0fs' % timeout)
            time.sleep(0.02)

    # -- read: the cgroup files systemd keeps; devices from the unit's properties -------------
    def read(self, resources, names=None):
        # systemd enables a controller for a unit once one of its properties is set: until then the setting reads as unset.
        names = list(resources.managed()) if names is None else names
        from_unit = [n for n in names if ROWS[n].systemd.from_unit]
        current = self.cgroup.read(resources, [n for n in names if n not in from_unit])
        current.update({n: ROWS[n].systemd.get(self, n, resources) for n in from_unit})
        return current

    def device_rules(self, resources):
        """The unit's device rules: the wanted ones when DevicePolicy=strict and DeviceAllow say exactly them."""
        out = self._run([SYSTEMCTL, 'show', '--property=DevicePolicy,DeviceAllow', self.unit])
        policy, allowed = None, []
        for line in out.splitlines():  # DeviceAllow comes one line per entry (older systemd: ', '-joined)
            key, _sep, value = line.partition('=')
            if key == 'DevicePolicy':
                policy = value
            elif key == 'DeviceAllow':
                allowed += [tuple(x.split(' ', 1)) for x in value.split(', ') if x]
        allowed.sort()
        wanted = self.device_allows(resources.devices)
        if policy == 'strict' and allowed == wanted:
            return list(resources.devices)
        return ['%s %s' % tuple(a) for a in allowed]

    def device_allows(self, rules):
        return device_allows(rules, self.proc_devices)

    # -- write: unit properties (one SetUnitProperties call), then what is not a property (freeze) --------
    def _write(self, resources, changes):
        todo = to_write(self.column, resources, changes)
        props = [prop for kind, name in todo for prop in kind.props(name, resources, self)]
        if props:
            self._call('SetUnitProperties', 'sba(sv)', self.unit, 'true', *_props(props))
        for kind, name in todo:
            kind.after_props(self, name, resources)

    def freeze(self, frozen=True):
        self._call('FreezeUnit' if frozen else 'ThawUnit', 's', self.unit)
        self._wait(lambda: self.cgroup.read(None, ['frozen']).get('frozen') == frozen, '%s to %s' % (self.unit, 'freeze' if frozen else 'thaw'))

    # -- processes ---------------------------------------------------------------------------------
    def procs(self):
        return self._all_procs() if self.exists() else []

    def add_procs(self, pids):
        """Each into a transient scope of its own inside the slice: systemd then knows every process it holds,
        and its OOMPolicy (stop, on systemd 252) ends only the scope of a process the OOM killer hit."""
        for pid in [int(p) for p in pids]:
            scope = '%s-%d.scope' % (self.unit[:-len('.slice')], pid)
            self._start(scope, [('Description', 's', 'nsbox process %d in %s' % (pid, self.path)), ('Slice', 's', self.unit),
                                ('PIDs', 'au', [pid]), ('CollectMode', 's', 'inactive-or-failed')])
            self._wait(lambda p=pid: p in self._all_procs(), 'process %d to enter %s' % (pid, scope))

    def kill(self, timeout=10.0):
        if not self.exists():
            return
        self.cgroup.kill(timeout)

    def remove(self, timeout=10.0):
        if not self.exists():
            return False
        self.kill(timeout)
        self._call('StopUnit', 'ss', self.unit, 'replace')
        self._wait(lambda: not os.path.isdir(self.cgroup.dir), 'the cgroup of %s to go' % self.unit, timeout)
        return True

    def stats(self):
        return self.cgroup.stats()
