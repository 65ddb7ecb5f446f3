# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The resource table: each name written once, and everything that names a resource agreeing with it.

The ``cgroup`` module's DOCUMENTATION, its argument spec, the container option table, and the
three backends all come from, or are held to, ``resources.TABLE``; the backends' columns are
exercised on captured cgroup trees (a write, then a plan that finds nothing left to do).
"""
from __future__ import annotations

import os
import re

import yaml

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups import layout, mapping, resources, systemd, v1, v2
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.manager import to_write
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.resources import CONTAINER_FIELDS, CONTAINER_STORED, ROWS, TABLE, Resources
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import converge, options
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.named import cgroup as named_cgroup

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), *['..'] * 6))
NOT_LIMITS = {'name', 'parent', 'state', 'procs'}
IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}
IMAGE_CONFIG = {'Cmd': ['sh'], 'Env': ['PATH=/bin'], 'WorkingDir': '/'}


def _documented(module):
    with open(os.path.join(REPO, 'plugins', 'modules', module + '.py')) as f:
        return yaml.safe_load(re.search(r"DOCUMENTATION = r'''(.*?)'''", f.read(), re.S).group(1))['options']


def _spec_of_doc(doc):
    """An option's documentation as an argument spec (type, elements, suboptions, required)."""
    spec = {k: doc[k] for k in ('type', 'elements', 'required') if k in doc}
    if 'suboptions' in doc:
        spec['options'] = {k: _spec_of_doc(v) for k, v in doc['suboptions'].items()}
    return spec


def _text(doc):
    description = doc['description']
    return ' '.join(description if isinstance(description, list) else [description])


def test_the_cgroup_modules_documentation_is_the_table():
    documented = {k: v for k, v in _documented('cgroup').items() if k not in NOT_LIMITS}
    assert list(documented) == [row.name for row in TABLE]
    for row in TABLE:
        assert _spec_of_doc(documented[row.name]) == row.argspec, row.name
        assert row.doc in _text(documented[row.name]), row.name
    assert named_cgroup.LIMITS == {row.name: row.argspec for row in TABLE}


def test_a_documented_range_is_the_parsers():
    for row in TABLE:
        if row.parse is resources._whole:  # pylint: disable=protected-access
            assert '%d-%d' % row.range in row.doc, row.name


def test_the_container_takes_the_rows_marked_for_it():
    assert [row.name for row in CONTAINER_FIELDS] == ['memory', 'memory_reservation', 'memory_swap', 'cpu_shares', 'cpus', 'cpuset_cpus',
                                                      'pids_limit', 'blkio_weight']
    assert CONTAINER_STORED == ('memory', 'memory_reservation', 'memory_swap', 'cpu_shares', 'cpus', 'cpu_period', 'cpuset_cpus', 'pids_limit',
                                'blkio_weight')
    # The container's option table makes its resource rows from these: the name, type and doc line are the row's.
    assert options.RESOURCE_OPTIONS == tuple(row.name for row in CONTAINER_FIELDS)
    assert options.RESOURCE_FIELDS == CONTAINER_STORED
    for row in CONTAINER_FIELDS:
        opt = options.OPTIONS[row.name]
        assert (opt.argspec(), opt.doc, opt.update, opt.field) == (row.argspec, row.container, 'live', 'resources.' + row.name), row.name


def test_every_row_says_how_each_backend_keeps_it():
    for row in TABLE:
        assert row.v1.controller in layout.V1_CONTROLLERS, row.name
        assert row.v2.controller in (None, 'memory', 'cpu', 'cpuset', 'pids', 'io'), row.name
        assert isinstance(row.systemd, mapping.Prop), row.name
    assert Resources.FIELDS == tuple(ROWS)


def test_a_kind_that_keeps_two_settings_is_written_once_and_swap_follows_memory():
    res = Resources.from_options({'memory': '64m', 'memory_swap': '128m', 'cpus': 0.5, 'cpu_period': 50000})
    changes = {'cpus': (None, 0.5), 'cpu_period': (100000, 50000), 'memory': (32 << 20, 64 << 20)}
    assert [name for _kind, name in to_write('v2', res, changes)] == ['memory', 'memory_swap', 'cpus']
    assert [name for _kind, name in to_write('v1', res, changes)] == ['memory', 'cpus']
    assert [name for _kind, name in to_write('v2', res, {'cpu_period': (100000, 50000)})] == ['cpu_period']


def test_v1_memsw_goes_first_only_when_memory_passes_it():
    memsw = ROWS['memory_swap'].v1
    assert memsw.goes_first({'memory': (64, 256), 'memory_swap': (128, 512)})
    assert not memsw.goes_first({'memory': (256, 64), 'memory_swap': (512, 128)})
    assert not memsw.goes_first({'memory': (None, 256), 'memory_swap': (None, 512)})  # a new cgroup: memsw is unlimited
    assert not memsw.goes_first({'memory': (64, 256)})
    res = Resources.from_options({'memory': '256m', 'memory_swap': '512m'})
    raising = {'memory': (64 << 20, 256 << 20), 'memory_swap': (128 << 20, 512 << 20)}
    assert [name for _kind, name in to_write('v1', res, raising)] == ['memory_swap', 'memory']


def _files(root, files):
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


SIMPLE = {'memory': '64m', 'memory_reservation': '32m', 'memory_swap': '128m', 'cpu_shares': 512, 'cpus': 0.5, 'cpuset_cpus': '0',
          'cpuset_mems': '0', 'pids_limit': 10, 'blkio_weight': 500}


def test_v1_column_round_trips_on_a_captured_tree(tmp_path):
    dirs = {c: tmp_path / c for c in ('memory', 'cpu', 'cpuset', 'pids', 'blkio')}
    lay = layout.Layout('v1', v1={c: str(d) for c, d in dirs.items()})
    for controller, files in (('memory', {'memory.limit_in_bytes': '9223372036854771712', 'memory.soft_limit_in_bytes': '9223372036854771712',
                                          'memory.memsw.limit_in_bytes': '9223372036854771712'}),
                              ('cpu', {'cpu.shares': '1024', 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '-1'}),
                              ('cpuset', {'cpuset.cpus': '0-1', 'cpuset.mems': '0'}), ('pids', {'pids.max': 'max'}),
                              ('blkio', {'blkio.bfq.weight': 'default 100'})):
        _files(dirs[controller] / 'box', files)
    mgr = v1.CgroupV1Manager('/box', lay)
    res = Resources.from_options(SIMPLE)
    assert set(mgr.plan(res)) == set(res.managed()) - {'cpuset_mems', 'cpu_period'}  # as they are already
    mgr.apply(res)
    assert (dirs['pids'] / 'box' / 'pids.max').read_text() == '10' and (dirs['cpu'] / 'box' / 'cpu.cfs_quota_us').read_text() == '50000'
    assert (dirs['blkio'] / 'box' / 'blkio.bfq.weight').read_text() == '500'
    assert mgr.plan(res) == {}


def test_v2_column_round_trips_on_a_captured_tree(tmp_path):
    _files(tmp_path, {'cgroup.controllers': 'cpu memory pids io cpuset', 'cgroup.subtree_control': '',
                      'box/cgroup.controllers': 'cpu memory pids io cpuset', 'box/memory.max': 'max', 'box/memory.low': '0',
                      'box/memory.swap.max': 'max', 'box/cpu.weight': '100', 'box/cpu.max': 'max 100000', 'box/cpuset.cpus': '',
                      'box/cpuset.mems': '', 'box/pids.max': 'max', 'box/io.weight': 'default 100', 'box/cgroup.freeze': '0'})
    mgr = v2.CgroupV2Manager('/box', str(tmp_path), may_enable_root=True)
    res = Resources.from_options(SIMPLE)
    mgr.apply(res)
    box = tmp_path / 'box'
    assert (box / 'memory.swap.max').read_text() == str(64 << 20)  # swap alone: memory_swap less memory
    assert (box / 'cpu.weight').read_text() == '20' and (box / 'io.weight').read_text() == 'default 4950'
    assert mgr.plan(res) == {}
    assert mgr.read(res, ['frozen']) == {'frozen': False}


def test_systemd_column_is_one_call_in_table_order(tmp_path):
    calls = []
    mgr = systemd.SystemdManager('nsbox.slice', ['web'], str(tmp_path), run=lambda argv: calls.append(argv) or '')
    res = Resources.from_options(dict(SIMPLE, device_read_bps=[{'path': '8:0', 'rate': '1m'}]))
    mgr._write(res, {k: (None, v) for k, v in res.managed().items()})  # pylint: disable=protected-access
    (call,) = calls
    props = [arg for arg in call[9:] if re.match(r'^[A-Z][A-Za-z]+$', arg)]
    assert props == ['MemoryMax', 'MemoryLow', 'MemorySwapMax', 'CPUWeight', 'CPUQuotaPeriodUSec', 'CPUQuotaPerSecUSec', 'AllowedCPUs',
                     'AllowedMemoryNodes', 'TasksMax', 'IOWeight', 'IOReadBandwidthMax']
    assert call[call.index('MemorySwapMax') + 2] == str(64 << 20)


class _Manager:
    """A cgroup manager that counts what a live update asks of it."""

    def __init__(self, changes):
        self.changes, self.calls = changes, []

    def plan(self, resources):
        self.calls.append('plan')
        return dict(self.changes)

    def exists(self):
        return True

    def apply(self, resources, changes=None):
        self.calls.append(('apply', changes))
        return changes


class _Container:
    name = 'web'

    def __init__(self, config):
        self.config, self.written = config, None

    def write_config(self, config):
        self.written = config


def test_a_live_update_finds_the_cgroup_and_reads_it_once(monkeypatch):
    stored = options.resolve('web', options.check({'memory': '64m'}), IMAGE, IMAGE_CONFIG)
    wanted = options.resolve('web', options.check({'memory': '128m'}), IMAGE, IMAGE_CONFIG)
    manager, found = _Manager({'memory': (64 << 20, 128 << 20)}), []
    monkeypatch.setattr(converge.assemble, 'cgroup_of', lambda cfg, container: found.append(container) or manager)
    container = _Container(stored)
    diffs = options.differences(stored, wanted)
    _config, actions = converge._update_in_place(None, container, wanted, diffs, True, {}, False)  # pylint: disable=protected-access
    assert len(found) == 1 and manager.calls == ['plan', ('apply', {'memory': (64 << 20, 128 << 20)})]
    assert actions == ['updated memory of container web live'] and container.written['resources']['memory'] == 128 << 20
