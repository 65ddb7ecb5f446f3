# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The user namespace options and the allocator of userns_mode auto: parsing, refusals, ranges that never
overlap, that are valid only while their container's record asks for them, and the pool used up."""
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host.config import HostConfig
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import idranges, options, store as cstore
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel.idmap import IdMapEntry
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel.userns import in_host_range, map_id

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}
START = 2147483648


def _cfg(tmp_path, pool=None):
    data = {'data_root': str(tmp_path / 'data'), 'state_dir': str(tmp_path / 'run')}
    if pool:
        data['userns'] = {'pool': pool}
    return HostConfig(data)


def _make(cfg, name, **opts):
    store = cstore.ContainerStore(cfg)
    config = options.resolve(name, options.check(dict({'command': 'sleep 1'}, **opts)), IMAGE, {})
    with store.lock():
        return store, store.create(config)


def test_options_parse_into_the_stored_form():
    assert options.check({})['userns'] == {'mode': 'host', 'uid_map': None, 'gid_map': None}
    assert options.check({'userns_mode': 'auto'})['userns'] == {'mode': 'auto', 'uid_map': None, 'gid_map': None}
    got = options.check({'uidmap': ['0:3500000000:65536']})['userns']
    entry = {'container_id': 0, 'host_id': 3500000000, 'size': 65536}
    assert got == {'mode': 'private', 'uid_map': [entry], 'gid_map': [entry]}  # gidmap defaults to uidmap
    got = options.check({'uidmap': ['0:3500000000:10', '10:3600000000:5'], 'gidmap': ['0:3700000000:1']})['userns']
    assert [e['host_id'] for e in got['uid_map']] == [3500000000, 3600000000] and got['gid_map'][0]['host_id'] == 3700000000


@pytest.mark.parametrize('opts, text', [
    ({'userns_mode': 'private'}, 'expected one of host, auto'),
    ({'uidmap': ['0:3500000000:65536', '5:3600000000:1']}, 'overlap in container ids'),
    ({'uidmap': ['0:3500000000:10', '20:3500000005:10']}, 'overlap in host ids'),
    ({'uidmap': ['0:4294967290:10']}, 'passes the largest id'),
    ({'uidmap': ['0:1:x']}, 'must be a non-negative integer'),
    ({'uidmap': ['0:100']}, 'expected "container_id:host_id:size"'),
    ({'uidmap': []}, 'expected a list'),
    ({'uidmap': ['0:0:1']}, 'maps host id 0'),
    ({'uidmap': ['0:2147483000:65536']}, 'overlap the pool'),
    ({'gidmap': ['0:3500000000:1']}, 'give uidmap too'),
    ({'userns_mode': 'host', 'uidmap': ['0:3500000000:1']}, 'would contradict them'),
    ({'userns_mode': 'auto', 'privileged': True}, 'a privileged container'),
    ({'userns_mode': 'auto', 'ipc_mode': 'host'}, 'ipc_mode host with a user namespace'),
    ({'userns_mode': 'auto', 'uts_mode': 'container:web'}, 'uts_mode container:web'),
    ({'userns_mode': 'auto', 'network_mode': 'host'}, 'network_mode host with a user namespace'),
])
def test_bad_options_are_refused(opts, text):
    with pytest.raises(ConfigError) as err:
        options.check(opts)
    assert text in err.value.message, err.value.message


def test_a_pool_of_ones_own_moves_the_refusal():
    assert options.check({'uidmap': ['0:2147483648:65536']}, {'userns_pool': ['100000:65536']})['userns']['mode'] == 'private'
    with pytest.raises(ConfigError):
        options.check({'uidmap': ['0:100000:1']}, {'userns_pool': ['100000:65536']})


def test_pool_parsing():
    assert idranges.parse_pool(['300000:65536', '100000:131072']) == [(100000, 131072), (300000, 65536)]
    for bad in (['0:65536'], ['1:100'], ['1'], ['4294900000:100000'], ['100000:131072', '200000:65536']):
        with pytest.raises(ConfigError):
            idranges.parse_pool(bad)
    with pytest.raises(ConfigError):
        HostConfig({'userns': {'rootfs': 'magic'}})
    assert HostConfig({})['userns']['pool'] == ['2147483648:1073741824']


def test_allocations_never_overlap_and_follow_the_records(tmp_path):
    cfg = _cfg(tmp_path)
    ranges = idranges.RangeStore(cfg)
    store, a = _make(cfg, 'a', userns_mode='auto')
    _store, b = _make(cfg, 'b', userns_mode='auto')
    first = ranges.allocate(a.id)
    assert first == START and ranges.allocate(a.id) == START  # stable
    assert ranges.allocate(b.id) == START + 65536
    assert idranges.maps_of(cfg, a) == ((IdMapEntry(0, START, 65536),),) * 2
    # a crash between the entry and the record (or a removal without the file rewritten): the entry is not valid
    with store.lock():
        store.delete(a)
    assert ranges.ranges() == {b.id: START + 65536}
    _store, c = _make(cfg, 'c', userns_mode='auto')
    assert ranges.allocate(c.id) == START  # the lowest free block again
    ranges.release(a.id)
    with open(ranges.path) as f:
        assert json.load(f)['ranges'] == {b.id: START + 65536, c.id: START}
    # an entry for a container that is no longer auto, or an id that is no container, is not valid either
    _store, h = _make(cfg, 'h')
    with open(ranges.path) as f:
        data = json.load(f)
    data['ranges'].update({h.id: START + 5 * 65536, 'x' * 64: START + 6 * 65536, '../etc': START})
    with open(ranges.path, 'w') as f:
        json.dump(data, f)
    assert ranges.ranges() == {b.id: START + 65536, c.id: START}
    assert idranges.maps_of(cfg, h) is None


def test_a_used_up_pool_is_a_clear_error(tmp_path):
    cfg = _cfg(tmp_path, pool=['100000:131072'])
    ranges = idranges.RangeStore(cfg)
    ids = [_make(cfg, n, userns_mode='auto')[1].id for n in ('a', 'b', 'c')]
    assert [ranges.allocate(i) for i in ids[:2]] == [100000, 165536]
    with pytest.raises(idranges.RangeError) as err:
        ranges.allocate(ids[2])
    assert 'used up by 2 containers' in err.value.message
    assert os.path.exists(ranges.path) and len(ranges.ranges()) == 2


def test_id_mapping_helpers():
    entries = (IdMapEntry(0, 100000, 1000), IdMapEntry(1000, 300000, 10))
    assert [map_id(v, entries) for v in (0, 999, 1000, 1009, 1010)] == [100000, 100999, 300000, 300009, None]
    assert in_host_range(100500, entries) and in_host_range(300009, entries) and not in_host_range(300010, entries)


def test_old_configs_compare_as_host():
    old = options.resolve('web', options.check({'command': 'sleep 1'}), IMAGE, {})
    del old['userns']
    wanted = options.resolve('web', options.check({'command': 'sleep 1'}), IMAGE, {})
    assert options.differences(old, wanted) == {}
    auto = options.resolve('web', options.check({'command': 'sleep 1', 'userns_mode': 'auto'}), IMAGE, {})
    assert options.differences(old, auto) == {'userns_mode': 'recreate'}
    explicit = options.resolve('web', options.check({'command': 'sleep 1', 'uidmap': ['0:3500000000:1']}), IMAGE, {})
    assert options.differences(auto, explicit) == dict.fromkeys(('userns_mode', 'uidmap', 'gidmap'), 'recreate')
