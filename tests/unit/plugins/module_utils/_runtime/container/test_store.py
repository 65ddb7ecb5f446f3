# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers on disk: atomic creation, finding, and status re-derived from the kernel."""
from __future__ import annotations

import os

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host.config import HostConfig
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options, store as cstore
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import SchemaError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel.namespaces import boot_id, process_stamp

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}


@pytest.fixture
def store(tmp_path):
    cfg = HostConfig({'data_root': str(tmp_path / 'data'), 'state_dir': str(tmp_path / 'run')})
    return cstore.ContainerStore(cfg)


def make(store, name='web'):
    config = options.resolve(name, options.check({'command': 'sleep 1'}), IMAGE, {})
    with store.lock():
        return store.create(config)


def test_create_find_delete(store):
    c = make(store)
    assert len(c.id) == 64 and os.path.isdir(c.path('upper')) and os.path.isdir(c.rootfs)
    assert store.find('web').id == c.id and store.find(c.id[:12]).id == c.id and store.find('nope') is None
    assert c.status()['status'] == 'created' and not c.status()['running']
    with store.lock():
        store.delete(c)
    assert store.find('web') is None and not os.listdir(store.tmp)


def test_leftovers_of_an_interrupted_run_are_invisible_and_cleaned(store):
    make(store)
    os.makedirs(os.path.join(store.tmp, 'container-' + 'f' * 64, 'upper'))
    os.makedirs(os.path.join(store.tmp, 'removed-' + 'e' * 64))
    assert [c.name for c in store.all()] == ['web']
    store.cleanup_tmp()
    assert os.listdir(store.tmp) == []


def test_running_is_checked_against_the_process(store, tmp_path):
    c = make(store)
    me = os.getpid()
    c.write_state(status='running', pid=me, pid_start=process_stamp(me)[1], boot_id=boot_id(),
                  supervisor={'pid': me, 'start_time': process_stamp(me)[1], 'boot_id': boot_id()})
    st = c.status()
    assert st['running'] and st['supervised'] and st['pid'] == me
    c.write_state(supervisor={'pid': me, 'start_time': 1, 'boot_id': boot_id()})
    assert c.status()['running'] and not c.status()['supervised']
    c.write_state(pid_start=process_stamp(me)[1] + 1)  # a reused pid is not the container
    st = c.status()
    assert st['status'] == 'exited' and st['exit_code'] is None and not st['running'] and 'supervisor was gone' in st['error']
    other_boot = tmp_path / 'boot_id'
    other_boot.write_text('another-boot\n')
    c.write_state(pid_start=process_stamp(me)[1])
    st = c.status(boot_id_path=str(other_boot))
    assert st['status'] == 'exited' and 'rebooted' in st['error']


def test_an_image_cleanup_during_a_create_leaves_the_staging_dir_alone(store, monkeypatch):
    """The image store's tmp/ cleanup removes staging dirs nobody holds: a container being built is held."""
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.store import ImageStore  # pylint: disable=import-outside-toplevel
    real, seen = cstore.write_json, []

    def write_json_with_a_cleanup_between(path, data, mode):
        seen.append(ImageStore(store.data_root).cleanup_tmp())
        real(path, data, mode)
    monkeypatch.setattr(cstore, 'write_json', write_json_with_a_cleanup_between)
    c = make(store)
    assert seen == [[], []] and os.path.isfile(c.path('config.json')) and os.path.isdir(c.path('upper'))


def test_a_newer_state_file_is_refused(store):
    c = make(store)
    with open(c.path('state.json'), 'w') as f:
        f.write('{"schema_version": 99, "status": "running"}')
    with pytest.raises(SchemaError, match='newer than this nsbox'):
        c.status()
