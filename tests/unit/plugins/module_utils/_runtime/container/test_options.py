# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container option table: parsing, resolution over the image, and what a difference costs."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options, users
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}
IMAGE_CONFIG = {'Cmd': ['sh'], 'Env': ['PATH=/bin', 'A=1'], 'WorkingDir': '/srv', 'Labels': {'x': '1'}}


def resolved(**opts):
    return options.resolve('web', options.check(opts), IMAGE, IMAGE_CONFIG)


def test_every_option_is_in_the_argument_spec_and_has_an_update_kind():
    spec = options.argument_spec()
    assert set(spec) == set(options.OPTIONS)
    assert set(options.UPDATE.values()) <= {'live', 'stored', 'recreate'}
    assert options.UPDATE['resources'] == 'live' and options.UPDATE['env'] == 'recreate' and options.UPDATE['labels'] == 'stored'


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
    ({'network_mode': 'bridge'}, 'bridge networking comes with'),
    ({'pid_mode': 'container:'}, 'expected private'),
    ({'mounts': [{'type': 'bind', 'source': 'rel', 'target': '/x'}]}, 'absolute host path'),
    ({'mounts': [{'type': 'volume', 'source': 'data', 'target': '/x'}]}, 'named volumes'),
    ({'mounts': [{'type': 'tmpfs', 'target': '/'}]}, 'other than /'),
    ({'volumes': ['data:/x']}, 'named volumes'),
    ({'volumes': ['/a:/x', '/b:/x/']}, 'more than one mount on /x'),
    ({'memory': '1k'}, 'minimum memory'),
    ({'stop_signal': 'SIGNOPE'}, 'not a signal'),
    ({'log': {'driver': 'journald'}}, 'json-file'),
    ({'log': {'max_files': 0}}, 'at least 1'),
    ({'env': {'A': True}}, 'quote booleans'),
    ({'working_dir': 'rel'}, 'absolute'),
    ({'stop_timeout': -1}, 'whole seconds'),
])
def test_bad_input_names_the_option(opts, message):
    with pytest.raises(ConfigError, match=message):
        options.check(opts)


def test_differences_say_how_they_are_applied():
    base = resolved(memory='64m', env={'A': '1'})
    assert options.differences(base, resolved(memory='64m', env={'A': '1'})) == {}
    assert options.differences(base, resolved(memory='128m', env={'A': '1'})) == {'resources': 'live'}
    assert options.differences(base, resolved(memory='64m', env={'A': '2'})) == {'env': 'recreate'}
    assert options.differences(base, resolved(memory='64m', env={'A': '1'}, labels={'k': 'v'})) == {'labels': 'stored'}
    assert options.differences(base, resolved(env={'A': '1'})) == {'resources': 'recreate'}  # a limit taken away
    moved = dict(resolved(memory='64m', env={'A': '1'}), image=dict(IMAGE, digest='sha256:' + 'c' * 64))
    assert options.differences(base, moved) == {'image': 'recreate'}


@given(st.lists(st.text(alphabet='abc/.', min_size=1, max_size=12), min_size=1, max_size=4))
def test_mount_targets_normalise(parts):
    target = '/' + '/'.join(parts)
    norm = options.check({'mounts': [{'type': 'tmpfs', 'target': target}]})['mounts'][0]['target'] if options._norm_path(target) != '/' \
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
