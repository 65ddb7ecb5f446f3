# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""mounts.py's pure parts: secure_join (property tests against the kernel's own resolution in a
chroot), Docker's lists, mount options (no root needed but for the chroot oracle)."""
from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import syscall
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import mounts
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError


# -- secure_join: fixed cases --------------------------------------------------------------------
@pytest.fixture
def root(tmp_path):
    r = tmp_path / 'root'
    for d in ('etc', 'usr/lib', 'var'):
        (r / d).mkdir(parents=True)
    (r / 'etc' / 'file').write_text('x')
    os.symlink('/', r / 'etc' / 'slash')
    os.symlink('../../../../..', r / 'etc' / 'up')
    os.symlink('/usr/lib', r / 'lib')
    os.symlink('lib/../..', r / 'var' / 'rel')
    os.symlink(str(tmp_path), r / 'hostpath')  # the host's absolute path: must mean root/<that path>
    os.symlink('loop2', r / 'loop1')
    os.symlink('loop1', r / 'loop2')
    return str(r)


@pytest.mark.parametrize('path, expected', [
    ('/', ''), ('', ''), ('/etc', 'etc'), ('etc/', 'etc'), ('/../../etc', 'etc'), ('/etc/./file', 'etc/file'),
    ('/etc/slash', ''), ('/etc/slash/etc', 'etc'), ('/etc/up', ''), ('/etc/up/../usr', 'usr'),
    ('/lib', 'usr/lib'), ('/lib/x/y', 'usr/lib/x/y'), ('/var/rel', ''), ('/missing/../etc', 'etc'),
    ('/etc/file/x', 'etc/file/x'), ('/etc/missing/../../..', ''),
])
def test_secure_join_cases(root, path, expected):
    assert mounts.secure_join(root, path) == os.path.join(root, expected) if expected else root


def test_secure_join_absolute_host_paths_stay_inside(root, tmp_path):
    assert mounts.secure_join(root, '/hostpath/x') == os.path.join(root, str(tmp_path).lstrip('/'), 'x')


def test_secure_join_loops_are_an_error(root):
    with pytest.raises(mounts.MountError, match='too many levels of symbolic links') as info:
        mounts.secure_join(root, '/loop1/x')
    assert info.value.errno == errno.ELOOP


def test_secure_join_does_not_resolve_the_root(tmp_path):
    os.symlink('/', tmp_path / 'link-to-slash')
    # /proc/<pid>/root is such a link: the root is used as given, never followed to the host's /
    assert mounts.secure_join(str(tmp_path / 'link-to-slash'), '/etc') == str(tmp_path / 'link-to-slash' / 'etc')


# -- secure_join: properties over random trees ---------------------------------------------------
NAMES = ('a', 'b', 'c')
TARGETS = st.lists(st.sampled_from(NAMES + ('..', '.', '')), min_size=0, max_size=5).map('/'.join)
ENTRY = st.one_of(st.just(('dir', None)), st.just(('file', None)),
                  st.tuples(st.just('link'), st.tuples(st.booleans(), TARGETS).map(lambda t: ('/' if t[0] else '') + t[1])))
TREE = st.dictionaries(st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map('/'.join), ENTRY, max_size=10)
QUERY = st.lists(st.sampled_from(NAMES + ('..', '.')), min_size=0, max_size=6).map(lambda p: '/' + '/'.join(p))


def build(root, tree):
    for rel, (kind, target) in sorted(tree.items()):
        path = os.path.join(root, rel)
        parent = os.path.dirname(path)
        if not os.path.isdir(parent) or os.path.islink(parent) or os.path.lexists(path):
            continue
        if kind == 'dir':
            os.mkdir(path)
        elif kind == 'file':
            with open(path, 'w'):
                pass
        else:
            os.symlink(target or '.', path)


@contextlib.contextmanager
def tree_root(tree):
    base = tempfile.mkdtemp(prefix='nsbox-sj-')
    try:
        root = os.path.join(base, 'root')
        os.mkdir(root)
        build(root, tree)
        yield root
    finally:
        shutil.rmtree(base)


def resolve_in_chroot(root, path):
    """The oracle: what the kernel resolves ``path`` to with ``root`` as /, via realpath in a chroot."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the oracle's child
        try:
            os.chroot(root)
            os.chdir('/')
            os.write(w, os.path.realpath(path).encode())
        finally:
            os._exit(0)  # pylint: disable=protected-access
    os.close(w)
    with os.fdopen(r, 'rb') as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREE, query=QUERY)
def test_secure_join_never_leaves_the_root(tree, query):
    with tree_root(tree) as root:
        try:
            got = mounts.secure_join(root, query)
        except mounts.MountError as exc:
            assert exc.errno == errno.ELOOP
            return
        assert got == root or got.startswith(root + '/')
        # Every existing component of the answer is a real directory or file, never a link:
        # mounting on it (or creating the rest) cannot be redirected.
        here = root
        for part in os.path.relpath(got, root).split('/'):
            if part == '.':
                break
            here = os.path.join(here, part)
            if not os.path.lexists(here):
                break
            assert not os.path.islink(here)


@pytest.mark.skipif(os.geteuid() != 0, reason='the chroot oracle needs root')
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=TREE, query=QUERY)
def test_secure_join_resolves_as_the_kernel_does_in_a_chroot(tree, query):
    with tree_root(tree) as root:
        try:
            got = mounts.secure_join(root, query)
        except mounts.MountError:
            return  # a loop: realpath gives up differently
        assert got == os.path.normpath(root + resolve_in_chroot(root, query)).rstrip('/')


# -- Docker's lists ------------------------------------------------------------------------------
def test_docker_default_lists():
    assert mounts.MASKED_PATHS == (
        '/proc/asound', '/proc/acpi', '/proc/interrupts', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap')
    assert mounts.READONLY_PATHS == ('/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger')
    assert [n for n, _maj, _min in mounts.DEV_NODES] == ['null', 'zero', 'full', 'random', 'urandom', 'tty']
    assert dict(mounts.DEV_LINKS)['ptmx'] == 'pts/ptmx'


# -- options -------------------------------------------------------------------------------------
NSD = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC


@pytest.mark.parametrize('kind, options, readonly, expected', [
    ('bind', [], False, (syscall.MS_BIND | syscall.MS_REC, None, syscall.MS_PRIVATE | syscall.MS_REC)),
    ('bind', ['bind', 'ro', 'nosuid', 'rslave'], False,
     (syscall.MS_BIND | syscall.MS_RDONLY | syscall.MS_NOSUID, None, syscall.MS_SLAVE | syscall.MS_REC)),
    ('bind', ['rw'], True, (syscall.MS_BIND | syscall.MS_REC | syscall.MS_RDONLY, None, syscall.MS_PRIVATE | syscall.MS_REC)),
    ('tmpfs', [], False, (NSD, None, 0)),
    ('tmpfs', ['size=1m', 'mode=1777', 'exec', 'ro'], False, (syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_RDONLY, 'size=1m,mode=1777', 0)),
    ('tmpfs', ['uid=5', 'noatime'], True, (NSD | syscall.MS_NOATIME | syscall.MS_RDONLY, 'uid=5', 0)),
])
def test_parse_options(kind, options, readonly, expected):
    assert mounts.parse_options(kind, options, readonly) == expected


@pytest.mark.parametrize('kind, options, match', [
    ('nfs', [], 'supported: bind, tmpfs'),
    ('bind', ['size=1m'], 'not an option of a bind mount'),
    ('tmpfs', ['rbind'], 'not an option of a tmpfs mount'),
    ('tmpfs', [3], 'options are strings'),
])
def test_parse_options_errors(kind, options, match):
    with pytest.raises(ConfigError, match=match):
        mounts.parse_options(kind, options)


def test_mount_flags_of_reads_the_mount():
    names = {'ro': syscall.MS_RDONLY, 'nosuid': syscall.MS_NOSUID, 'nodev': syscall.MS_NODEV, 'noexec': syscall.MS_NOEXEC,
             'noatime': syscall.MS_NOATIME, 'nodiratime': syscall.MS_NODIRATIME, 'relatime': syscall.MS_RELATIME}
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            if fields[4] in ('/', '/proc', '/sys'):
                expected = sum(names.get(o, 0) for o in fields[5].split(','))
                assert mounts.mount_flags_of(fields[4]) == expected, line


@pytest.fixture(params=['openat2', 'walk'])
def resolver(request, monkeypatch):
    """open_in_root both ways: the kernel's openat2, and the component walk used where it is missing."""
    if request.param == 'walk':
        monkeypatch.setitem(mounts._openat2, 'works', False)  # pylint: disable=protected-access
    else:
        if not syscall.kernel_has_syscall('openat2'):
            pytest.skip('no openat2 here')
        monkeypatch.setitem(mounts._openat2, 'works', None)  # pylint: disable=protected-access
    return request.param


def test_open_in_root_opens_what_secure_join_resolved(tmp_path, resolver):
    root = tmp_path / 'root'
    (root / 'etc').mkdir(parents=True)
    (root / 'etc' / 'hosts').write_text('')
    os.symlink('/etc', str(root / 'link'))
    path = mounts.secure_join(str(root), '/link/hosts')
    fd = mounts.open_in_root(str(root), path)
    try:
        assert os.readlink('/proc/self/fd/%d' % fd) == str(root / 'etc' / 'hosts')
    finally:
        os.close(fd)
    fd = mounts.open_in_root(str(root), str(root))
    os.close(fd)


def test_open_in_root_refuses_a_component_swapped_for_a_symlink(tmp_path, resolver):
    """Resolved, then swapped (another process with the same volume): the open refuses instead of following."""
    root = tmp_path / 'root'
    (root / 'data' / 'sub').mkdir(parents=True)
    outside = tmp_path / 'outside'
    (outside / 'sub').mkdir(parents=True)
    path = mounts.secure_join(str(root), '/data/sub')
    shutil.rmtree(str(root / 'data'))
    os.symlink(str(outside), str(root / 'data'))
    with pytest.raises(mounts.MountError, match='symlink now') as info:
        mounts.open_in_root(str(root), path)
    assert info.value.errno == errno.ELOOP
    with pytest.raises(mounts.MountError, match='not below'):
        mounts.open_in_root(str(root), str(outside))


def test_refuse_symlinked(tmp_path):
    (tmp_path / 'dev').mkdir()
    os.symlink('/', str(tmp_path / 'proc'))
    with pytest.raises(mounts.MountError, match=r"the image makes /proc a symlink \(to '/'\)"):
        mounts.refuse_symlinked(str(tmp_path))
    mounts.refuse_symlinked(str(tmp_path), names=('dev', 'sys'))
