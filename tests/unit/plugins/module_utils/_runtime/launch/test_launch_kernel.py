# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container's mounts (mounts.prepare) and capabilities (caps.apply) as the kernel sees them: the exact
sequence of calls, through the recording fake (fakekernel.py). The rootfs is a tmp dir: targets are made
there for real, the mounts only recorded."""
from __future__ import annotations

import ast
import errno
import os
import stat

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import NsboxError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import syscall
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import caps, mounts
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch.spec import Launch
from ansible_collections.nsbox.runtime.tests.unit.plugins.module_utils._runtime.fakekernel import FakeKernel, same_shape

NSN = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC
BIND, REC, RO = syscall.MS_BIND, syscall.MS_REC, syscall.MS_RDONLY
REMOUNT_BIND = syscall.MS_REMOUNT | syscall.MS_BIND
CHR = stat.S_IFCHR | 0o666


def test_the_fake_has_the_shape_of_the_real_kernel():
    assert same_shape() == ([], [])
    assert syscall.LINUX.fork is os.fork and syscall.LINUX.kill is os.kill  # the os functions themselves: no layer
    assert syscall.mount == syscall.LINUX.mount  # the old names are the real object's bound methods


@pytest.fixture
def rootfs(tmp_path, monkeypatch):
    root = tmp_path / 'root'
    (root / 'proc' / 'acpi').mkdir(parents=True)
    (root / 'proc' / 'sys').mkdir()
    (root / 'proc' / 'kcore').write_text('')
    (tmp_path / 'data').mkdir()
    monkeypatch.setitem(mounts._openat2, 'works', None)  # pylint: disable=protected-access
    return str(root)


@pytest.fixture
def kernel(rootfs, tmp_path):
    fake = FakeKernel()
    fake.label(rootfs, '<root>')
    fake.label(str(tmp_path / 'data'), '<data>')
    return fake


def spec_of(rootfs, tmp_path, **extra):
    spec = {'rootfs': rootfs, 'args': ['/bin/true'], 'shm_size': 1 << 20, 'masked_paths': ['/proc/kcore', '/proc/acpi', '/proc/nothing'],
            'readonly_paths': ['/proc/sys'],
            'mounts': [{'type': 'bind', 'source': str(tmp_path / 'data'), 'target': '/data', 'readonly': True, 'options': ['rshared']},
                       {'type': 'tmpfs', 'target': '/tmp', 'options': ['size=1m']}]}
    spec.update(extra)
    return Launch.of(spec)


DEV = [
    ('mount', 'tmpfs', '<root>/dev', 'tmpfs', syscall.MS_NOSUID | syscall.MS_STRICTATIME, 'mode=755,size=65536k'),
] + [('mknod', '<root>/dev/' + name, CHR, os.makedev(major, minor)) for name, major, minor in mounts.DEV_NODES] + [
    ('mount', 'devpts', '<root>/dev/pts', 'devpts', syscall.MS_NOSUID | syscall.MS_NOEXEC, 'newinstance,ptmxmode=0666,mode=0620,gid=5'),
    ('mount', 'shm', '<root>/dev/shm', 'tmpfs', NSN, 'mode=1777,size=1048576'),
    ('mount', 'mqueue', '<root>/dev/mqueue', 'mqueue', NSN, None),
]
USER_MOUNTS = [
    ('mount', '<data>', '<root>/data', None, BIND | REC, None),             # rbind (the default)
    ('mount', None, '<root>/data', None, REMOUNT_BIND | RO, None),          # then read-only, keeping its flags
    ('mount', None, '<root>/data', None, syscall.MS_SHARED | REC, None),   # then its propagation
    ('mount', 'tmpfs', '<root>/tmp', 'tmpfs', NSN, 'size=1m'),
]
MASKS = [
    ('mount', '<root>/dev/null', '<root>/proc/kcore', None, BIND, None),   # a file: the container's /dev/null over it
    ('mount', 'tmpfs', '<root>/proc/acpi', 'tmpfs', RO, None),            # a directory: an empty read-only tmpfs
    ('mount', '<root>/proc/sys', '<root>/proc/sys', None, BIND | REC, None),
    ('mount', None, '<root>/proc/sys', None, REMOUNT_BIND | RO, None),
]


def test_prepare_mounts_in_order(rootfs, kernel, tmp_path):
    mounts.prepare(spec_of(rootfs, tmp_path), kernel=kernel)
    assert kernel.only('mount', 'mknod', 'umount', 'lchown') == [
        ('mount', None, '/', None, syscall.MS_SLAVE | REC, None),            # nothing propagates back to the host
        ('mount', '<root>', '<root>', None, BIND | REC, None),              # pivot_root needs a mount point
        ('mount', 'proc', '<root>/proc', 'proc', NSN, None),
    ] + DEV + [
        ('mount', 'sysfs', '<root>/sys', 'sysfs', RO | NSN, None),
        ('mount', 'cgroup2', '<root>/sys/fs/cgroup', 'cgroup2', RO | NSN | syscall.MS_RELATIME, None),
    ] + USER_MOUNTS + MASKS
    # Every target inside the rootfs was opened by the kernel's own resolution, never by a path the image could swap.
    assert {call[2] for call in kernel.only('openat2')} == {syscall.RESOLVE_IN_ROOT | syscall.RESOLVE_NO_SYMLINKS | syscall.RESOLVE_NO_MAGICLINKS}
    assert os.path.islink(os.path.join(rootfs, 'dev', 'ptmx')) and os.path.isdir(os.path.join(rootfs, 'data'))


def test_prepare_keeps_the_flags_of_a_bind_it_remounts(rootfs, kernel, tmp_path):
    kernel.mount_flags = {'<root>/data': syscall.MS_NOSUID | syscall.MS_NODEV}
    mounts.prepare(spec_of(rootfs, tmp_path), kernel=kernel)
    assert ('mount', None, '<root>/data', None, REMOUNT_BIND | RO | syscall.MS_NOSUID | syscall.MS_NODEV, None) in kernel.calls


def test_prepare_on_a_v1_host_mounts_no_cgroup2(rootfs, kernel, tmp_path):
    kernel.fs_types = {'/sys/fs/cgroup': 'tmpfs'}
    mounts.prepare(spec_of(rootfs, tmp_path, mounts=[], masked_paths=[], readonly_paths=[]), kernel=kernel)
    assert [c[2] for c in kernel.only('mount')][-2:] == ['<root>/dev/mqueue', '<root>/sys']


def test_prepare_without_mknod_binds_the_hosts_nodes(rootfs, kernel, tmp_path):
    """No CAP_MKNOD (EPERM on the first node): each standard node is a bind of the host's, as runc does."""
    kernel.fail('mknod', errno.EPERM, nth=1)
    mounts.prepare(spec_of(rootfs, tmp_path, mounts=[], masked_paths=[], readonly_paths=[]), kernel=kernel)
    calls = kernel.only('mount', 'mknod')
    at = calls.index(('mknod', '<root>/dev/null', CHR, os.makedev(1, 3)))
    assert calls[at + 1] == ('mount', '/dev/null', '<root>/dev/null', None, BIND, None)
    assert calls[at + 2] == ('mknod', '<root>/dev/zero', CHR, os.makedev(1, 5))


def test_prepare_binds_the_hosts_sys_where_a_fresh_sysfs_is_refused(rootfs, kernel, tmp_path):
    """A joined net namespace of another user namespace: sysfs gives EPERM; /sys is bound recursively, read-only, rslave."""
    kernel.fail('mount', errno.EPERM, nth=3 + 4 + 1)  # after /, the rootfs, /proc and /dev's four
    mounts.prepare(spec_of(rootfs, tmp_path, mounts=[], masked_paths=[], readonly_paths=[]), kernel=kernel)
    assert kernel.only('mount')[-4:] == [
        ('mount', 'sysfs', '<root>/sys', 'sysfs', RO | NSN, None),
        ('mount', '/sys', '<root>/sys', None, BIND | REC, None),
        ('mount', None, '<root>/sys', None, REMOUNT_BIND | RO, None),
        ('mount', None, '<root>/sys', None, syscall.MS_SLAVE | REC, None),
    ]


def test_prepare_stops_at_a_failing_mount_and_says_where(rootfs, kernel, tmp_path):
    kernel.fail('mount', errno.ENODEV, nth=3 + 4 + 2 + 1)  # the user's bind
    with pytest.raises(mounts.MountError, match='on /.*data') as info:
        mounts.prepare(spec_of(rootfs, tmp_path), kernel=kernel)
    assert info.value.errno == errno.ENODEV
    assert kernel.only('mount')[-1] == USER_MOUNTS[0]  # nothing after it was tried


def test_devices_are_made_with_their_owner(rootfs, kernel, tmp_path):
    device = {'container': '/dev/snd/timer', 'type': 'c', 'major': 116, 'minor': 33, 'mode': 0o660, 'uid': 0, 'gid': 29, 'host': '/dev/snd/timer'}
    mounts.prepare(spec_of(rootfs, tmp_path, mounts=[], masked_paths=[], readonly_paths=[], devices=[device]), kernel=kernel)
    calls = kernel.only('mknod', 'lchown')
    assert calls[-2:] == [('mknod', '<root>/dev/snd/timer', stat.S_IFCHR | 0o660, os.makedev(116, 33)), ('lchown', '<root>/dev/snd/timer', 0, 29)]


def test_masking_refuses_a_dev_null_that_is_not_the_device(rootfs, kernel, tmp_path):
    """/dev/null made as a plain file (a planted one): masking would expose it, so nothing is masked."""
    kernel.mknod = lambda path, mode=0, device=0: open(path, 'x').close()  # a node that is no device
    with pytest.raises(mounts.MountError, match='not the null device'):
        mounts.prepare(spec_of(rootfs, tmp_path), kernel=kernel)
    assert not [c for c in kernel.only('mount') if c[2].startswith('<root>/proc/')][1:]


def test_open_in_root_falls_back_without_openat2(rootfs, kernel):
    kernel.fail('openat2', errno.ENOSYS)
    fd = mounts.open_in_root(rootfs, os.path.join(rootfs, 'proc', 'acpi'), kernel)
    try:
        assert os.readlink('/proc/self/fd/%d' % fd) == os.path.join(rootfs, 'proc', 'acpi')
    finally:
        os.close(fd)
    assert mounts._openat2['works'] is False  # pylint: disable=protected-access
    fd = mounts.open_in_root(rootfs, os.path.join(rootfs, 'proc'), kernel)
    os.close(fd)
    assert kernel.names() == ['openat2']  # not tried again in this process


def test_remount_root_readonly(kernel):
    kernel.mount_flags = {'/': syscall.MS_NOSUID}
    mounts.remount_root_readonly(kernel)
    assert kernel.calls == [('mount', None, '/', None, REMOUNT_BIND | syscall.MS_NOSUID | RO, None)]


# -- capabilities --------------------------------------------------------------------------------
def test_caps_apply_for_root():
    kernel = FakeKernel(capabilities=(0, (1 << 41) - 1, 0))
    top = caps.last_cap()
    caps.apply(['CAP_CHOWN', 'CAP_KILL'], 0, kernel)
    wanted = caps.mask(['CAP_CHOWN', 'CAP_KILL'])
    assert kernel.calls == [('capget',), ('capset', (1 << 41) - 1, (1 << 41) - 1, 0)] + [
        ('prctl', syscall.PR_CAPBSET_DROP, n) for n in range(top + 1) if n not in (0, 5)] + [
        ('prctl', syscall.PR_CAP_AMBIENT, syscall.PR_CAP_AMBIENT_CLEAR_ALL),
        ('capset', wanted, wanted, 0),                 # root: the set as effective and permitted, nothing inheritable
        ('prctl', syscall.PR_SET_KEEPCAPS, 0),
    ]


def test_caps_apply_for_a_user_ends_with_none():
    kernel = FakeKernel(capabilities=(0, caps.mask(caps.DEFAULT), 0))
    caps.apply(caps.DEFAULT, 1000, kernel)
    assert kernel.calls[1] == ('capset', caps.mask(caps.DEFAULT), caps.mask(caps.DEFAULT), 0)  # raised, for the drops
    assert kernel.calls[-2:] == [('capset', 0, 0, 0), ('prctl', syscall.PR_SET_KEEPCAPS, 0)]


def test_caps_apply_stops_when_a_drop_fails():
    kernel = FakeKernel()
    kernel.fail('prctl', errno.EPERM, nth=2)
    with pytest.raises(NsboxError) as info:
        caps.apply(caps.DEFAULT, 0, kernel)
    assert info.value.errno == errno.EPERM
    assert kernel.names()[-1] == 'prctl' and 'capset' not in kernel.names()[2:]  # the final sets were never applied


def test_the_library_calls_the_kernel_through_the_object():
    """The module-level names are the real object's bound methods; library code reads only the ones whose callers
    take no kernel yet (host facts and cgroup layout detection: statfs, the syscall probe; the CLI's terminal)."""
    lib = os.path.dirname(os.path.dirname(syscall.__file__))
    read = set()
    for dirpath, _dirs, files in os.walk(lib):
        for name in files:
            if name.endswith('.py') and name != 'syscall.py':
                with open(os.path.join(dirpath, name)) as f:
                    tree = ast.parse(f.read())
                read.update(node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                            and node.value.id == 'syscall' and node.attr[:1].islower())
    assert read == {'statfs_type', 'kernel_has_syscall', 'open_pty'}
