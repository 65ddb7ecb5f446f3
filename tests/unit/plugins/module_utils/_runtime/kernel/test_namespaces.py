# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Namespaces: option parsing, id maps, /proc readers and the state read back, on captured trees (no root needed)."""
from __future__ import annotations

import argparse
import os
import re
import signal
import socket
from unittest import mock

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cli import main
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import idmap, namespaces as ns
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.named import namespace, store as named_store
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host.config import HostConfig
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, NsboxError, SyscallError

BOOT = 'f75f583a-d8c2-4186-a35e-32279660b781'
STAT = '4242 (ns hold) (x)) S 1 4241 4241 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 %d 1000 100 0\n'


# -- names and types ----------------------------------------------------------------------------
@pytest.mark.parametrize('name', ['web', 'a', 'x-1_2.3', 'A' * 63])
def test_good_names(name):
    assert ns.validate_name(name) == name


@pytest.mark.parametrize('name', ['', 'a/b', '..', '.hidden', '-x', 'a b', 'A' * 64, None, 'a\0b'])
def test_bad_names(name):
    with pytest.raises(ConfigError, match='failed to validate namespace name'):
        ns.validate_name(name)


def test_types_are_ordered_and_deduplicated():
    assert ns.validate_types(['user', 'net', 'mnt', 'net']) == ('mnt', 'net', 'user')
    assert ns.validate_types('pid, time') == ('pid', 'time')
    with pytest.raises(ConfigError, match="unknown 'netns'"):
        ns.validate_types(['net', 'netns'])
    with pytest.raises(ConfigError, match='at least one'):
        ns.validate_types([])


def test_every_type_has_a_clone_flag_and_a_join_place():
    assert sorted(ns.CLONE) == sorted(ns.TYPES) == sorted(ns.JOIN_ORDER)
    assert len(set(ns.CLONE.values())) == 8
    assert ns.JOIN_ORDER[-1] == 'user'  # root joins the others first, then loses its outer capabilities


# -- id maps ------------------------------------------------------------------------------------
def test_map_forms():
    want = (idmap.IdMapEntry(0, 100000, 65536), idmap.IdMapEntry(65536, 1000, 1))
    assert idmap.parse_id_map([{'container_id': 0, 'host_id': 100000, 'size': 65536},
                               {'container_id': 65536, 'host_id': 1000, 'size': 1}]) == want
    assert idmap.parse_id_map(['0 100000 65536', '65536 1000 1']) == want
    assert idmap.parse_id_map('0 100000 65536\n65536 1000 1\n') == want
    assert idmap.parse_id_map([(0, 100000, 65536), ['65536', '1000', '1']]) == want
    assert idmap.parse_id_map(None) is None and idmap.parse_id_map([]) == ()
    assert idmap.format_id_map(want) == '0 100000 65536\n65536 1000 1\n'
    assert idmap.parse_id_map_text('         0     100000      65536\n     65536       1000          1\n') == want
    assert want[0].to_dict() == {'container_id': 0, 'host_id': 100000, 'size': 65536}


@pytest.mark.parametrize('value, message', [
    ([{'container_id': 0, 'host_id': 0, 'size': 10}, {'container_id': 5, 'host_id': 100, 'size': 10}],
     re.escape('entries 1 and 2 overlap in container ids (0-9 and 5-14)')),
    ([{'container_id': 0, 'host_id': 100, 'size': 10}, {'container_id': 50, 'host_id': 105, 'size': 1}],
     re.escape('entries 1 and 2 overlap in host ids (100-109 and 105-105)')),
    ([{'container_id': 0, 'host_id': 0, 'size': 0}], 'entry 1: size must be at least 1'),
    ([{'container_id': -1, 'host_id': 0, 'size': 1}], 'entry 1: container_id must not be negative'),
    ([{'container_id': True, 'host_id': 0, 'size': 1}], 'container_id must be a non-negative integer'),
    ([{'container_id': 0, 'host_id': 4294967295, 'size': 1}], 'host_id 4294967295 \\+ size 1 passes the largest id'),
    ([{'container_id': 0, 'host_id': 0}], 'entry 1: missing size'),
    ([{'container_id': 0, 'host_id': 0, 'size': 1, 'extra': 1}], 'unknown keys extra'),
    (['0 1'], 'expected "container_id host_id size"'),
    ([42], 'expected a mapping'),
    ({'container_id': 0}, 'expected a list'),
    (['%d %d 1' % (i * 2, i * 2) for i in range(341)], '341 entries: the kernel takes at most 340'),
    (['%d %d 1' % (i * 4000000000 // 340, i * 4000000000 // 340) for i in range(340)], 'less than 4096 in its one write'),
])
def test_bad_maps(value, message):
    with pytest.raises(ConfigError, match=message):
        idmap.parse_id_map(value, 'uid_map')


def test_adjacent_ranges_do_not_overlap():
    assert len(idmap.parse_id_map(['0 1000 10', '10 1010 10'])) == 2
    assert idmap.parse_id_map(['0 0 4294967295']) == (idmap.IdMapEntry(0, 0, 4294967295),)


_ids = st.integers(min_value=-3, max_value=2 ** 32 + 3)
_entry = st.one_of(
    st.fixed_dictionaries({'container_id': _ids, 'host_id': _ids, 'size': _ids}),
    st.dictionaries(st.sampled_from(['container_id', 'host_id', 'size', 'other']), st.one_of(_ids, st.text(max_size=3), st.none(), st.booleans())),
    st.tuples(_ids, _ids, _ids).map(lambda t: '%d %d %d' % t),
    st.text(max_size=12),
    st.lists(_ids, max_size=4),
    st.none(),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.lists(_entry, max_size=6), st.text(max_size=40), st.integers(), st.none()))
def test_map_parser_property(value):
    """Any input either parses to a map the kernel would take, or fails with a ConfigError - nothing else."""
    try:
        entries = idmap.parse_id_map(value, 'uid_map')
    except ConfigError as exc:
        assert exc.message.startswith('failed to validate uid_map: ')
        return
    if value is None:
        assert entries is None
        return
    for key in (0, 1):
        spans = sorted((e[key], e[key] + e.size) for e in entries)
        assert all(a_end <= b_start for (_a, a_end), (b_start, _b) in zip(spans, spans[1:]))
        assert all(0 <= start and end <= idmap.ID_LIMIT for start, end in spans)
    assert all(e.size >= 1 for e in entries)
    assert idmap.parse_id_map_text(idmap.format_id_map(entries)) == entries
    assert idmap.parse_id_map(idmap.map_dicts(entries)) == entries


@settings(max_examples=200, deadline=None)
@given(types=st.lists(st.sampled_from(ns.TYPES + ('bogus',)), max_size=9), uid=st.one_of(st.none(), st.just([{'container_id': 0, 'host_id': 1, 'size': 1}])),
       loopback=st.booleans())
def test_option_checks_property(types, uid, loopback):
    """check_options accepts exactly the consistent combinations."""
    consistent = types and 'bogus' not in types and (uid is None or 'user' in types) and (not loopback or 'net' in types)
    try:
        with mock.patch.object(namespace, 'have_pyroute2', lambda: True):
            want, parsed, _gid = namespace.check_options(types, uid, None, loopback)
    except NsboxError:
        assert not consistent
        return
    assert consistent and set(want) == set(types) and (parsed is None) == (uid is None)


def test_option_checks_messages(monkeypatch):
    with pytest.raises(ConfigError, match='uid_map and gid_map need the user type'):
        namespace.check_options(['net'], gid_map=['0 0 1'])
    with pytest.raises(ConfigError, match='loopback_up needs the net type'):
        namespace.check_options(['uts'], loopback_up=True)
    monkeypatch.setattr(namespace, 'have_pyroute2', lambda: False)
    with pytest.raises(NsboxError, match='pyroute2 is missing'):
        namespace.check_options(['net'], loopback_up=True)


# -- /proc readers ------------------------------------------------------------------------------
def test_parse_ns_link():
    assert ns.parse_ns_link('net:[4026531840]') == ('net', 4026531840)
    assert ns.parse_ns_link('pid_for_children:[4026531836]\n') == ('pid_for_children', 4026531836)
    with pytest.raises(ns.NamespaceError, match='expected "<type>:\\[<inode>\\]"'):
        ns.parse_ns_link('/proc/1/ns/net')


def test_parse_stat_counts_from_the_last_parenthesis():
    assert ns.parse_stat(STAT % 2249221) == ('S', 2249221)
    with pytest.raises(ns.NamespaceError, match='too few fields'):
        ns.parse_stat('1 (x) S 0')


def fake_proc(root, pid, links, start=777, state='S', maps=None):
    base = root / str(pid)
    (base / 'ns').mkdir(parents=True)
    for ns_type, inode in links.items():
        os.symlink('%s:[%d]' % (ns_type, inode), str(base / 'ns' / ns_type))
    (base / 'stat').write_text((STAT % start).replace(') S ', ') %s ' % state))
    for kind, text in (maps or {}).items():
        (base / kind).write_text(text)


def test_proc_namespaces_and_stamps(tmp_path):
    fake_proc(tmp_path, 4242, {'net': 11, 'pid': 12, 'user': 13})
    assert ns.proc_namespaces(4242, str(tmp_path)) == {'net': 11, 'pid': 12, 'user': 13}
    assert ns.process_stamp(4242, str(tmp_path)) == ('S', 777)
    assert ns.process_stamp(4343, str(tmp_path)) is None
    assert ns.proc_namespaces('self') == {t: os.stat('/proc/self/ns/%s' % t).st_ino for t in ns.TYPES if os.path.exists('/proc/self/ns/%s' % t)}


def test_holder_identity(tmp_path):
    boot = tmp_path / 'boot_id'
    boot.write_text(BOOT + '\n')
    fake_proc(tmp_path, 4242, {}, start=777)
    fake_proc(tmp_path, 4343, {}, start=777, state='Z')
    kw = {'proc': str(tmp_path), 'boot_id_path': str(boot)}
    assert ns.Holder(4242, 777, BOOT).alive(**kw)
    assert not ns.Holder(4242, 778, BOOT).alive(**kw)        # the pid was reused by another process
    assert not ns.Holder(4242, 777, 'another-boot').alive(**kw)  # a record from before a reboot
    assert not ns.Holder(4343, 777, BOOT).alive(**kw)        # a zombie holds nothing
    assert not ns.Holder(4444, 777, BOOT).alive(**kw)        # gone
    rec = ns.Holder(4242, 777, BOOT, 'web').to_dict()
    assert rec['schema_version'] == 1 and ns.Holder.from_dict(rec).pid == 4242
    assert ns.Holder.from_dict({'pid': 'x'}) is None


# -- the state read back ------------------------------------------------------------------------
class Host:
    """A state dir with persisted-looking files, a mountinfo naming them, a fake /proc and boot id."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.state_dir = tmp_path / 'state'
        self.proc = tmp_path / 'proc'
        self.proc.mkdir(parents=True)
        self.boot = tmp_path / 'boot_id'
        self.boot.write_text(BOOT)
        self.mountinfo = tmp_path / 'mountinfo'
        self.lines = ['24 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw']
        self.mountinfo.write_text(self.lines[0] + '\n')
        self.store = named_store.NamespaceStore(str(self.state_dir), proc=str(self.proc), mountinfo_path=str(self.mountinfo),
                                                boot_id_path=str(self.boot), library='/nonexistent/nsbox.pyz')

    def persist(self, name, ns_type, kind=None, mounted=True):
        path = self.state_dir / 'ns' / name / ns_type
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
        if mounted:
            self.lines.append('%d 30 0:4 %s:[%d] %s rw - nsfs nsfs rw' % (100 + len(self.lines), kind or ns_type, path.stat().st_ino, path))
            self.mountinfo.write_text('\n'.join(self.lines) + '\n')
        return path.stat().st_ino

    def holder(self, name, pid, links, start=777, state='S', maps=None):
        fake_proc(self.proc, pid, links, start, state, maps)
        (self.state_dir / 'ns' / name / ns.HOLDER_FILE).write_text(
            '{"schema_version": 1, "pid": %d, "start_time": 777, "boot_id": "%s", "name": "%s"}' % (pid, BOOT, name))


def test_inspect_nothing(tmp_path):
    host = Host(tmp_path)
    state = host.store.inspect('web')
    assert not state.exists and state.types == {} and state.stale == {}
    assert state.describe() == {'name': 'web', 'path': str(host.state_dir / 'ns' / 'web'), 'exists': False, 'types': {}, 'holder': None}


def test_inspect_live_and_stale(tmp_path):
    host = Host(tmp_path)
    net = host.persist('web', 'net')
    host.persist('web', 'uts', mounted=False)        # a file left without its mount
    host.persist('web', 'ipc', kind='net')           # something else mounted there
    pid = host.persist('web', 'pid')
    host.holder('web', 4242, {'pid': pid})
    state = host.store.inspect('web')
    assert state.types == {'net': net, 'pid': pid}
    assert state.stale == {'uts': 'a file without a namespace mounted on it', 'ipc': 'holds a net namespace'}
    assert state.describe()['holder'] == {'pid': 4242, 'start_time': 777}
    assert state.describe()['types']['net'] == {'path': str(host.state_dir / 'ns' / 'web' / 'net'), 'inode': net}


def test_a_pid_namespace_without_its_holder_is_stale(tmp_path):
    host = Host(tmp_path)
    pid = host.persist('web', 'pid')
    host.holder('web', 4242, {'pid': pid}, start=999)  # pid 4242 is now another process
    state = host.store.inspect('web')
    assert 'pid' not in state.types and 'holder process is gone' in state.stale['pid']
    host2 = Host(tmp_path / 'b')
    host2.persist('db', 'net')
    (host2.state_dir / 'ns' / 'db' / ns.HOLDER_FILE).write_text('{"pid": 5, "start_time": 1, "boot_id": "x"}')
    assert host2.store.inspect('db').stale == {'pid': 'a holder record without its pid namespace file'}


def test_maps_are_read_from_a_holder_inside_the_user_namespace(tmp_path):
    host = Host(tmp_path)
    user, pid = host.persist('rl', 'user'), host.persist('rl', 'pid')
    host.holder('rl', 4242, {'user': user, 'pid': pid}, maps={'uid_map': '0 100000 65536\n', 'gid_map': '0 100000 65536\n'})
    state = host.store.inspect('rl', with_maps=True)
    assert state.id_maps == {'uid_map': [{'container_id': 0, 'host_id': 100000, 'size': 65536}],
                             'gid_map': [{'container_id': 0, 'host_id': 100000, 'size': 65536}]}


# -- converging, in check mode (reads only) -----------------------------------------------------
def ensure(host, **kw):
    return namespace.ensure(HostConfig({'state_dir': str(host.state_dir)}), store=host.store, check_mode=True, **kw)


def test_check_mode_predicts_and_writes_nothing(tmp_path):
    host = Host(tmp_path)
    out = ensure(host, name='web', types=['net', 'pid'])
    assert out['changed'] and out['actions'] == ['created namespaces net, pid of web with a holder process (pid 1 of its pid namespace)']
    assert out['diff'] == {'before': {'types': {}}, 'after': {'types': {'net': '(new)', 'pid': '(new)'}}}
    assert out['namespace']['types']['net']['inode'] == '(new)'
    assert not host.state_dir.exists()


def test_check_mode_keeps_live_replaces_stale_removes_extra(tmp_path):
    host = Host(tmp_path)
    net, uts = host.persist('web', 'net'), host.persist('web', 'uts')
    host.persist('web', 'ipc', mounted=False)
    out = ensure(host, name='web', types=['net', 'ipc'])
    assert out['actions'] == ['removed the stale ipc namespace file of web (a file without a namespace mounted on it)',
                              'created namespaces ipc of web', 'removed the uts namespace of web']
    assert out['diff']['before'] == {'types': {'net': net, 'uts': uts}}
    assert out['diff']['after'] == {'types': {'ipc': '(new)', 'net': net}}
    os.unlink(str(host.state_dir / 'ns' / 'web' / 'ipc'))
    same = ensure(host, name='web', types=['net', 'uts'])
    assert not same['changed'] and same['actions'] == [] and same['diff']['before'] == same['diff']['after']


def test_a_user_namespace_cannot_join_a_set_later(tmp_path):
    host = Host(tmp_path)
    host.persist('web', 'net')
    with pytest.raises(ns.NamespaceError, match='its namespaces net exist already and would not belong to it'):
        ensure(host, name='web', types=['net', 'user'])


def test_a_map_cannot_change(tmp_path):
    host = Host(tmp_path)
    user, pid = host.persist('rl', 'user'), host.persist('rl', 'pid')
    host.holder('rl', 4242, {'user': user, 'pid': pid}, maps={'uid_map': '0 100000 65536\n', 'gid_map': ''})
    assert not ensure(host, name='rl', types=['user', 'pid'], uid_map=['0 100000 65536'])['changed']
    with pytest.raises(ns.NamespaceError, match='failed to change the uid_map of the user namespace of rl: it is .*cannot change once written'):
        ensure(host, name='rl', types=['user', 'pid'], uid_map=['0 200000 65536'])
    with pytest.raises(ns.NamespaceError, match='gid_map .* it is empty'):
        ensure(host, name='rl', types=['user', 'pid'], gid_map=['0 100000 1'])


def test_absent_in_check_mode(tmp_path):
    host = Host(tmp_path)
    pid = host.persist('web', 'pid')
    host.holder('web', 4242, {'pid': pid})
    out = ensure(host, name='web', state='absent')
    assert out['actions'] == ['removed namespaces pid of web', 'stopped holder process 4242']
    assert (host.state_dir / 'ns' / 'web' / 'pid').exists()
    assert ensure(host, name='gone', state='absent')['changed'] is False


def test_holder_needs_the_installed_library(tmp_path):
    host = Host(tmp_path)
    with pytest.raises(ns.NamespaceError, match='the nsbox library is not installed at /nonexistent/nsbox.pyz'):
        host.store.holder_argv('web')
    lib = tmp_path / '0.1.0-0123456789ab'
    lib.mkdir()
    (lib / '__main__.py').touch()
    argv = named_store.NamespaceStore(str(host.state_dir), library=str(lib)).holder_argv('web')
    assert argv[1:] == ['-I', '-B', str(lib), 'ns-hold', 'web'] and os.path.isabs(argv[0])


# -- join and the holder's protocol, in forked children -----------------------------------------
def _boom(kind):
    if kind == 'nsbox':
        raise ns.NamespaceError('do', 'a thing', 'it broke', path='/x', errno=2)
    raise ValueError('plain')


def test_run_in_returns_results_and_typed_errors():
    assert ns.run_in({}, os.getpid) != os.getpid()
    assert ns.run_in({}, sorted, [3, 1, 2]) == [1, 2, 3]
    with pytest.raises(ns.NamespaceError, match='failed to do a thing: it broke') as info:
        ns.run_in({}, _boom, 'nsbox')
    assert info.value.path == '/x' and info.value.errno == 2
    with pytest.raises(ns.NamespaceError, match='failed to run _boom in namespaces : ValueError: plain'):
        ns.run_in({}, _boom, 'other')
    with pytest.raises(ns.NamespaceError, match='failed to open the net namespace to join'):
        ns.run_in({'net': '/nonexistent/net'}, os.getpid)
    with pytest.raises(ConfigError, match='unknown types bogus'):
        ns.run_in({'bogus': '/x'}, os.getpid)


def test_run_in_joins(tmp_path):
    """Joining one's own uts namespace: allowed to root, a typed EPERM for others."""
    try:
        inode = ns.run_in({'uts': '/proc/self/ns/uts'}, ns.proc_namespaces)['uts']
    except SyscallError as exc:
        assert os.geteuid() != 0 and exc.message.startswith('failed to join the uts namespace')
        return
    assert inode == os.stat('/proc/self/ns/uts').st_ino


def _run_holder(commit):
    ours, theirs = socket.socketpair()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the holder under test
        ours.close()
        os._exit(main.cmd_ns_hold(argparse.Namespace(sync_fd=theirs.detach())) or 0)  # pylint: disable=protected-access
    theirs.close()
    assert ours.recv(1) == named_store.HOLDER_READY
    return ours, pid


def test_holder_protocol():
    sock, pid = _run_holder(True)
    sock.sendall(named_store.HOLDER_COMMIT)
    sock.close()
    assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # committed: it holds on
    os.kill(pid, signal.SIGTERM)
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    sock, pid = _run_holder(False)
    sock.close()  # the creator went away without committing: the holder ends itself
    assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == main.EXIT_FAILED


def test_cli_knows_ns_hold_but_does_not_list_it():
    args = main.parser().parse_args(['ns-hold', 'web', '--sync-fd', '7'])
    assert args.func is main.cmd_ns_hold and args.sync_fd == 7 and args.name == 'web'
    assert 'ns-hold' not in main.parser().format_help()
