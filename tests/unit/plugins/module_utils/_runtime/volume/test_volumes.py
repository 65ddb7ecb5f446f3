# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Named volumes: names, the store's transitions (and what a crash at each step leaves), the
first-use copy, the module logic (labels, recreate, in use), the propagation check."""
from __future__ import annotations

import json
import os
import stat

import pytest
from hypothesis import given, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import fsutil
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host.config import HostConfig
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import assemble, options
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container.store import ContainerError, ContainerStore
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.volume import copyup, volumes, store as vstore
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.usage import References

ROOT = os.geteuid() == 0
IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}


def _ensure(cfg, *args, **kwargs):
    return volumes.ensure(cfg, *args, refs=References(cfg), **kwargs)


def _info(cfg, *args, **kwargs):
    return volumes.info(cfg, *args, refs=References(cfg), **kwargs)


@pytest.fixture
def cfg(tmp_path):
    return HostConfig({'data_root': str(tmp_path / 'data'), 'state_dir': str(tmp_path / 'run')})


@pytest.fixture
def store(cfg):
    return vstore.VolumeStore(cfg.data_root)


@pytest.mark.parametrize('name', ['ab', 'a1', '9.x', 'data_1-2.b', 'A' * 255])
def test_docker_names_are_accepted(name):
    assert vstore.validate_name(name) == name


@pytest.mark.parametrize('name', ['', 'a', '_x', '.x', '-x', 'a/b', 'a b', 'a:b', '..', 'x' * 256, None, 3])
def test_other_names_are_refused(name):
    with pytest.raises(ConfigError, match='2-255 characters'):
        vstore.validate_name(name)


@given(st.text(min_size=0, max_size=12))
def test_a_valid_name_is_always_a_plain_directory_name(name):
    try:
        vstore.validate_name(name)
    except ConfigError:
        return
    assert '/' not in name and name not in ('.', '..') and not name.startswith(('.', '-', '_'))


# -- the store -----------------------------------------------------------------------------------
def test_create_get_remove(store):
    with store.lock():
        vol = store.create('data', labels={'a': '1'})
    assert os.path.isdir(vol.data) and stat.S_IMODE(os.stat(vol.data).st_mode) == 0o755
    with open(vol.path('volume.json')) as f:
        record = json.load(f)
    assert record['schema_version'] == 1 and record['labels'] == {'a': '1'} and record['populated'] is False
    got = store.get('data')
    assert got.inspect(['web']) == {'Name': 'data', 'Driver': 'local', 'Mountpoint': vol.data, 'Labels': {'a': '1'}, 'Options': {},
                                    'Scope': 'local', 'CreatedAt': record['created_at'], 'UsedBy': ['web']}
    assert [v.name for v in store.all()] == ['data']
    with store.lock():
        store.remove(got)
    assert store.get('data') is None and store.all() == [] and sorted(os.listdir(store.root)) == ['.lock']


def test_crash_states_are_invisible_and_cleaned(store):
    """A kill during create (a .new- dir, complete or not) or remove (a .gone- dir): no volume shows, cleanup removes it."""
    with store.lock():
        vol = store.create('keep')
    os.makedirs(os.path.join(store.root, '.new-0001', '_data'))           # killed before volume.json
    os.makedirs(os.path.join(store.root, '.new-0002', '_data'))           # killed before the rename
    with open(os.path.join(store.root, '.new-0002', 'volume.json'), 'w') as f:
        json.dump({'schema_version': 1, 'name': 'ghost'}, f)
    os.makedirs(os.path.join(store.root, '.gone-0003', '_data', 'x'))     # killed during the delete
    assert [v.name for v in store.all()] == ['keep'] and store.get('ghost') is None
    with store.lock():
        assert sorted(store.cleanup()) == ['.gone-0003', '.new-0001', '.new-0002']
    assert sorted(os.listdir(store.root)) == ['.lock', 'keep'] and os.path.isdir(vol.data)


def test_a_directory_without_its_record_is_an_error_not_a_guess(store):
    os.makedirs(os.path.join(store.root, 'stray', '_data'))
    with pytest.raises(vstore.VolumeError, match='holds no volume.json'):
        store.get('stray')
    assert store.all() == []


def test_a_record_from_a_newer_nsbox_is_refused(store):
    with store.lock():
        vol = store.create('data')
    with open(vol.path('volume.json')) as f:
        data = json.load(f)
    data['schema_version'] = 99
    with open(vol.path('volume.json'), 'w') as f:
        json.dump(data, f)
    with pytest.raises(Exception, match='newer than this nsbox'):
        store.get('data')


# -- the first-use copy --------------------------------------------------------------------------
def _tree(src):
    os.makedirs(os.path.join(src, 'sub', 'deep'))
    with open(os.path.join(src, 'file'), 'w') as f:
        f.write('content\n')
    with open(os.path.join(src, 'sub', 'deep', 'x'), 'w') as f:
        f.write('x\n')
    os.chmod(os.path.join(src, 'file'), 0o4750)
    os.link(os.path.join(src, 'file'), os.path.join(src, 'sub', 'hard'))
    os.symlink('/etc/passwd', os.path.join(src, 'abs-link'))      # copied as a link, never followed
    os.symlink('../../..', os.path.join(src, 'sub', 'up'))
    os.mkfifo(os.path.join(src, 'fifo'), 0o640)
    os.chmod(os.path.join(src, 'sub'), 0o2750)
    os.chmod(src, 0o1777)
    os.utime(os.path.join(src, 'sub', 'deep', 'x'), ns=(10**18, 10**18))
    if ROOT:
        os.chown(os.path.join(src, 'sub'), 1000, 2000)
        os.lchown(os.path.join(src, 'abs-link'), 33, 33)
        os.chown(src, 7, 8)
    try:
        os.setxattr(os.path.join(src, 'file'), 'user.nsbox', b'kept')
        return True
    except OSError:
        return False


def test_populate_copies_everything_once(store, tmp_path):
    src = str(tmp_path / 'image-etc')
    has_xattrs = _tree(src)
    with store.lock():
        vol = store.create('data')
        assert copyup.populate(vol, src) is True
    d = vol.data
    assert open(os.path.join(d, 'file')).read() == 'content\n' and stat.S_IMODE(os.stat(os.path.join(d, 'file')).st_mode) == 0o4750
    assert os.path.samefile(os.path.join(d, 'file'), os.path.join(d, 'sub', 'hard'))
    assert os.readlink(os.path.join(d, 'abs-link')) == '/etc/passwd' and os.readlink(os.path.join(d, 'sub', 'up')) == '../../..'
    assert stat.S_ISFIFO(os.lstat(os.path.join(d, 'fifo')).st_mode) and stat.S_IMODE(os.lstat(os.path.join(d, 'fifo')).st_mode) == 0o640
    assert stat.S_IMODE(os.stat(os.path.join(d, 'sub')).st_mode) == 0o2750
    assert os.stat(os.path.join(d, 'sub', 'deep', 'x')).st_mtime_ns == 10**18
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o1777            # the volume's root takes the source dir's mode (and owner)
    if ROOT:
        assert (os.stat(os.path.join(d, 'sub')).st_uid, os.stat(os.path.join(d, 'sub')).st_gid) == (1000, 2000)
        assert os.lstat(os.path.join(d, 'abs-link')).st_uid == 33 and (os.stat(d).st_uid, os.stat(d).st_gid) == (7, 8)
    if has_xattrs:
        assert os.getxattr(os.path.join(d, 'file'), 'user.nsbox') == b'kept'
    assert store.get('data').populated and sorted(os.listdir(vol.dir)) == ['_data', 'volume.json']
    # once: emptied later, it is not filled again
    os.unlink(os.path.join(d, 'file'))
    with store.lock():
        assert copyup.populate(store.get('data'), src) is False
    assert not os.path.exists(os.path.join(d, 'file'))


def test_no_copy_into_a_volume_with_data_or_from_nothing(store, tmp_path):
    src = str(tmp_path / 'src')
    _tree(src)
    with store.lock():
        vol = store.create('data')
        with open(os.path.join(vol.data, 'mine'), 'w') as f:
            f.write('x')
        assert copyup.populate(vol, src) is False and os.listdir(vol.data) == ['mine']
        other = store.create('other')
        assert copyup.populate(other, str(tmp_path / 'missing')) is False
        assert copyup.populate(other, os.path.join(src, 'file')) is False      # not a directory
        assert copyup.populate(other, os.path.join(src, 'sub', 'up')) is False  # a symlink is never followed
        assert os.listdir(other.data) == [] and not store.get('other').populated


def test_a_copy_killed_before_it_was_complete_is_dropped_and_redone(store, tmp_path):
    src = str(tmp_path / 'src')
    _tree(src)
    with store.lock():
        vol = store.create('data')
    os.makedirs(vol.path('_copyup.tmp', 'half'))                 # killed during step 1
    with store.lock():
        assert store.cleanup() == ['data']
        assert not os.path.exists(vol.path('_copyup.tmp')) and os.listdir(vol.data) == []
        assert copyup.populate(store.get('data'), src) is True
    assert os.path.isfile(os.path.join(vol.data, 'file'))


def test_a_copy_killed_while_moving_in_is_finished(store, tmp_path):
    """Killed in step 3: part of the entries moved, the rest in _copyup; the next run moves the rest and marks it."""
    with store.lock():
        vol = store.create('data')
    os.makedirs(vol.path('_copyup', 'b'))
    os.chmod(vol.path('_copyup'), 0o750)
    with open(vol.path('_copyup', 'c'), 'w') as f:
        f.write('staged c')
    with open(os.path.join(vol.data, 'a'), 'w') as f:
        f.write('moved before the kill')
    with open(os.path.join(vol.data, 'c'), 'w') as f:
        f.write('written by a container meanwhile')
    with store.lock():
        assert store.cleanup() == ['data']
    vol = store.get('data')
    assert vol.populated and sorted(os.listdir(vol.data)) == ['a', 'b', 'c'] and not os.path.exists(vol.path('_copyup'))
    assert open(os.path.join(vol.data, 'c')).read() == 'written by a container meanwhile'
    assert stat.S_IMODE(os.stat(vol.data).st_mode) == 0o750


# -- the module logic ----------------------------------------------------------------------------
def _container(cfg, name, mounts):
    cs = ContainerStore(cfg)
    config = options.resolve(name, options.check({'command': 'sleep 1', 'mounts': mounts}), IMAGE, {})
    with cs.lock():
        return cs.create(config)


def test_ensure_create_relabel_recreate_remove(cfg):
    res = _ensure(cfg, 'data', labels={'a': '1'}, check_mode=True)
    assert res['changed'] and res['actions'] == ['created volume data'] and not os.path.exists(os.path.join(cfg.data_root, 'volumes'))
    res = _ensure(cfg, 'data', labels={'a': '1'})
    assert res['changed'] and res['volume']['Labels'] == {'a': '1'} and res['diff']['before'] == {'exists': False}
    assert not _ensure(cfg, 'data', labels={'a': '1'})['changed']
    assert not _ensure(cfg, 'data')['changed']                       # labels not given: left as they are
    data = _info(cfg, 'data')['volume']['Mountpoint']
    with open(os.path.join(data, 'keep'), 'w') as f:
        f.write('x')
    res = _ensure(cfg, 'data', labels={'a': '2'}, check_mode=True)
    assert res['actions'] == ['updated labels of volume data'] and res['volume']['Labels'] == {'a': '2'}
    assert _info(cfg, 'data')['volume']['Labels'] == {'a': '1'}
    res = _ensure(cfg, 'data', labels={'a': '2'})
    assert res['actions'] == ['updated labels of volume data'] and os.path.exists(os.path.join(data, 'keep'))  # in place: data kept
    res = _ensure(cfg, 'data', labels={'a': '3'}, recreate='options-changed')
    assert res['actions'] == ['recreated volume data (labels; its data is gone)'] and os.listdir(data) == []
    assert _ensure(cfg, 'data', recreate='always')['actions'] == ['recreated volume data (recreate: always; its data is gone)']
    assert _ensure(cfg, 'data', state='absent', check_mode=True)['changed'] and _info(cfg, 'data')['exists']
    assert _ensure(cfg, 'data', state='absent')['actions'] == ['removed volume data']
    assert not _info(cfg, 'data')['exists'] and not _ensure(cfg, 'data', state='absent')['changed']


@pytest.mark.parametrize('kwargs, message', [
    ({'name': 'x'}, '2-255 characters'),
    ({'name': 'ok', 'driver': 'nfs'}, 'local driver only'),
    ({'name': 'ok', 'driver_options': {'type': 'tmpfs'}}, 'not supported in this version'),
    ({'name': 'ok', 'recreate': 'sometimes'}, 'expected one of never'),
    ({'name': 'ok', 'state': 'gone'}, 'expected one of present'),
])
def test_bad_input_changes_nothing(cfg, kwargs, message):
    with pytest.raises(ConfigError, match=message):
        _ensure(cfg, **kwargs)
    assert not os.path.exists(os.path.join(cfg.data_root, 'volumes'))


def test_a_volume_in_use_is_neither_removed_nor_recreated(cfg):
    _ensure(cfg, 'data')
    _container(cfg, 'web', [{'type': 'volume', 'source': 'data', 'target': '/d'}])
    _container(cfg, 'db', [{'type': 'volume', 'source': 'data', 'target': '/e', 'read_only': True}])
    _container(cfg, 'other', [{'type': 'tmpfs', 'target': '/t'}])
    for kwargs in ({'state': 'absent'}, {'recreate': 'always'}, {'state': 'absent', 'check_mode': True}):
        with pytest.raises(vstore.VolumeError, match='in use by containers db, web'):
            _ensure(cfg, 'data', **kwargs)
    assert _info(cfg, 'data')['containers'] == ['db', 'web']
    assert [v['UsedBy'] for v in _info(cfg)['volumes']] == [['db', 'web']]


def test_containers_create_missing_volumes_and_take_them_back(cfg):
    _ensure(cfg, 'old')
    config = {'mounts': [{'type': 'volume', 'source': 'old', 'target': '/a'}, {'type': 'volume', 'source': 'new', 'target': '/b'}]}
    assert volumes.create_missing(cfg, config, check_mode=True) == (['created volume new'], [])
    assert not _info(cfg, 'new')['exists']
    actions, made = volumes.create_missing(cfg, config)
    assert actions == ['created volume new'] and made == ['new'] and _info(cfg, 'new')['exists']
    volumes.remove_created(cfg, made)
    assert not _info(cfg, 'new')['exists'] and _info(cfg, 'old')['exists']


def test_prepare_populates_from_the_rootfs(cfg, tmp_path):
    rootfs = tmp_path / 'rootfs'
    (rootfs / 'srv' / 'www').mkdir(parents=True)
    (rootfs / 'srv' / 'www' / 'index.html').write_text('hi\n')
    (rootfs / 'link').symlink_to('/srv')
    config = {'mounts': [{'type': 'volume', 'source': 'web', 'target': '/link/www'},
                         {'type': 'volume', 'source': 'raw', 'target': '/srv/www', 'no_copy': True}]}
    paths = volumes.prepare(cfg, config, str(rootfs), assemble.mounts.secure_join)
    assert paths == {'web': vstore.data_path(cfg.data_root, 'web'), 'raw': vstore.data_path(cfg.data_root, 'raw')}
    assert os.listdir(paths['web']) == ['index.html'] and os.listdir(paths['raw']) == []
    assert _info(cfg, 'web')['exists'] and vstore.VolumeStore(cfg.data_root).get('web').populated


# -- propagation -------------------------------------------------------------------------------
MOUNTINFO = '''\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 8:1 /srv/shared /srv/shared rw,relatime shared:7 - ext4 /dev/sda1 rw
31 22 8:1 /srv/slave /srv/slave rw,relatime master:7 - ext4 /dev/sda1 rw
32 22 0:40 / /srv/private rw,relatime - tmpfs tmpfs rw
'''


@pytest.mark.parametrize('source, propagation, ok', [
    ('/srv/shared/sub', 'rshared', True), ('/srv/shared', 'shared', True), ('/srv/shared', 'rslave', True),
    ('/srv/slave/x', 'rslave', True), ('/srv/slave/x', 'rshared', False),
    ('/srv/private/x', 'rslave', False), ('/srv/private', 'shared', False), ('/srv/private', 'rprivate', True),
])
def test_shared_and_slave_binds_need_a_source_that_can_propagate(tmp_path, source, propagation, ok):
    path = tmp_path / 'mountinfo'
    path.write_text(MOUNTINFO)
    mount = {'type': 'bind', 'source': source, 'target': '/x', 'read_only': False}
    if propagation != 'rprivate':
        mount['propagation'] = propagation
    if ok:
        assemble.check_propagation({'mounts': [mount]}, str(path))
    else:
        with pytest.raises(ContainerError, match='is not shared.*mount --make-shared'):
            assemble.check_propagation({'mounts': [mount]}, str(path))


# -- a kill at every step ------------------------------------------------------------------------
class Killed(BaseException):
    """Stands for SIGKILL: no except clause of the code under test catches it."""


class KillingOs:
    """The os module, but the ``at``-th call of a function that changes the disk raises Killed (0: count only)."""

    OPS = {'mkdir', 'open', 'sendfile', 'rename', 'link', 'symlink', 'mknod', 'fchown', 'fchmod', 'utime', 'chown', 'chmod',
           'fsync', 'unlink', 'setxattr', 'write'}

    def __init__(self, at=0):
        self.at, self.calls = at, 0

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in self.OPS:
            return real

        def call(*args, **kwargs):
            self.calls += 1
            if self.calls == self.at:
                raise Killed(name)
            return real(*args, **kwargs)
        return call


def _snapshot(top):
    out = {}
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            data = open(path, 'rb').read() if stat.S_ISREG(st.st_mode) else os.readlink(path) if stat.S_ISLNK(st.st_mode) else None
            out[os.path.relpath(path, top)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), data)
    return out


def _with_kills(monkeypatch, at, func):
    killer = KillingOs(at)
    with monkeypatch.context() as m:
        for module in (copyup, vstore, fsutil):
            m.setattr(module, 'os', killer)
        try:
            func()
        except Killed:
            return killer.calls, True
    return killer.calls, False


def test_a_copy_killed_at_any_step_ends_complete_after_the_next_run(tmp_path, monkeypatch):
    src = str(tmp_path / 'src')
    _tree(src)
    at = 1
    while True:
        store = vstore.VolumeStore(str(tmp_path / ('d%d' % at)))
        with store.lock():
            vol = store.create('data')
        _calls, killed = _with_kills(monkeypatch, at, lambda s=store: copyup.populate(s.get('data'), src))
        if not killed:
            break
        assert [v.name for v in store.all()] == ['data']          # whatever the step, the volume reads fine
        with store.lock():
            store.cleanup()
            copyup.populate(store.get('data'), src)
        got = store.get('data')
        assert got.populated and sorted(os.listdir(got.dir)) == ['_data', 'volume.json'], at
        assert _snapshot(got.data) == _snapshot(_reference(tmp_path, src)), 'killed at step %d' % at
        at += 1
    assert at > 20 and _snapshot(vol.data) == _snapshot(_reference(tmp_path, src))


def _reference(tmp_path, src):
    """The copy made without a kill (once per test)."""
    ref = tmp_path / 'reference'
    if not ref.exists():
        store = vstore.VolumeStore(str(ref))
        with store.lock():
            copyup.populate(store.create('data'), src)
    return str(ref / 'volumes' / 'data' / '_data')


@pytest.mark.parametrize('operation', ['create', 'remove'])
def test_create_and_remove_killed_at_any_step_leave_all_or_nothing(tmp_path, monkeypatch, operation):
    at = 1
    while True:
        store = vstore.VolumeStore(str(tmp_path / ('d%d' % at)))
        store.ensure()
        if operation == 'remove':
            with store.lock():
                store.create('data')
            _calls, killed = _with_kills(monkeypatch, at, lambda s=store: s.remove(s.get('data')))
        else:
            _calls, killed = _with_kills(monkeypatch, at, lambda s=store: s.create('data', labels={'a': '1'}))
        if not killed:
            break
        vol = store.get('data')
        assert vol is None or (os.path.isdir(vol.data) and (operation == 'remove' or vol.labels == {'a': '1'})), at
        with store.lock():
            store.cleanup()
        assert sorted(os.listdir(store.root)) == (['.lock'] if vol is None else ['.lock', 'data']), at
        at += 1
    assert at > 3
