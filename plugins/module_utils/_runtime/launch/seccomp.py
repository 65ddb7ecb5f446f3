# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Seccomp: Docker's default profile as data, Docker's JSON profile format, and loading a filter.

A profile is a dict in Docker's format (``defaultAction``, ``defaultErrnoRet``, ``archMap`` or
``architectures``, ``syscalls``: [{names, action, errnoRet, args, includes, excludes}]).
:func:`parse_profile` validates one (a ``security_opt: seccomp=FILE`` is read at create and stored
resolved); :func:`rules` turns it into the rules for one container (its capability set, the native
architecture and the running kernel decide which conditional entries apply) — pure, unit-tested;
:func:`load` builds the filter with libseccomp (python3-seccomp) and loads it. No hand-written BPF.

libseccomp is imported by :func:`library` only, so processes that never load a filter (the
monitor, the modules) never pay for it.
"""
from __future__ import annotations

import errno
import os

from ..errors import ConfigError, NsboxError
from . import caps

ACTIONS = ('SCMP_ACT_ALLOW', 'SCMP_ACT_ERRNO', 'SCMP_ACT_KILL', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_TRAP',
           'SCMP_ACT_TRACE', 'SCMP_ACT_LOG')
OPS = ('SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ')
ARCHES = ('SCMP_ARCH_X86', 'SCMP_ARCH_X86_64', 'SCMP_ARCH_X32', 'SCMP_ARCH_ARM', 'SCMP_ARCH_AARCH64', 'SCMP_ARCH_MIPS',
          'SCMP_ARCH_MIPS64', 'SCMP_ARCH_MIPS64N32', 'SCMP_ARCH_MIPSEL', 'SCMP_ARCH_MIPSEL64', 'SCMP_ARCH_MIPSEL64N32',
          'SCMP_ARCH_PPC', 'SCMP_ARCH_PPC64', 'SCMP_ARCH_PPC64LE', 'SCMP_ARCH_S390', 'SCMP_ARCH_S390X', 'SCMP_ARCH_RISCV64')
# uname's machine -> (its SCMP_ARCH name, the names Docker's includes/excludes.arches use for it)
MACHINES = {
    'x86_64': ('SCMP_ARCH_X86_64', ('amd64', 'x86_64')),
    'i686': ('SCMP_ARCH_X86', ('x86', '386')), 'i386': ('SCMP_ARCH_X86', ('x86', '386')),
    'aarch64': ('SCMP_ARCH_AARCH64', ('arm64', 'aarch64')),
    'armv7l': ('SCMP_ARCH_ARM', ('arm',)), 'armv6l': ('SCMP_ARCH_ARM', ('arm',)),
    'ppc64le': ('SCMP_ARCH_PPC64LE', ('ppc64le',)),
    's390x': ('SCMP_ARCH_S390X', ('s390x',)),
    'riscv64': ('SCMP_ARCH_RISCV64', ('riscv64',)),
    'mips64': ('SCMP_ARCH_MIPS64', ('mips64',)),
}
# The namespace flags of clone(2) (CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET): refused
# to clone without CAP_SYS_ADMIN, as Docker's profile does (clone3 passes flags in memory: ENOSYS, so
# libcs fall back to clone).
CLONE_NAMESPACE_FLAGS = 0x7E020000

# -- Docker's default profile (moby profiles/seccomp/default.json), as data ----------------------
_ALLOWED = '''
accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown chown32 clock_adjtime clock_adjtime64
clock_getres clock_getres_time64 clock_gettime clock_gettime64 clock_nanosleep clock_nanosleep_time64 close close_range
connect copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old epoll_pwait epoll_pwait2
epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit exit_group faccessat faccessat2 fadvise64 fadvise64_64
fallocate fanotify_mark fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
flistxattr flock fork fremovexattr fsetxattr fstat fstat64 fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex
futex_requeue futex_time64 futex_wait futex_waitv futex_wake futimesat getcpu getcwd getdents getdents64 getegid
getegid32 geteuid geteuid32 getgid getgid32 getgroups getgroups32 getitimer getpeername getpgid getpgrp getpid getppid
getpriority getrandom getresgid getresgid32 getresuid getresuid32 getrlimit get_robust_list getrusage getsid getsockname
getsockopt get_thread_area gettid gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
inotify_rm_watch io_cancel ioctl io_destroy io_getevents io_pgetevents io_pgetevents_time64 ioprio_get ioprio_set
io_setup io_submit ipc kill landlock_add_rule landlock_create_ruleset landlock_restrict_self lchown lchown32 lgetxattr
link linkat listen listxattr llistxattr _llseek lremovexattr lseek lsetxattr lstat lstat64 madvise map_shadow_stack
membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod mknodat mlock mlock2 mlockall mmap mmap2 mprotect
mq_getsetattr mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64 mq_unlink mremap
msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at nanosleep newfstatat _newselect open openat
openat2 pause pidfd_open pidfd_send_signal pipe pipe2 pkey_alloc pkey_free pkey_mprotect poll ppoll ppoll_time64 prctl
pread64 preadv preadv2 prlimit64 process_mrelease pselect6 pselect6_time64 pwrite64 pwritev pwritev2 read readahead
readlink readlinkat readv recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages removexattr rename renameat
renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending rt_sigprocmask rt_sigqueueinfo rt_sigreturn
rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64 rt_tgsigqueueinfo sched_getaffinity sched_getattr sched_getparam
sched_get_priority_max sched_get_priority_min sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select semctl semget semop
semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto setfsgid setfsgid32 setfsuid setfsuid32
setgid setgid32 setgroups setgroups32 setitimer setpgid setpriority setregid setregid32 setresgid setresgid32 setresuid
setresuid32 setreuid setreuid32 setrlimit set_robust_list setsid setsockopt set_thread_area set_tid_address setuid
setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signalfd signalfd4 sigprocmask sigreturn socketcall
socketpair splice stat stat64 statfs statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo tee tgkill
time timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime timer_settime64
timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime timerfd_settime64 times tkill truncate truncate64
ugetrlimit umask uname unlink unlinkat utime utimensat utimensat_time64 utimes vfork vmsplice wait4 waitid waitpid
write writev
'''.split()


def _allow(names, **extra):
    return dict({'names': names.split() if isinstance(names, str) else list(names), 'action': 'SCMP_ACT_ALLOW'}, **extra)


def _with_caps(names, cap):
    return _allow(names, includes={'caps': [cap]})


# Not in the allow list, so refused (EPERM) whatever the capabilities: keyctl, add_key, request_key
# (the kernel keyring is not namespaced), userfaultfd, io_uring_* (Docker 25 took them out), kexec_*,
# swapon/swapoff, the old nfsservctl, uselib, ... Granted only with the capability that makes them
# meaningful (Docker's includes.caps): the list below.
DEFAULT_PROFILE = {
    'defaultAction': 'SCMP_ACT_ERRNO',
    'defaultErrnoRet': errno.EPERM,
    'archMap': [
        {'architecture': 'SCMP_ARCH_X86_64', 'subArchitectures': ['SCMP_ARCH_X86', 'SCMP_ARCH_X32']},
        {'architecture': 'SCMP_ARCH_AARCH64', 'subArchitectures': ['SCMP_ARCH_ARM']},
        {'architecture': 'SCMP_ARCH_MIPS64', 'subArchitectures': ['SCMP_ARCH_MIPS', 'SCMP_ARCH_MIPS64N32']},
        {'architecture': 'SCMP_ARCH_S390X', 'subArchitectures': ['SCMP_ARCH_S390']},
        {'architecture': 'SCMP_ARCH_RISCV64', 'subArchitectures': []},
    ],
    'syscalls': [
        _allow(_ALLOWED),
        _allow('process_vm_readv process_vm_writev ptrace', includes={'minKernel': '4.8'}),
        _allow('socket', args=[{'index': 0, 'value': 40, 'op': 'SCMP_CMP_NE'}]),  # not AF_VSOCK
        # personality: only PER_LINUX, PER_LINUX32, UNAME26 (and their combination), and the query
        *[_allow('personality', args=[{'index': 0, 'value': v, 'op': 'SCMP_CMP_EQ'}]) for v in (0x0, 0x8, 0x20000, 0x20008, 0xffffffff)],
        _allow('sync_file_range2 swapcontext', includes={'arches': ['ppc64le']}),
        _allow('arm_fadvise64_64 arm_sync_file_range sync_file_range2 breakpoint cacheflush set_tls', includes={'arches': ['arm', 'arm64']}),
        _allow('arch_prctl', includes={'arches': ['amd64', 'x32']}),
        _allow('modify_ldt', includes={'arches': ['amd64', 'x32', 'x86']}),
        _allow('s390_pci_mmio_read s390_pci_mmio_write s390_runtime_instr', includes={'arches': ['s390', 's390x']}),
        _allow('riscv_flush_icache', includes={'arches': ['riscv64']}),
        _with_caps('open_by_handle_at', 'CAP_DAC_READ_SEARCH'),
        _with_caps('bpf clone clone3 fanotify_init fsconfig fsmount fsopen fspick lookup_dcookie mount mount_setattr move_mount open_tree '
                   'perf_event_open quotactl quotactl_fd setdomainname sethostname setns syslog umount umount2 unshare', 'CAP_SYS_ADMIN'),
        # clone without namespace flags (s390 passes the flags second)
        _allow('clone', args=[{'index': 0, 'value': CLONE_NAMESPACE_FLAGS, 'op': 'SCMP_CMP_MASKED_EQ'}],
               excludes={'caps': ['CAP_SYS_ADMIN'], 'arches': ['s390', 's390x']}),
        _allow('clone', args=[{'index': 1, 'value': CLONE_NAMESPACE_FLAGS, 'op': 'SCMP_CMP_MASKED_EQ'}],
               includes={'arches': ['s390', 's390x']}, excludes={'caps': ['CAP_SYS_ADMIN']}),
        {'names': ['clone3'], 'action': 'SCMP_ACT_ERRNO', 'errnoRet': errno.ENOSYS, 'excludes': {'caps': ['CAP_SYS_ADMIN']}},
        _with_caps('reboot', 'CAP_SYS_BOOT'),
        _with_caps('chroot', 'CAP_SYS_CHROOT'),
        _with_caps('delete_module init_module finit_module', 'CAP_SYS_MODULE'),
        _with_caps('acct', 'CAP_SYS_PACCT'),
        _with_caps('kcmp pidfd_getfd process_madvise process_vm_readv process_vm_writev ptrace', 'CAP_SYS_PTRACE'),
        _with_caps('iopl ioperm', 'CAP_SYS_RAWIO'),
        _with_caps('settimeofday stime clock_settime clock_settime64', 'CAP_SYS_TIME'),
        _with_caps('vhangup', 'CAP_SYS_TTY_CONFIG'),
        _with_caps('get_mempolicy mbind set_mempolicy set_mempolicy_home_node', 'CAP_SYS_NICE'),
        _with_caps('syslog', 'CAP_SYSLOG'),
        _with_caps('bpf', 'CAP_BPF'),
        _with_caps('perf_event_open', 'CAP_PERFMON'),
    ],
}


# -- Docker's JSON format -------------------------------------------------------------------------
def _list_of_str(value, what):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError('use', what, 'expected a list of strings, not %r' % (value,))
    return list(value)


def _uint(value, what, bits=64):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << bits:
        raise ConfigError('use', what, 'expected a whole number from 0 to 2^%d-1, not %r' % (bits, value))
    return value


def _conditions(value, what):
    value = value or {}
    if not isinstance(value, dict):
        raise ConfigError('use', what, 'expected a dict with caps, arches, minKernel')
    unknown = set(value) - {'caps', 'arches', 'minKernel'}
    if unknown:
        raise ConfigError('use', what, 'unknown keys %s (known: caps, arches, minKernel)' % ', '.join(sorted(unknown)))
    out = {}
    if value.get('caps'):
        out['caps'] = [caps.canonical(c) for c in _list_of_str(value['caps'], what + ' caps')]
    if value.get('arches'):
        out['arches'] = _list_of_str(value['arches'], what + ' arches')
    if value.get('minKernel'):
        kernel = value['minKernel']
        if not isinstance(kernel, str) or _kernel_version(kernel) is None:
            raise ConfigError('use', what + ' minKernel', 'expected a kernel version such as 4.8, not %r' % (kernel,))
        out['minKernel'] = kernel
    return out


def parse_profile(data, what='the seccomp profile'):
    """A profile in Docker's JSON format (as loaded by json) -> its validated, normalised form.

    Refused: the notify action (needs a listener), unknown actions, operators, architectures and keys
    that would change the meaning (a filter that silently does less than the file says is worse than
    an error). ``comment``, ``comments``, ``listenerPath`` and the like are dropped.
    """
    if not isinstance(data, dict):
        raise ConfigError('use', what, 'a profile is a JSON object with defaultAction and syscalls')
    default = data.get('defaultAction')
    if default not in ACTIONS:
        raise ConfigError('use', what + ' defaultAction', 'expected one of %s, not %r' % (', '.join(ACTIONS), default))
    out = {'defaultAction': default}
    if data.get('defaultErrnoRet') is not None:
        out['defaultErrnoRet'] = _uint(data['defaultErrnoRet'], what + ' defaultErrnoRet', 16)
    arch_map = []
    for index, entry in enumerate(data.get('archMap') or []):
        where = '%s archMap[%d]' % (what, index)
        if not isinstance(entry, dict) or entry.get('architecture') not in ARCHES:
            raise ConfigError('use', where, 'expected {architecture, subArchitectures} with names such as SCMP_ARCH_X86_64')
        subs = _list_of_str(entry.get('subArchitectures'), where + ' subArchitectures')
        bad = [s for s in subs if s not in ARCHES]
        if bad:
            raise ConfigError('use', where, 'unknown architectures %s' % ', '.join(bad))
        arch_map.append({'architecture': entry['architecture'], 'subArchitectures': subs})
    if arch_map:
        out['archMap'] = arch_map
    architectures = _list_of_str(data.get('architectures'), what + ' architectures')
    bad = [a for a in architectures if a not in ARCHES]
    if bad:
        raise ConfigError('use', what + ' architectures', 'unknown architectures %s' % ', '.join(bad))
    if architectures:
        out['architectures'] = architectures
    syscalls = data.get('syscalls') or []
    if not isinstance(syscalls, list):
        raise ConfigError('use', what + ' syscalls', 'expected a list')
    out['syscalls'] = [_syscall_entry(entry, '%s syscalls[%d]' % (what, i)) for i, entry in enumerate(syscalls)]
    return out


def _syscall_entry(entry, where):
    if not isinstance(entry, dict):
        raise ConfigError('use', where, 'expected {names, action, args, includes, excludes}')
    names = _list_of_str(entry.get('names'), where + ' names')
    if entry.get('name'):
        names.append(str(entry['name']))
    if not names:
        raise ConfigError('use', where, 'no syscall names')
    action = entry.get('action')
    if action not in ACTIONS:
        raise ConfigError('use', where + ' action', 'expected one of %s, not %r' % (', '.join(ACTIONS), action))
    out = {'names': names, 'action': action}
    if entry.get('errnoRet') is not None:
        out['errnoRet'] = _uint(entry['errnoRet'], where + ' errnoRet', 16)
    args = []
    for index, arg in enumerate(entry.get('args') or []):
        at = '%s args[%d]' % (where, index)
        if not isinstance(arg, dict) or arg.get('op') not in OPS:
            raise ConfigError('use', at, 'expected {index, value, valueTwo, op} with op one of %s' % ', '.join(OPS))
        index = arg.get('index', 0)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= 5:
            raise ConfigError('use', at + ' index', 'a syscall has arguments 0 to 5, not %r' % (index,))
        args.append({'index': index,
                     'value': _uint(arg.get('value', 0), at + ' value'), 'valueTwo': _uint(arg.get('valueTwo', 0), at + ' valueTwo'),
                     'op': arg['op']})
    if args:
        out['args'] = args
    for key in ('includes', 'excludes'):
        cond = _conditions(entry.get(key), '%s %s' % (where, key))
        if cond:
            out[key] = cond
    return out


# -- a profile for one container --------------------------------------------------------------------
def native_machine():
    return os.uname().machine


def _kernel_version(text):
    parts = []
    for piece in text.split('-')[0].split('.')[:2]:
        digits = ''.join(c for c in piece if c.isdigit()) if piece[:1].isdigit() else ''
        if not digits:
            return None
        parts.append(int(digits))
    return tuple(parts + [0] * (2 - len(parts)))


def architectures(profile, machine=None):
    """The SCMP_ARCH names the filter covers: the native one and, from archMap, its companions (an
    x86_64 host also i386 and x32, as Docker); a profile's own ``architectures`` list when it has one."""
    machine = machine or native_machine()
    if machine not in MACHINES:
        raise ConfigError('use', 'seccomp', 'architecture %s is not supported by this version of nsbox' % machine)
    native = MACHINES[machine][0]
    if profile.get('architectures'):
        listed = list(profile['architectures'])
        return [native] + [a for a in listed if a != native]
    out = [native]
    for entry in profile.get('archMap') or ():
        if entry['architecture'] == native:
            out += [a for a in entry['subArchitectures'] if a not in out]
    return out


def _applies(entry, capabilities, arch_names, kernel):
    inc, exc = entry.get('includes') or {}, entry.get('excludes') or {}
    if inc.get('caps') and not all(c in capabilities for c in inc['caps']):
        return False
    if inc.get('arches') and not set(inc['arches']) & set(arch_names):
        return False
    if inc.get('minKernel') and kernel is not None and kernel < _kernel_version(inc['minKernel']):
        return False
    if exc.get('caps') and any(c in capabilities for c in exc['caps']):
        return False
    if exc.get('arches') and set(exc['arches']) & set(arch_names):
        return False
    return True


def rules(profile, capabilities, machine=None, kernel_release=None):
    """(default (action, errno), [(name, (action, errno), args)]) for a container with ``capabilities``
    (canonical names) on ``machine``: the entries whose includes/excludes hold (Docker's rules: every
    included capability present, none of the excluded; arches against the native one; minKernel
    against the running kernel), one rule per syscall name and argument set. Rules whose action is
    the default are left out (libseccomp refuses them; they change nothing)."""
    machine = machine or native_machine()
    arch_names = MACHINES.get(machine, (None, (machine,)))[1]
    kernel = _kernel_version(kernel_release or os.uname().release)
    default = _action(profile['defaultAction'], profile.get('defaultErrnoRet'))
    capabilities = set(capabilities)
    out = []
    for entry in profile['syscalls']:
        if not _applies(entry, capabilities, arch_names, kernel):
            continue
        action = _action(entry['action'], entry.get('errnoRet'))
        if action == default:
            continue
        args = entry.get('args') or []
        indexes = [a['index'] for a in args]
        # Conditions on one argument index more than once: one rule each (a rule ANDs its conditions), as runc.
        arg_sets = [[a] for a in args] if len(set(indexes)) != len(indexes) else [args]
        for name in entry['names']:
            for arg_set in arg_sets:
                out.append((name, action, [(a['index'], a['op'], a['value'], a.get('valueTwo', 0)) for a in arg_set]))
    return default, out


def _action(name, errno_ret):
    if name == 'SCMP_ACT_ERRNO':
        return (name, errno.EPERM if errno_ret is None else errno_ret)
    if name == 'SCMP_ACT_TRACE':
        return (name, errno.EPERM if errno_ret is None else errno_ret)
    if name == 'SCMP_ACT_KILL':
        name = 'SCMP_ACT_KILL_THREAD'
    return (name, None)


# -- libseccomp ---------------------------------------------------------------------------------
def library():
    """libseccomp's Python binding, or a clear error naming the package."""
    try:
        # Imported here: an optional system binding (python3-seccomp), loaded only to build a filter.
        import seccomp as libseccomp  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise NsboxError('load', 'a seccomp filter', "the Python binding of libseccomp is missing (Debian: python3-seccomp; the host role "
                                                     "installs it); security_opt seccomp=unconfined runs without one") from None
    return libseccomp


def build(profile, capabilities, machine=None, kernel_release=None):
    """A libseccomp SyscallFilter for ``profile`` (not loaded). Syscall names libseccomp does not know
    are skipped, as runc does (a profile names syscalls of newer kernels and other architectures)."""
    lib = library()
    default, items = rules(profile, capabilities, machine, kernel_release)
    flt = lib.SyscallFilter(_lib_action(lib, default))
    # libseccomp sets no_new_privs itself when it loads a filter unless told not to: no_new_privs is
    # the container's own setting (security_opt), set by process.py, never a side effect of seccomp.
    flt.set_attr(lib.Attr.CTL_NNP, 0)
    for arch in architectures(profile, machine)[1:]:
        flt.add_arch(getattr(lib.Arch, arch[len('SCMP_ARCH_'):]))
    ops = {'SCMP_CMP_NE': lib.NE, 'SCMP_CMP_LT': lib.LT, 'SCMP_CMP_LE': lib.LE, 'SCMP_CMP_EQ': lib.EQ, 'SCMP_CMP_GE': lib.GE,
           'SCMP_CMP_GT': lib.GT, 'SCMP_CMP_MASKED_EQ': lib.MASKED_EQ}
    for name, action, args in items:
        try:
            flt.add_rule(_lib_action(lib, action), name, *[lib.Arg(i, ops[op], v, v2) for i, op, v, v2 in args])
        except RuntimeError:
            continue  # a name libseccomp does not know (-EINVAL): skipped, as runc does
    return flt


def _lib_action(lib, action):
    name, number = action
    if name == 'SCMP_ACT_ERRNO':
        return lib.ERRNO(number)
    if name == 'SCMP_ACT_TRACE':
        return lib.TRACE(number)
    return {'SCMP_ACT_ALLOW': lib.ALLOW, 'SCMP_ACT_KILL_THREAD': lib.KILL, 'SCMP_ACT_KILL_PROCESS': lib.KILL_PROCESS,
            'SCMP_ACT_TRAP': lib.TRAP, 'SCMP_ACT_LOG': lib.LOG}[name]


def load(flt):  # pragma: no cover - changes the calling process for good
    """Load a built filter into this process (needs no_new_privs or CAP_SYS_ADMIN)."""
    try:
        flt.load()
    except (RuntimeError, OSError, ValueError) as exc:
        raise NsboxError('load', 'the seccomp filter', str(exc)) from None
