# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""process.py's pure parts and the launch spec's check (launch/spec.py), PATH lookup, exit codes, the error wire (no root needed)."""
from __future__ import annotations

import dataclasses
import errno
import os
import signal

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import caps, mounts, process
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, SyscallError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch.spec import Exec, Launch, User


def spec(tmp_path, **extra):
    out = {'rootfs': str(tmp_path), 'args': ['sh'], 'namespaces': {'pid': None, 'uts': None}}
    out.update(extra)
    return out


def test_defaults_are_filled(tmp_path):
    got = Launch.of(spec(tmp_path))
    assert got.namespaces == {'pid': None, 'uts': None, 'mnt': None}  # mnt is always new
    assert got.user == User(0, 0, ())
    assert got.cwd == '/' and got.env == () and got.no_new_privs is False
    assert set(got.capabilities) == set(caps.DEFAULT)
    assert got.masked_paths == tuple(mounts.MASKED_PATHS) and got.readonly_paths == tuple(mounts.READONLY_PATHS)
    assert got.hostname is None and got.init is None and got.mounts == ()
    assert Launch.of(got) is got and got.replace(hostname='h').hostname == 'h'
    with pytest.raises(dataclasses.FrozenInstanceError):
        got.args = ('x',)


def test_enter_spec_needs_no_rootfs():
    got = Exec.of({'args': ['ls'], 'user': {'uid': '5', 'gid': 6}, 'capabilities': []})
    assert got.user == User(5, 6, ()) and got.capabilities == ()
    assert not hasattr(got, 'rootfs')
    with pytest.raises(ConfigError, match='unknown fields rootfs'):
        Exec.of({'args': ['ls'], 'rootfs': '/'})


@pytest.mark.parametrize('change, match', [
    ({'args': []}, 'args must be a non-empty list'),
    ({'args': 'sh'}, 'args must be a non-empty list'),
    ({'args': ['']}, 'args must be a non-empty list'),
    ({'env': ['NOEQUALS']}, 'env must be a list of "KEY=value"'),
    ({'env': ['=x']}, 'env must be a list of "KEY=value"'),
    ({'cwd': 'relative'}, 'an absolute path is needed'),
    ({'user': {'uid': 'root'}}, 'user must be'),
    ({'user': {'uid': -1}}, 'ids are not negative'),
    ({'rootfs': 'rel'}, 'an absolute path is needed'),
    ({'rootfs': '/nonexistent/rootfs'}, 'it is not a directory'),
    ({'namespaces': {'user': None}}, 'a dict of'),
    ({'namespaces': {'mnt': '/proc/1/ns/mnt'}}, 'always gets a new mount namespace'),
    ({'namespaces': {'net': 'rel/path'}}, 'an absolute path is needed'),
    ({'hostname': 'h', 'namespaces': {}}, 'needs a new uts namespace'),
    ({'hostname': 'h', 'namespaces': {'uts': '/proc/1/ns/uts'}}, 'needs a new uts namespace'),
    ({'hostname': 'x' * 65}, '1 to 64 characters'),
    ({'init': '/nonexistent/init'}, 'no such file'),
    ({'capabilities': ['CAP_FLY']}, 'unknown capability'),
    ({'mounts': [{'type': 'nfs', 'target': '/x'}]}, 'supported: bind, tmpfs'),
    ({'mounts': [{'type': 'bind', 'target': 'x'}]}, 'an absolute path is needed'),
    ({'mounts': [{'type': 'bind', 'target': '/x', 'options': ['size=1m']}]}, 'not an option of a bind mount'),
    ({'masked_paths': ['proc/kcore']}, 'an absolute path is needed'),
])
def test_bad_specs(tmp_path, change, match):
    with pytest.raises(ConfigError, match=match):
        Launch.of(spec(tmp_path, **change))


def test_env_later_wins():
    assert process.env_dict(['A=1', 'B=x=y', 'A=2', 'E=']) == {'A': '2', 'B': 'x=y', 'E': ''}


def test_find_executable(tmp_path):
    first, second = tmp_path / 'a', tmp_path / 'b'
    first.mkdir()
    second.mkdir()
    (first / 'tool').write_text('')  # not executable: skipped, as execvp does
    (second / 'tool').write_text('')
    (second / 'tool').chmod(0o755)
    (first / 'dir').mkdir()
    env = {'PATH': '%s:%s' % (first, second)}
    assert process.find_executable('tool', env) == str(second / 'tool')
    (first / 'x').write_text('')
    assert process.find_executable(str(first / 'x'), env) == str(first / 'x')  # with a slash: as given
    with pytest.raises(process.ProcessError, match=r'failed to exec ./x/y: No such file or directory \(./x/y\)'):  # known before the exec
        process.find_executable('./x/y', env)
    with pytest.raises(process.ProcessError, match=r'failed to find the command dir: executable file not found in \$PATH') as info:
        process.find_executable('dir', env)
    assert info.value.errno == errno.ENOENT and info.value.path == 'dir'
    with pytest.raises(process.ProcessError, match='not found in .PATH .%s' % process.DEFAULT_PATH.replace('/', '.')):
        process.find_executable('surely-no-such-tool', {})


@pytest.mark.skipif(os.geteuid() == 0, reason='root may execute anything with an x bit')
def test_find_executable_denied(tmp_path):
    (tmp_path / 'tool').write_text('')
    with pytest.raises(process.ProcessError, match='permission denied'):
        process.find_executable('tool', {'PATH': str(tmp_path)})


def test_exit_codes():
    assert process.exit_code(3 << 8) == 3
    assert process.exit_code(signal.SIGTERM) == 143
    assert process.exit_code(signal.SIGKILL | 0x80) == 137  # core dumped flag
    pid = os.fork()
    if pid == 0:  # pragma: no cover
        os._exit(42)  # pylint: disable=protected-access
    assert process.wait_status(pid) == 42


def test_error_wire_round_trip():
    err = SyscallError('mount', 'proc on /x/proc', 'Permission denied (/x/proc)', path='/x/proc', errno=errno.EPERM)
    back = process.error_from_wire(process.error_to_wire(err))
    assert isinstance(back, process.ProcessError)
    assert str(back) == 'failed to mount proc on /x/proc: Permission denied (/x/proc)'
    assert (back.path, back.errno) == ('/x/proc', errno.EPERM)
    back = process.error_from_wire(process.error_to_wire(FileNotFoundError(errno.ENOENT, 'No such file or directory', b'/bin/x')))
    assert str(back) == 'failed to start the container process: No such file or directory (/bin/x)' and back.path == '/bin/x'
    back = process.error_from_wire(process.error_to_wire(ValueError('bad')))
    assert str(back) == 'failed to start the container process: ValueError: bad'
    assert 'unreadable report' in str(process.error_from_wire(b'{not json'))


def test_enter_never_runs_on_the_host():
    with pytest.raises(process.ProcessError, match='failed to enter process %d: it shares our mount namespace' % os.getpid()):
        process.enter(os.getpid(), {'args': ['true']}, (0, 1, 2), lambda pid: None)
    with pytest.raises(process.ProcessError, match='failed to enter process 999999999: no such process'):
        process.enter(999999999, {'args': ['true']}, (0, 1, 2), lambda pid: None)
