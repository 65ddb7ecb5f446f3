# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Device access on cgroup v2: an eBPF cgroup-device program built from allow rules, as runc builds it.

cgroup v2 has no devices controller: a ``BPF_PROG_TYPE_CGROUP_DEVICE`` program attached to the
cgroup answers every device access with allow (1) or deny (0). The program here loads the
request (type, access, major, minor) from its context, then checks the rules one by one, each
a block that either returns 1 or jumps to the next; nothing matched -> 0 (default deny, the
model Docker uses). A request is allowed when one rule covers all its access bits.

To read the setting back, the program's name carries a hash of its rules
(``nsbox_<9 hex>``): the attached programs are queried and their names compared.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import struct

from ..kernel.syscall import LINUX
from ..errors import CgroupError, NsboxError

# bpf(2) commands, program/attach types and flags (linux/bpf.h)
BPF_PROG_LOAD, BPF_PROG_ATTACH, BPF_PROG_DETACH = 5, 8, 9
BPF_PROG_GET_FD_BY_ID, BPF_OBJ_GET_INFO_BY_FD, BPF_PROG_QUERY = 13, 15, 16
BPF_PROG_TYPE_CGROUP_DEVICE, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI = 15, 6, 2
DEV_TYPE = {'b': 1, 'c': 2}  # BPF_DEVCG_DEV_BLOCK, BPF_DEVCG_DEV_CHAR
ACCESS = {'m': 1, 'r': 2, 'w': 4}  # BPF_DEVCG_ACC_MKNOD, _READ, _WRITE
NAME_PREFIX = 'nsbox_'

# Opcodes used (class | size/op | source)
_LDX_W = 0x61      # dst = *(u32 *)(src + off)
_AND32_K = 0x54    # dst &= imm (32-bit)
_RSH32_K = 0x74    # dst >>= imm (32-bit)
_MOV64_X = 0xbf    # dst = src
_MOV64_K = 0xb7    # dst = imm
_JNE_K = 0x55      # if dst != imm: pc += off
_EXIT = 0x95


def _insn(code, dst=0, src=0, off=0, imm=0):
    return struct.pack('<BBhi', code, (src << 4) | dst, off, imm)


def program(rules):
    """The program's instructions (bytes) for a list of allow DeviceRules."""
    out = [
        _insn(_LDX_W, dst=2, src=1, off=0), _insn(_AND32_K, dst=2, imm=0xFFFF),   # r2 = type
        _insn(_LDX_W, dst=3, src=1, off=0), _insn(_RSH32_K, dst=3, imm=16),       # r3 = access
        _insn(_LDX_W, dst=4, src=1, off=4),                                       # r4 = major
        _insn(_LDX_W, dst=5, src=1, off=8),                                       # r5 = minor
    ]
    for rule in rules:
        checks = []  # (jump-if-not-equal builders), the jump offset filled in below
        if rule.kind != 'a':
            checks.append([(_JNE_K, 2, DEV_TYPE[rule.kind])])
        mask = sum(ACCESS[c] for c in rule.access)
        if mask != 7:
            # r1 = access & ~allowed; any bit left -> not this rule
            checks.append([(_MOV64_X, 1, 3), (_AND32_K, 1, ~mask & 0x7FFFFFFF), (_JNE_K, 1, 0)])
        if rule.major is not None:
            checks.append([(_JNE_K, 4, rule.major)])
        if rule.minor is not None:
            checks.append([(_JNE_K, 5, rule.minor)])
        block = [step for check in checks for step in check]
        length = len(block) + 2  # + "r0 = 1; exit"
        for i, (code, dst, imm) in enumerate(block):
            if code == _MOV64_X:
                out.append(_insn(code, dst=dst, src=imm))
            elif code == _JNE_K:
                out.append(_insn(code, dst=dst, off=length - i - 1, imm=_s32(imm)))
            else:
                out.append(_insn(code, dst=dst, imm=_s32(imm)))
        out += [_insn(_MOV64_K, dst=0, imm=1), _insn(_EXIT)]
    out += [_insn(_MOV64_K, dst=0, imm=0), _insn(_EXIT)]
    return b''.join(out)


def _s32(value):
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value & 0x80000000 else value


def rules_name(rules):
    digest = hashlib.sha256('\n'.join(str(r) for r in rules).encode()).hexdigest()
    return NAME_PREFIX + digest[:9]


def _attr(size=128):
    return (ctypes.c_ubyte * size)()


def _put(attr, offset, fmt, *values):
    struct.pack_into(fmt, attr, offset, *values)


def load(rules, kernel=LINUX):
    """Load the program for ``rules``; returns its fd (the caller closes it)."""
    insns = program(rules)
    code = ctypes.create_string_buffer(insns, len(insns))
    license_ = ctypes.create_string_buffer(b'Apache-2.0')  # any string: the program calls no GPL-only helper
    log = ctypes.create_string_buffer(65536)
    attr = _attr()
    _put(attr, 0, '<II', BPF_PROG_TYPE_CGROUP_DEVICE, len(insns) // 8)
    _put(attr, 8, '<QQ', ctypes.addressof(code), ctypes.addressof(license_))
    _put(attr, 24, '<IIQ', 1, len(log), ctypes.addressof(log))
    _put(attr, 48, '16s', rules_name(rules).encode())
    try:
        return kernel.bpf(BPF_PROG_LOAD, attr, 'a cgroup device program')
    except NsboxError as exc:
        detail = log.value.decode('utf-8', 'replace').strip().splitlines()[-3:]
        raise CgroupError('load', 'the cgroup device program', '%s%s' % (exc.cause, ' (verifier: %s)' % ' / '.join(detail) if detail else ''),
                          errno=exc.errno)


def _cgroup_fd(path):
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise CgroupError.from_oserror('open', 'cgroup %s' % path, exc)


def attached(path, kernel=LINUX):
    """[(program id, name)] of the device programs attached to the cgroup directory ``path``."""
    if not os.path.isdir(path):
        return []
    fd = _cgroup_fd(path)
    try:
        ids = (ctypes.c_uint32 * 64)()
        attr = _attr()
        _put(attr, 0, '<II', fd, BPF_CGROUP_DEVICE)
        _put(attr, 16, '<QI', ctypes.addressof(ids), len(ids))
        kernel.bpf(BPF_PROG_QUERY, attr, 'the device programs of cgroup %s' % path)
        count = struct.unpack_from('<I', attr, 24)[0]
        return [(pid, _prog_name(pid, kernel)) for pid in ids[:count]]
    finally:
        os.close(fd)


def _prog_fd(prog_id, kernel):
    attr = _attr()
    _put(attr, 0, '<I', prog_id)
    return kernel.bpf(BPF_PROG_GET_FD_BY_ID, attr, 'program %d' % prog_id)


def _prog_name(prog_id, kernel):
    fd = _prog_fd(prog_id, kernel)
    try:
        info = (ctypes.c_ubyte * 256)()
        attr = _attr()
        _put(attr, 0, '<II', fd, len(info))
        _put(attr, 8, '<Q', ctypes.addressof(info))
        kernel.bpf(BPF_OBJ_GET_INFO_BY_FD, attr, 'program %d' % prog_id)
        return bytes(info[64:80]).split(b'\0', 1)[0].decode('ascii', 'replace')
    finally:
        os.close(fd)


def attached_rules(path, wanted, kernel=LINUX):
    """The setting as read back: ``wanted`` when exactly its program is attached, else the attached nsbox programs' names."""
    names = [name for _pid, name in attached(path, kernel) if name.startswith(NAME_PREFIX)]
    return list(wanted) if wanted is not None and names == [rules_name(wanted)] else names


def apply_rules(path, rules, kernel=LINUX):
    """Attach the program for ``rules``, then detach nsbox's older ones: never a moment without a filter."""
    old = [pid for pid, name in attached(path, kernel) if name.startswith(NAME_PREFIX)]
    prog = load(rules, kernel)
    cg = _cgroup_fd(path)
    try:
        attr = _attr()
        _put(attr, 0, '<IIII', cg, prog, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI)
        try:
            kernel.bpf(BPF_PROG_ATTACH, attr, 'the device program to cgroup %s' % path)
        except NsboxError as exc:
            raise CgroupError('attach', 'the device program to cgroup %s' % path, exc.cause, errno=exc.errno)
        for pid in old:
            fd = _prog_fd(pid, kernel)
            try:
                attr = _attr()
                _put(attr, 0, '<IIII', cg, fd, BPF_CGROUP_DEVICE, 0)
                kernel.bpf(BPF_PROG_DETACH, attr, 'program %d from cgroup %s' % (pid, path))
            finally:
                os.close(fd)
    finally:
        os.close(cg)
        os.close(prog)
