# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import config, hostsetup
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError


@pytest.fixture
def paths(tmp_path):
    return {'config': str(tmp_path / 'etc' / 'config.json'), 'data_root': str(tmp_path / 'data'), 'state_dir': str(tmp_path / 'run')}


def desired(paths, **kw):
    return config.HostConfig(dict(data_root=paths['data_root'], state_dir=paths['state_dir'], **kw))


def test_converge_then_nothing_to_do(paths):
    setup = hostsetup.HostSetup(desired(paths), paths['config'])
    planned = setup.plan()
    assert ('config', 'write %s' % paths['config']) in planned
    assert setup.apply() == planned
    assert hostsetup.HostSetup(desired(paths), paths['config']).plan() == []
    assert oct(os.stat(paths['data_root']).st_mode & 0o7777) == oct(hostsetup.DATA_ROOT_MODE)
    for sub, mode in hostsetup.DATA_SUBDIRS:
        assert os.stat(os.path.join(paths['data_root'], sub)).st_mode & 0o7777 == mode
    with open(os.path.join(paths['data_root'], 'store.json')) as f:
        assert json.load(f) == {'schema_version': 1, 'storage_driver': 'overlay'}


def test_plan_writes_nothing(paths):
    hostsetup.HostSetup(desired(paths), paths['config']).plan()
    assert not os.path.exists(paths['config']) and not os.path.exists(paths['data_root'])


def test_mode_drift_is_repaired(paths):
    hostsetup.HostSetup(desired(paths), paths['config']).apply()
    os.chmod(os.path.join(paths['data_root'], 'tmp'), 0o777)
    setup = hostsetup.HostSetup(desired(paths), paths['config'])
    assert setup.plan() == [('dir', 'chmod %s/tmp 0777 -> 0700' % paths['data_root'])]
    setup.apply()
    assert hostsetup.HostSetup(desired(paths), paths['config']).plan() == []


def test_storage_driver_switch_only_while_store_is_empty(paths):
    hostsetup.HostSetup(desired(paths), paths['config']).apply()
    vfs = hostsetup.HostSetup(desired(paths, storage_driver='vfs'), paths['config'])
    assert ('store', 'switch %s/store.json to storage_driver vfs' % paths['data_root']) in vfs.plan()
    vfs.apply()
    os.mkdir(os.path.join(paths['data_root'], 'layers', 'abc'))
    with pytest.raises(ConfigError, match="initialised with 'vfs' and holds layers"):
        hostsetup.HostSetup(desired(paths, storage_driver='overlay'), paths['config']).plan()


def test_unused_data_root_is_simply_left_for_another(paths):
    hostsetup.HostSetup(desired(paths), paths['config']).apply()
    other = dict(paths, data_root=paths['data_root'] + '2')
    planned = hostsetup.HostSetup(desired(other), paths['config']).plan()
    assert not any(kind == 'move' for kind, _desc in planned)


def test_data_root_in_use_moves_only_when_asked(paths):
    hostsetup.HostSetup(desired(paths), paths['config']).apply()
    layer = os.path.join(paths['data_root'], 'layers', 'abc')
    os.mkdir(layer)
    with open(os.path.join(layer, 'meta.json'), 'w') as f:
        f.write('{}')
    new = dict(paths, data_root=os.path.join(os.path.dirname(paths['data_root']), 'moved', 'data'))
    with pytest.raises(ConfigError, match='holds images, containers or volumes; set data_root_migrate'):
        hostsetup.HostSetup(desired(new), paths['config']).plan()
    setup = hostsetup.HostSetup(desired(new), paths['config'], move_data_root=True)
    assert setup.plan() == [('move', 'move data-root %s to %s' % (paths['data_root'], new['data_root'])),
                            ('config', 'write %s' % paths['config'])]
    setup.apply()
    assert not os.path.exists(paths['data_root'])
    assert os.path.isfile(os.path.join(new['data_root'], 'layers', 'abc', 'meta.json'))
    assert config.load(paths['config']).data_root == new['data_root']
    assert hostsetup.HostSetup(desired(new), paths['config']).plan() == []


def test_move_refuses_a_non_empty_target(paths):
    hostsetup.HostSetup(desired(paths), paths['config']).apply()
    os.mkdir(os.path.join(paths['data_root'], 'volumes', 'v1'))
    new = dict(paths, data_root=paths['data_root'] + '2')
    os.makedirs(os.path.join(new['data_root'], 'something'))
    with pytest.raises(ConfigError, match='exists and is not empty'):
        hostsetup.HostSetup(desired(new), paths['config'], move_data_root=True).plan()
