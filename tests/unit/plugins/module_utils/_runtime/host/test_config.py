# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import config
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, SchemaError


def test_missing_file_means_defaults(tmp_path):
    cfg = config.load(str(tmp_path / 'absent.json'))
    assert not cfg.exists
    assert cfg.data_root == '/var/lib/nsbox' and cfg.state_dir == '/run/nsbox'
    assert cfg['default_network'] == {'name': 'nsbox0', 'subnet': '10.77.0.0/16'}


def test_env_names_the_file(tmp_path, monkeypatch):
    path = tmp_path / 'c.json'
    path.write_text(json.dumps({'data_root': '/srv/x'}))
    monkeypatch.setenv('NSBOX_CONFIG', str(path))
    assert config.load().data_root == '/srv/x'


def test_partial_nested_keys_merge_over_defaults():
    cfg = config.HostConfig({'default_network': {'subnet': '10.99.0.0/16'}, 'registries': {'insecure': ['r:5000']}})
    assert cfg['default_network'] == {'name': 'nsbox0', 'subnet': '10.99.0.0/16'}
    assert cfg['registries'] == {'mirrors': {}, 'insecure': ['r:5000'], 'ca_files': {}}


def test_override_ignores_none_and_revalidates():
    cfg = config.HostConfig({}).override(data_root='/srv/nsbox/', storage_driver=None)
    assert cfg.data_root == '/srv/nsbox' and cfg['storage_driver'] == 'overlay'
    with pytest.raises(ConfigError, match='storage_driver must be one of'):
        cfg.override(storage_driver='zfs')


@pytest.mark.parametrize('data, match', [
    ({'data_root': 'relative'}, 'data_root must be an absolute path'),
    ({'data_root': '/'}, 'absolute path other than /'),
    ({'data_root': '/a', 'state_dir': '/a'}, 'must differ'),
    ({'colour': 'blue'}, 'unknown keys: colour'),
    ({'default_network': {'subnet': '10.0.0.300/8'}}, 'default_network.subnet'),
    ({'default_network': {'name': 'x' * 16}}, '1-15 characters'),
    ({'registries': {'insecure': 'r:5000'}}, 'registries.insecure must be a list'),
    ({'registries': {'mirror': {}}}, 'unknown keys in registries: mirror'),
    ({'cgroup_driver': 'openrc'}, 'cgroup_driver must be one of'),
])
def test_bad_values_are_named(data, match):
    with pytest.raises(ConfigError, match=match):
        config.HostConfig(data)


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text(json.dumps({'schema_version': 99}))
    with pytest.raises(SchemaError, match='newer than this nsbox understands'):
        config.load(str(path))


def test_garbage_file_is_a_clear_error(tmp_path):
    path = tmp_path / 'c.json'
    path.write_text('{"data_root": ')
    with pytest.raises(SchemaError, match='not valid JSON'):
        config.load(str(path))


def test_file_form_round_trips(tmp_path):
    cfg = config.HostConfig({'data_root': '/srv/n', 'log_driver': 'journald'})
    path = tmp_path / 'c.json'
    path.write_text(json.dumps(cfg.to_file()))
    again = config.load(str(path))
    assert again.exists and again.to_file() == cfg.to_file() and again.to_file()['schema_version'] == config.SCHEMA_VERSION


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                     lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
                     max_leaves=8)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(config.DEFAULTS) + ['junk']), _json, max_size=5))
def test_random_input_is_accepted_or_cleanly_refused(data):
    try:
        cfg = config.HostConfig(data)
    except ConfigError as exc:
        assert exc.message.startswith('failed to validate host config: ')
    else:
        assert set(cfg.data) == set(config.DEFAULTS)
