# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container option table: parsing, resolution over the image, and what a difference costs."""
from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options, parse, users
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}
IMAGE_CONFIG = {'Cmd': ['sh'], 'Env': ['PATH=/bin', 'A=1'], 'WorkingDir': '/srv', 'Labels': {'x': '1'}}


def resolved(**opts):
    return options.resolve('web', options.check(opts), IMAGE, IMAGE_CONFIG)


def test_every_option_is_in_the_argument_spec_and_has_an_update_kind():
    spec = options.argument_spec()
    assert set(spec) == set(options.OPTIONS)
    assert set(options.UPDATE.values()) <= {'live', 'stored', 'recreate'}
    assert options.UPDATE['resources.memory'] == 'live' and options.UPDATE['env'] == 'recreate' and options.UPDATE['labels'] == 'stored'
    assert all(opt.field in options.UPDATE for opt in options.TABLE)


def test_image_defaults_and_docker_rules():
    cfg = resolved()
    assert cfg['args'] == ['sh'] and cfg['working_dir'] == '/srv' and cfg['user'] == '0'
    assert 'A=1' in cfg['env'] and 'PATH=/bin' in cfg['env']
    assert resolved(command='httpd -f -p 80')['args'] == ['httpd', '-f', '-p', '80']
    # A given entrypoint drops the image's Cmd, as Docker does.
    assert resolved(entrypoint=['/bin/echo'])['args'] == ['/bin/echo']
    assert resolved(entrypoint=['/bin/echo'], command=['hi'])['args'] == ['/bin/echo', 'hi']
    assert 'A=2' in resolved(env={'A': 2})['env']
    assert resolved(labels={'y': 'z'})['labels'] == {'x': '1', 'y': 'z'}
    assert resolved()['stop_signal'] == 'SIGTERM' and resolved(stop_signal='quit')['stop_signal'] == 'SIGQUIT'
    assert resolved(stop_signal=9)['stop_signal'] == 'SIGKILL'


def test_no_command_at_all_is_an_error():
    with pytest.raises(ConfigError, match='no command'):
        options.resolve('web', options.check({}), IMAGE, {})


@pytest.mark.parametrize('opts, message', [
    ({'bogus': 1}, 'unknown options bogus'),
    ({'network_mode': 'host', 'networks': ['web']}, 'network_mode bridge, not host'),
    ({'network_mode': 'a b'}, 'or a network name'),
    ({'network_mode': 'web', 'networks': ['db']}, 'networks starts with db'),
    ({'networks': ['web', {'name': 'web'}]}, 'each network once'),
    ({'networks': [{'name': 'web', 'ip': '1.2.3.4'}]}, 'unknown keys ip'),
    ({'networks': [{'name': 'web', 'ipv4_address': '10.1.2'}]}, 'IPv4 address'),
    ({'published_ports': ['80']}, 'give the host port too'),
    ({'published_ports': ['127.0.0.1::80']}, 'give the host port too'),
    ({'published_ports': ['8080:80/sctp']}, 'tcp or udp'),
    ({'published_ports': ['8000-8002:80-81']}, 'differ in length'),
    ({'published_ports': ['0:80']}, 'numbers 1-65535'),
    ({'published_ports': ['8080:80', '8080:81']}, 'published twice: 8080/tcp'),
    ({'published_ports': ['8080:80'], 'network_mode': 'none'}, 'not with network_mode none'),
    ({'dns': ['8.8.8']}, 'IPv4 address'),
    ({'dns_search': ['a b']}, 'host name'),
    ({'extra_hosts': ['db']}, 'host:address'),
    ({'extra_hosts': {'db': 'x'}}, 'IPv4 address'),
    ({'pid_mode': 'container:'}, 'expected private'),
    ({'mounts': [{'type': 'bind', 'source': 'rel', 'target': '/x'}]}, 'absolute host path'),
    ({'mounts': [{'type': 'volume', 'target': '/x'}]}, 'needs source, the name of a volume'),
    ({'mounts': [{'type': 'volume', 'source': '/srv', 'target': '/x'}]}, 'use type bind'),
    ({'mounts': [{'type': 'volume', 'source': 'a', 'target': '/x'}]}, '2-255 characters'),
    ({'mounts': [{'type': 'volume', 'source': 'data', 'target': '/x', 'propagation': 'rshared'}]}, 'propagation is not an option of a volume'),
    ({'mounts': [{'type': 'bind', 'source': '/a', 'target': '/x', 'no_copy': True}]}, 'no_copy is not an option of a bind'),
    ({'mounts': [{'type': 'bind', 'source': '/a', 'target': '/x', 'propagation': 'up'}]}, 'expected one of private'),
    ({'mounts': [{'type': 'volume', 'source': 'data', 'target': '/x', 'no_copy': True, 'volume_nocopy': False}]}, 'disagree'),
    ({'mounts': [{'type': 'volume', 'source': 'data', 'target': '/x', 'size': 1}]}, 'unknown keys size'),
    ({'mounts': [{'type': 'nfs', 'target': '/x'}]}, 'type is bind, volume or tmpfs'),
    ({'volumes': ['/data']}, 'anonymous volumes are not supported'),
    ({'volumes': ['data:/x:rshared']}, 'options of a named volume are nocopy, ro, rw'),
    ({'volumes': ['/a:/x:nocopy']}, 'options of a bind mount'),
    ({'volumes': ['/a:/x:ro,rw']}, 'at most once'),
    ({'volumes': ['-bad:/x']}, '2-255 characters'),
    ({'volumes': ['a:b:c:d']}, 'expected /host/path'),
    ({'mounts': [{'type': 'tmpfs', 'target': '/'}]}, 'other than /'),
    ({'volumes': ['/a:/x', '/b:/x/']}, 'more than one mount on /x'),
    ({'memory': '1k'}, 'minimum memory'),
    ({'stop_signal': 'SIGNOPE'}, 'not a signal'),
    ({'log': {'driver': 'journald'}}, 'json-file'),
    ({'log': {'max_files': 0}}, 'at least 1'),
    ({'env': {'A': True}}, 'quote booleans'),
    ({'working_dir': 'rel'}, 'absolute'),
    ({'stop_timeout': -1}, 'whole seconds'),
    ({'sysctls': {'kernel.panic': '1'}}, 'not a namespaced sysctl'),
    ({'sysctls': {'net.ipv4.ip_forward': '1'}, 'network_mode': 'host'}, "own network namespace, not host"),
    ({'sysctls': {'kernel.shmmax': '1'}, 'ipc_mode': 'container:db'}, "own ipc namespace"),
    ({'sysctls': {'net/../../sysrq': '1'}}, 'dotted name'),
    ({'sysctls': {'net.ipv4.ip_forward': True}}, 'as the kernel reads it'),
    ({'ulimits': ['nofile:2048:1024']}, 'soft limit cannot exceed'),
    ({'ulimits': ['files:1']}, 'one of as, core'),
    ({'ulimits': ['nofile:x']}, 'whole numbers'),
    ({'ulimits': ['nofile:1', 'nofile=2:2']}, 'each limit once: nofile'),
    ({'oom_score_adj': 1001}, '-1000 to 1000'),
    ({'group_add': ['a b']}, 'group name or gid'),
    ({'shm_size': '1'}, 'at least one page'),
    ({'cpu_shares': 1}, 'from 2 to 262144'),
    ({'cpuset_cpus': '0-'}, 'a list such as'),
    ({'blkio_weight': 5}, 'from 10 to 1000'),
    ({'memory_swap': '64m'}, 'set memory too'),
    ({'env_file': '/nonexistent/env'}, 'env_file /nonexistent/env'),
])
def test_bad_input_names_the_option(opts, message):
    with pytest.raises(ConfigError, match=message):
        options.check(opts)


def test_differences_say_how_they_are_applied():
    base = resolved(memory='64m', env={'A': '1'})
    assert options.differences(base, resolved(memory='64m', env={'A': '1'})) == {}
    assert options.differences(base, resolved(memory='128m', env={'A': '1'})) == {'memory': 'live'}
    assert options.differences(base, resolved(memory='64m', env={'A': '2'})) == {'env': 'recreate'}
    assert options.differences(base, resolved(memory='64m', env={'A': '1'}, labels={'k': 'v'})) == {'labels': 'stored'}
    assert options.differences(base, resolved(env={'A': '1'})) == {'memory': 'recreate'}  # a limit taken away
    moved = dict(resolved(memory='64m', env={'A': '1'}), image=dict(IMAGE, digest='sha256:' + 'c' * 64))
    assert options.differences(base, moved) == {'image': 'recreate'}


def test_mount_forms_parse_to_one_stored_form():
    long = options.check({'mounts': [{'type': 'volume', 'source': 'data', 'target': '/srv/data/', 'read_only': True}]})['mounts']
    short = options.check({'volumes': ['data:/srv/data:ro']})['mounts']
    assert long == short == [{'type': 'volume', 'source': 'data', 'target': '/srv/data', 'read_only': True}]
    assert options.check({'volumes': ['data:/d:nocopy']})['mounts'][0]['no_copy'] is True
    assert options.check({'mounts': [{'type': 'volume', 'source': 'data', 'target': '/d', 'volume_nocopy': True}]})['mounts'][0]['no_copy']
    # binds: rprivate is the default and left out of the stored form (configs stored before the option compare equal)
    assert options.check({'volumes': ['/a:/x']})['mounts'] == [{'type': 'bind', 'source': '/a', 'target': '/x', 'read_only': False}]
    assert options.check({'volumes': ['/a:/x:rprivate']})['mounts'] == options.check({'volumes': ['/a:/x']})['mounts']
    assert options.check({'volumes': ['/a:/x:ro,rshared']})['mounts'] == [
        {'type': 'bind', 'source': '/a', 'target': '/x', 'read_only': True, 'propagation': 'rshared'}]
    assert options.check({'mounts': [{'type': 'bind', 'source': '/a', 'target': '/x', 'propagation': 'rslave'}]})['mounts'][0]['propagation'] == 'rslave'


def test_a_volume_mount_change_recreates():
    base = resolved(volumes=['data:/d'])
    assert options.differences(base, resolved(volumes=['data:/d'])) == {}
    assert options.differences(base, resolved(volumes=['other:/d'])) == {'mounts': 'recreate'}
    assert options.differences(base, resolved(volumes=['data:/d:ro'])) == {'mounts': 'recreate'}
    assert options.differences(resolved(volumes=['/a:/d']), resolved(volumes=['/a:/d:rshared'])) == {'mounts': 'recreate'}


@given(st.lists(st.text(alphabet='abc/.', min_size=1, max_size=12), min_size=1, max_size=4))
def test_mount_targets_normalise(parts):
    target = '/' + '/'.join(parts)
    norm = options.check({'mounts': [{'type': 'tmpfs', 'target': target}]})['mounts'][0]['target'] if parse.norm_path(target) != '/' \
        else None  # pylint: disable=protected-access
    if norm is not None:
        assert norm.startswith('/') and '//' not in norm and not norm.endswith('/')


PASSWD = 'root:x:0:0:root:/root:/bin/sh\nwww:x:33:33:www:/var/www:/bin/false\nbob:x:1000:1000::/home/bob:/bin/sh\n'
GROUP = 'root:x:0:\nwww:x:33:\nbob:x:1000:\naudio:x:29:bob,www\nvideo:x:44:bob\n'


@pytest.mark.parametrize('user, uid, gid, extra, home', [
    ('', 0, 0, [], '/root'),
    ('bob', 1000, 1000, [29, 44], '/home/bob'),
    ('www:audio', 33, 29, [], '/var/www'),
    ('1000', 1000, 1000, [29, 44], '/home/bob'),
    ('4242', 4242, 0, [], '/'),
    ('4242:7', 4242, 7, [], '/'),
])
def test_users(user, uid, gid, extra, home):
    assert users.resolve(user, PASSWD, GROUP) == {'uid': uid, 'gid': gid, 'additional_gids': extra, 'home': home}


def test_unknown_user_or_group_is_an_error():
    with pytest.raises(ConfigError, match="no matching entry in the image's /etc/passwd"):
        users.resolve('nobody', PASSWD, GROUP)
    with pytest.raises(ConfigError, match='/etc/group'):
        users.resolve('bob:nogroup', PASSWD, GROUP)
    assert users.resolve('0', None, None)['uid'] == 0


def test_new_options_resolve_into_the_config(tmp_path):
    env_file = tmp_path / 'env'
    env_file.write_text('# comment\nA=from-file\nB=b=c\n\n   C=3\nUNSET_NSBOX_TEST_VAR\n')
    cfg = resolved(env_file=str(env_file), env={'C': '4'}, ulimits=['nproc=100:200', 'nofile:1024'], sysctls={'net.core.somaxconn': 1024},
                   group_add=['wheel', '10'], shm_size='32m', tty=True, interactive=True, oom_score_adj=500,
                   annotations={'a': 1}, cpu_shares=512, cpuset_cpus='0', memory='64m', memory_swap='128m', memory_reservation='32m')
    assert 'A=from-file' in cfg['env'] and 'B=b=c' in cfg['env'] and 'C=4' in cfg['env']
    assert not any(e.startswith('UNSET_NSBOX_TEST_VAR') for e in cfg['env'])
    assert cfg['ulimits'] == [{'name': 'nofile', 'soft': 1024, 'hard': 1024}, {'name': 'nproc', 'soft': 100, 'hard': 200}]
    assert cfg['sysctls'] == {'net.core.somaxconn': '1024'} and cfg['group_add'] == ['wheel', '10']
    assert cfg['shm_size'] == 32 << 20 and cfg['tty'] and cfg['interactive'] and cfg['oom_score_adj'] == 500
    assert cfg['annotations'] == {'a': '1'}
    assert cfg['resources']['cpu_shares'] == 512 and cfg['resources']['cpuset_cpus'] == '0'
    assert cfg['resources']['memory_swap'] == 128 << 20 and cfg['resources']['memory_reservation'] == 32 << 20
    env_file.write_text('A=changed\n')
    assert options.differences(cfg, resolved(env_file=str(env_file), env={'C': '4'}, ulimits=['nproc=100:200', 'nofile:1024'],
                                             sysctls={'net.core.somaxconn': 1024}, group_add=['wheel', '10'], shm_size='32m', tty=True,
                                             interactive=True, oom_score_adj=500, annotations={'a': 1}, cpu_shares=512,
                                             cpuset_cpus='0', memory='64m', memory_swap='128m', memory_reservation='32m')) == {'env': 'recreate'}


def test_a_config_of_an_older_version_compares_as_unchanged():
    """Fields added later are compared with their defaults: upgrading nsbox recreates nothing.
    (Containers before bridge networking had network_mode none; a task that names it stays unchanged.)"""
    old = resolved(memory='64m', network_mode='none')
    for field in options.ADDED_FIELDS:
        del old[field]
    old['resources'] = {k: old['resources'][k] for k in ('memory', 'cpus', 'cpu_period', 'pids_limit')}
    assert options.differences(old, resolved(memory='64m', network_mode='none')) == {}


def test_comparisons_relax_per_option():
    base = resolved(memory='64m', labels={'a': '1', 'b': '2'}, env={'A': '1'}, volumes=['/srv:/srv'])
    wanted = resolved(memory='96m', labels={'a': '1'}, env={'A': '2'}, mounts=[{'type': 'tmpfs', 'target': '/t'}])
    assert options.differences(base, wanted) == {'memory': 'live', 'labels': 'stored', 'env': 'recreate', 'mounts': 'recreate'}
    relaxed = options.parse_comparisons({'memory': 'ignore', 'labels': 'allow_more_present', 'env_file': 'ignore', 'volumes': 'ignore'})
    assert options.differences(base, wanted, relaxed) == {}
    assert options.differences(base, resolved(memory='64m', labels={'c': '3'}, env={'A': '1'}, volumes=['/srv:/srv']),
                               relaxed) == {'labels': 'stored'}
    everything = options.parse_comparisons({'*': 'ignore', 'image': 'strict'})
    assert options.differences(base, wanted, everything) == {}
    moved = dict(base, image=dict(IMAGE, digest='sha256:' + 'c' * 64))
    assert options.differences(base, moved, everything) == {'image': 'recreate'}
    # the stored config keeps what was ignored when another change is written
    kept = options.merged(base, wanted, {'labels': 'stored'})
    assert kept['labels'] == {'a': '1', 'x': '1'} and kept['resources']['memory'] == 64 << 20 and kept['env'] == base['env']


@pytest.mark.parametrize('value, message', [
    ({'memory': 'loose'}, 'expected one of strict'),
    ({'memory': 'allow_more_present'}, 'lists and dicts only'),
    ({'bogus': 'strict'}, 'unknown options bogus'),
])
def test_bad_comparisons(value, message):
    with pytest.raises(ConfigError, match=message):
        options.parse_comparisons(value)


MOUNTISH = st.dictionaries(st.sampled_from(['type', 'source', 'target', 'x']), st.one_of(st.text(max_size=6), st.integers()), max_size=3)
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5000), st.text(max_size=12),
                   st.lists(st.one_of(st.text(max_size=8), st.integers(-2, 9), MOUNTISH), max_size=3),
                   st.dictionaries(st.text(max_size=6), st.one_of(st.text(max_size=6), st.integers(), st.booleans()), max_size=3))


@given(st.dictionaries(st.sampled_from(sorted(options.OPTIONS)), VALUES, max_size=6))
@settings(max_examples=400)
def test_any_input_is_parsed_or_refused_with_a_config_error(opts):
    """Fuzzing the table's parser: whatever a play passes ends in a config or a ConfigError naming the problem, never a crash."""
    opts.pop('env_file', None)  # a path on the host: its I/O is tested above
    try:
        checked = options.check(opts)
    except ConfigError as exc:
        assert exc.message
        return
    try:
        options.resolve('web', checked, IMAGE, IMAGE_CONFIG)
    except ConfigError as exc:
        assert exc.message


def test_the_record_holds_every_field_of_the_table_in_one_order():
    assert set(options.RECORD) == {f.split('.')[0] for f in options.FIELDS} | {'schema_version', 'name', 'args'}
    got = options.resolve('n', options.check({'command': 'sh'}), {'name': 'i', 'digest': 'sha256:x', 'id': 'x'}, {})
    assert tuple(got) == options.RECORD
