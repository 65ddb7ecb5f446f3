# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""oci/spec.py: config.json into the library's process spec, cgroup limits and hooks (pure, no root)."""
from __future__ import annotations

import json
import signal

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.resources import Resources
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch.spec import Launch, User
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cli import oci
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.oci import runtime, spec as ocispec


def config(**edit):
    out = {
        'ociVersion': '1.0.2',
        'process': {'args': ['sh'], 'env': ['PATH=/bin'], 'cwd': '/', 'user': {'uid': 1000, 'gid': 100, 'additionalGids': [5], 'umask': 0o027},
                    'capabilities': {'bounding': ['CAP_KILL', 'CAP_CHOWN'], 'effective': ['CAP_KILL']},
                    'rlimits': [{'type': 'RLIMIT_NOFILE', 'soft': 1024, 'hard': 4096}, {'type': 'RLIMIT_CORE', 'soft': 2 ** 64 - 1, 'hard': 2 ** 64 - 1}],
                    'noNewPrivileges': True, 'oomScoreAdj': 100},
        'root': {'path': 'rootfs', 'readonly': True},
        'hostname': 'h',
        'mounts': [{'destination': '/proc', 'type': 'proc', 'source': 'proc'},
                   {'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm', 'options': ['size=1m']},
                   {'destination': '/data', 'type': 'bind', 'source': 'data', 'options': ['rbind', 'ro', 'rprivate']},
                   {'destination': '/run', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'tmpcopyup', 'size=10m']}],
        'linux': {'namespaces': [{'type': 'pid'}, {'type': 'uts'}, {'type': 'mount'}, {'type': 'network', 'path': '/proc/1/ns/net'}],
                  'resources': {'memory': {'limit': 64 << 20, 'swap': 128 << 20}, 'cpu': {'quota': 50000, 'period': 100000, 'shares': 512},
                                'pids': {'limit': 0},
                                'devices': [{'allow': False, 'access': 'rwm'}, {'allow': True, 'type': 'c', 'major': 10, 'minor': 229, 'access': 'rw'}]},
                  'devices': [{'path': '/dev/fuse', 'type': 'c', 'major': 10, 'minor': 229, 'fileMode': 0o666}],
                  'sysctl': {'net.ipv4.ip_forward': '1'}, 'maskedPaths': ['/proc/kcore'], 'readonlyPaths': [],
                  'cgroupsPath': '/p/c'},
        'hooks': {'prestart': [{'path': '/bin/a'}], 'createRuntime': [{'path': '/bin/b', 'args': ['b', '1'], 'env': ['X=1'], 'timeout': 3}]},
        'annotations': {'k': 'v'},
    }
    for key, value in edit.items():
        node = out
        *parents, last = key.split('__')
        for part in parents:
            node = node[part]
        node[last] = value
    return out


@pytest.fixture(name='bundle')
def bundle_dir(tmp_path):
    (tmp_path / 'rootfs').mkdir()
    return str(tmp_path)


def test_translate_a_full_config(bundle):
    plan = ocispec.translate(config(), bundle, 'c1')
    got = plan['spec']
    assert isinstance(got, Launch)  # checked once, here: process.start takes it as it is
    assert got.rootfs == bundle + '/rootfs' and got.readonly_rootfs
    assert got.user == User(1000, 100, (5,)) and got.umask == 0o027
    assert got.capabilities == ('CAP_CHOWN', 'CAP_KILL') and got.no_new_privs and got.oom_score_adj == 100
    assert got.rlimits == ({'name': 'nofile', 'soft': 1024, 'hard': 4096}, {'name': 'core', 'soft': -1, 'hard': -1})
    assert got.namespaces == {'pid': None, 'uts': None, 'mnt': None, 'net': '/proc/1/ns/net'} and not got.loopback
    assert got.hostname == 'h' and got.shm_size == 1 << 20
    assert got.mounts == ({'type': 'bind', 'source': bundle + '/data', 'target': '/data', 'readonly': False, 'options': ['ro', 'rprivate', 'rbind']},
                          {'type': 'tmpfs', 'source': 'tmpfs', 'target': '/run', 'readonly': False, 'options': ['nosuid', 'size=10m']})
    assert got.devices == ({'container': '/dev/fuse', 'host': '/dev/fuse', 'type': 'c', 'major': 10, 'minor': 229, 'mode': 0o666, 'uid': 0, 'gid': 0},)
    assert got.masked_paths == ('/proc/kcore',) and got.readonly_paths == () and got.seccomp is None
    assert plan['cgroup'] == ('/p/c', 'cgroupfs')
    res = Resources.from_options(plan['resources'])
    assert (res.memory, res.memory_swap, res.cpu_shares, res.cpus, res.pids_limit) == (64 << 20, 128 << 20, 512, 0.5, -1)
    assert 'c 10:229 rw' in map(str, res.devices) and 'c 1:3 rwm' in map(str, res.devices)  # runc's defaults beside the bundle's
    assert [h['path'] for h in plan['hooks']['createRuntime']] == ['/bin/a', '/bin/b']  # prestart first
    assert plan['hooks']['createRuntime'][1] == {'path': '/bin/b', 'args': ['b', '1'], 'env': ['X=1'], 'timeout': 3}
    assert plan['annotations'] == {'k': 'v'}


@pytest.mark.parametrize('edit, words', [
    ({'linux__uidMappings': [{'containerID': 0, 'hostID': 1000, 'size': 1}]}, 'user namespaces are not supported'),
    ({'linux__namespaces': [{'type': 'user'}]}, 'user namespaces are not supported'),
    ({'linux__namespaces': [{'type': 'mount', 'path': '/proc/1/ns/mnt'}]}, 'joining a mount namespace'),
    ({'mounts': [{'destination': '/x', 'type': 'nfs', 'source': 's:/x'}]}, 'nfs at /x'),
    ({'mounts': [{'destination': '/x', 'type': 'bind', 'source': '/y', 'options': ['bogus']}]}, "mount option 'bogus'"),
    ({'linux__resources': {'devices': [{'allow': True, 'type': 'c', 'major': 1, 'minor': 3}, {'allow': False, 'type': 'c', 'major': 1, 'minor': 5}]}},
     'only a leading deny'),
    ({'linux__resources': {'hugepageLimits': [{'pageSize': '2MB', 'limit': 1}]}}, 'hugepageLimits'),
    ({'process__capabilities': {'bounding': ['CAP_KILL'], 'ambient': ['CAP_KILL']}}, 'ambient'),
    ({'process__apparmorProfile': 'x'}, 'AppArmor'),
    ({'ociVersion': '0.9'}, 'spec 1.x'),
    ({'root': {}}, 'no root filesystem'),
    ({'hooks': {'later': []}}, 'known hooks'),
    ({'linux__rootfsPropagation': 'shared'}, 'private or slave'),
    ({'linux__seccomp': {'defaultAction': 'SCMP_ACT_NOTIFY'}}, 'defaultAction'),
])
def test_what_the_library_cannot_do_is_refused(bundle, edit, words):
    with pytest.raises(ConfigError) as err:
        ocispec.translate(config(**edit), bundle, 'c1')
    assert words in err.value.message


def test_seccomp_in_the_spec_form_is_the_library_profile(bundle):
    profile = {'defaultAction': 'SCMP_ACT_ERRNO', 'defaultErrnoRet': 1, 'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86'],
               'syscalls': [{'names': ['read', 'write'], 'action': 'SCMP_ACT_ALLOW'},
                            {'names': ['personality'], 'action': 'SCMP_ACT_ALLOW', 'args': [{'index': 0, 'value': 8, 'op': 'SCMP_CMP_EQ'}]}]}
    got = ocispec.translate(config(linux__seccomp=profile), bundle, 'c1')['spec'].seccomp
    assert got['defaultAction'] == 'SCMP_ACT_ERRNO' and got['syscalls'][1]['args'][0]['value'] == 8


def test_cgroup_paths():
    assert ocispec.cgroup_path({}, 'c1') == ('/nsbox-oci/c1', 'cgroupfs')
    assert ocispec.cgroup_path({'cgroupsPath': 'machine.slice:libpod:abc'}, 'c1', systemd=True) == ('machine.slice/libpod-abc', 'systemd')
    with pytest.raises(ConfigError):
        ocispec.cgroup_path({'cgroupsPath': '/a/b'}, 'c1', systemd=True)


def test_signals_and_ids():
    assert runtime.parse_signal('KILL') == runtime.parse_signal('SIGKILL') == runtime.parse_signal('9') == signal.SIGKILL
    assert runtime.parse_signal('sigterm') == signal.SIGTERM
    for bad in ('NOPE', '999'):
        with pytest.raises(ConfigError):
            runtime.parse_signal(bad)
    for bad in ('', 'a/b', '..', 'x y'):
        with pytest.raises(ConfigError):
            runtime.check_id(bad)
    assert runtime.check_id('abc-1.2_3+x') == 'abc-1.2_3+x'


def test_state_of_a_missing_container_is_a_clear_error(tmp_path):
    with pytest.raises(runtime.OciError) as err:
        runtime.state(str(tmp_path), 'nope')
    assert 'does not exist' in err.value.message


def test_features_are_json_as_runc_prints_them():
    data = json.loads(json.dumps(oci.features()))
    assert data['ociVersionMin'] == '1.0.0' and 'poststop' in data['hooks']
    assert {'v1', 'v2', 'systemd'} <= set(data['linux']['cgroup']) and 'rbind' in data['mountOptions']


def test_the_cli_parses_what_podman_and_conmon_pass():
    p = oci.parser()
    args = p.parse_args(['--root', '/r', '--log', '/l', '--log-format', 'json', '--systemd-cgroup', 'create', '--bundle', '/b',
                         '--pid-file', '/p', '--console-socket', '/s', '--no-new-keyring', 'abc'])
    assert (args.root, args.log_format, args.systemd_cgroup, args.verb, args.bundle, args.id) == ('/r', 'json', True, 'create', '/b', 'abc')
    args = p.parse_args(['exec', '--pid-file', '/p', '--process', '/j', '--detach', 'abc'])
    assert (args.process, args.detach, args.id, args.command) == ('/j', True, 'abc', [])
    args = p.parse_args(['kill', '--all', 'abc', 'KILL'])
    assert (args.all, args.signal) == (True, 'KILL')
    assert p.parse_args(['delete', '--force', 'abc']).force
