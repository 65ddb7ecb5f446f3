# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Linux capabilities of a container process: names <-> numbers, Docker's defaults, applying a set.

The numbers are the kernel's ABI (linux/capability.h) and never change; a kernel older than
the table knows fewer of them (``/proc/sys/kernel/cap_last_cap``), and ``ALL`` means those.

Docker's behaviour is followed: the bounding set is the container's set; root gets it as its
effective and permitted sets; a non-root user ends with empty effective and permitted sets (a
setuid binary or file capabilities can still raise them, within the bounding set, unless
no_new_privs); the inheritable set is empty (Docker since 20.10.14, CVE-2022-24769: an
inheritable set would hand capabilities to programs with inheritable file capabilities even
for a non-root user); the ambient set is cleared.
"""
from __future__ import annotations

from ..kernel import syscall
from ..kernel.syscall import LINUX
from ..errors import ConfigError

NAMES = (
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
    'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
    'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER', 'CAP_SYS_MODULE',
    'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
    'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE',
    'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL', 'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG',
    'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
)
NUMBERS = {name: number for number, name in enumerate(NAMES)}

# Docker's default set (moby oci/caps/defaults.go), in its order.
DEFAULT = (
    'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW', 'CAP_SETGID',
    'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE', 'CAP_SYS_CHROOT', 'CAP_KILL',
    'CAP_AUDIT_WRITE',
)

CAP_LAST_CAP = '/proc/sys/kernel/cap_last_cap'


def last_cap(path=CAP_LAST_CAP):
    """The highest capability number the running kernel knows (the table's last when unreadable)."""
    try:
        with open(path) as f:
            return min(int(f.read().strip()), len(NAMES) - 1)
    except (OSError, ValueError):
        return len(NAMES) - 1


def canonical(name):
    """'chown', 'CAP_CHOWN', 'cap_chown' -> 'CAP_CHOWN'; ConfigError on names the table lacks."""
    if not isinstance(name, str):
        raise ConfigError('parse', 'capability %r' % (name,), 'a capability is a name such as CAP_CHOWN')
    upper = name.strip().upper()
    if not upper.startswith('CAP_'):
        upper = 'CAP_' + upper
    if upper not in NUMBERS:
        raise ConfigError('parse', 'capability %r' % name, 'unknown capability (known: %s, or ALL)' % ', '.join(NAMES))
    return upper


def parse(names, kernel_last=None):
    """A list of names (any case, with or without CAP_, or 'ALL') -> sorted tuple of canonical
    names. ALL is every capability this kernel knows; a name the kernel does not know is an error,
    so a container never silently runs with less than it asked for."""
    if isinstance(names, str):
        names = [names]
    top = last_cap() if kernel_last is None else kernel_last
    out = set()
    for name in names:
        if isinstance(name, str) and name.strip().upper() in ('ALL', 'CAP_ALL'):
            out.update(NAMES[:top + 1])
            continue
        cap = canonical(name)
        if NUMBERS[cap] > top:
            raise ConfigError('parse', 'capability %s' % cap, 'the running kernel does not know it (last: %s)' % NAMES[top])
        out.add(cap)
    return tuple(sorted(out, key=NUMBERS.get))


def normalise(names, what):
    """An option's list (cap_add, cap_drop) -> its stored form: canonical names sorted by number, 'ALL'
    first when given (resolved at start, by the kernel then running)."""
    if isinstance(names, str):
        names = [names]
    out = set()
    for name in names or ():
        if isinstance(name, str) and name.strip().upper() in ('ALL', 'CAP_ALL'):
            out.add('ALL')
            continue
        try:
            out.add(canonical(name))
        except ConfigError as exc:
            raise ConfigError('use', '%s %r' % (what, name), exc.cause) from None
    return sorted(out, key=lambda n: -1 if n == 'ALL' else NUMBERS[n])


def container_set(cap_add=(), cap_drop=(), privileged=False, bounding=None, kernel_last=None):
    """The container's capability set, as Docker's TweakCapabilities makes it: privileged gets
    ``bounding`` (the host's bounding set: all that can be had); else cap_add ALL is every capability
    but those dropped; cap_drop ALL is just what cap_add names; otherwise the 14 defaults minus cap_drop
    plus cap_add. Returns canonical names sorted by number."""
    if privileged:
        return tuple(sorted(set(bounding if bounding is not None else bounding_set()), key=NUMBERS.get))
    add, drop = list(cap_add or ()), list(cap_drop or ())
    every = parse(['ALL'], kernel_last)
    added = set(parse([c for c in add if c != 'ALL'], kernel_last))
    dropped = set(parse([c for c in drop if c != 'ALL'], kernel_last))
    if 'ALL' in add:
        out = set(every) - dropped
    elif 'ALL' in drop:
        out = added
    else:
        out = (set(DEFAULT) - dropped) | added
    return tuple(sorted(out, key=NUMBERS.get))


def bounding_set(status='/proc/self/status'):
    """The capability bounding set of this process (CapBnd): what a privileged container can get."""
    with open(status) as f:
        for line in f:
            if line.startswith('CapBnd:'):
                return tuple(n for n in names_of(int(line.split()[1], 16)) if n in NUMBERS)
    raise ConfigError('read', 'the capability bounding set', 'no CapBnd in %s' % status)


def mask(names):
    """Canonical names -> the 64-bit mask the kernel shows in /proc/<pid>/status (CapEff ...)."""
    value = 0
    for name in names:
        value |= 1 << NUMBERS[canonical(name)]
    return value


def names_of(value):
    """A 64-bit mask -> the canonical names in it (bits beyond the table as 'CAP_<n>')."""
    return tuple(NAMES[i] if i < len(NAMES) else 'CAP_%d' % i for i in range(64) if value >> i & 1)


def apply(caps, uid, kernel=LINUX):
    """Make ``caps`` the process's capabilities, as Docker does (see the module docstring).

    Call it after setgroups/setgid/setuid, with ``PR_SET_KEEPCAPS`` set before setuid (see
    process.py): dropping from the bounding set needs CAP_SETPCAP, which a non-root user only
    keeps in its permitted set that way. Runs in the container process, before execve.
    """
    wanted = mask(caps)
    top = last_cap()
    _effective, permitted, _inheritable = kernel.capget()
    # Raise what is permitted (setuid to non-root with keepcaps cleared the effective set).
    kernel.capset(permitted, permitted, 0)
    for number in range(top + 1):
        if not wanted >> number & 1:
            kernel.prctl(syscall.PR_CAPBSET_DROP, number, what='the bounding set (drop %s)' % NAMES[number])
    kernel.prctl(syscall.PR_CAP_AMBIENT, syscall.PR_CAP_AMBIENT_CLEAR_ALL, what='the ambient capability set')
    final = wanted & permitted if uid == 0 else 0
    kernel.capset(final, final, 0)
    kernel.prctl(syscall.PR_SET_KEEPCAPS, 0, what='keep-capabilities off')
