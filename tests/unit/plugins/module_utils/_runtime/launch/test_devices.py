# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``devices`` option (Docker's --device forms) and every container's device allow list (no root needed:
/dev/null and /dev/zero are character devices anyone can stat)."""
from __future__ import annotations

import os

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.resources import DeviceRule
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import devices, mounts
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}


def resolved(**opts):
    return options.resolve('web', options.check(opts), IMAGE, {'Cmd': ['sh']})


def test_docker_forms():
    st = os.stat('/dev/null')
    full = devices.parse_device('/dev/null', 0)
    assert full == {'host': '/dev/null', 'container': '/dev/null', 'permissions': 'rwm', 'type': 'c', 'major': 1, 'minor': 3,
                    'mode': st.st_mode & 0o7777, 'uid': st.st_uid, 'gid': st.st_gid}
    assert devices.parse_device('/dev/null:/dev/nothing', 0)['container'] == '/dev/nothing'
    assert devices.parse_device('/dev/null:r', 0)['permissions'] == 'r'
    assert devices.parse_device('/dev/null:r', 0)['container'] == '/dev/null'
    assert devices.parse_device('/dev/zero:/dev/sub/z:mw', 0)['permissions'] == 'wm'  # stored in rwm order
    assert devices.parse_device('/dev/zero:/dev/sub/z:mw', 0)['minor'] == 5


@pytest.mark.parametrize('item, message', [
    ('dev/null', 'absolute'),
    ('/dev/null:/dev/n:rx', 'combination of r, w and m'),
    ('/dev/null:/tmp/n', 'a node under /dev'),
    ('/dev/null:/dev/pts/9', 'a node under /dev'),
    ('/dev/null:/dev', 'a node under /dev'),
    ('/dev/nonexistent-nsbox', 'No such file'),
    ('/dev', 'not a character or block device'),
    ('/dev/null:/dev/n:rw:x', 'expected /dev/HOST'),
])
def test_bad_devices_name_the_entry(item, message):
    with pytest.raises(ConfigError, match=message):
        options.check({'devices': [item]})


def test_one_device_per_path():
    with pytest.raises(ConfigError, match='more than one device at /dev/null'):
        options.check({'devices': ['/dev/null', '/dev/zero:/dev/null']})


def test_the_allow_list_and_its_config():
    cfg = resolved()
    assert cfg['devices'] == []
    rules = [str(r) for r in options.resources_of(cfg).devices]
    assert rules == ['c *:* m', 'b *:* m', 'c 1:3 rwm', 'c 1:5 rwm', 'c 1:7 rwm', 'c 1:8 rwm', 'c 1:9 rwm', 'c 5:0 rwm', 'c 5:1 rwm',
                     'c 5:2 rwm', 'c 136:* rwm', 'c 10:200 rwm']
    cfg = resolved(devices=['/dev/zero:/dev/z:r'])
    assert [str(r) for r in options.resources_of(cfg).devices] == rules  # /dev/zero is allowed already: one rule, merged
    fuse = {'type': 'c', 'major': 10, 'minor': 229, 'permissions': 'r'}
    assert devices.cgroup_rules({'devices': [fuse]})[-1] == DeviceRule.parse('c 10:229 r')
    assert [str(r) for r in options.resources_of(resolved(privileged=True)).devices] == ['a *:* rwm']
    merged = options.resources_of(resolved(devices=['/dev/null:/dev/n2:r', '/dev/zero:/dev/z:r', '/dev/zero:/dev/z2:w'])).devices
    assert [str(r) for r in merged] == rules  # one rule per device: what the kernel reads back
    assert options.differences(resolved(), cfg) == {'devices': 'recreate'}
    old = resolved()
    del old['devices']  # a config of an older version: no devices, the same allow list
    assert options.differences(old, resolved()) == {}
    assert [str(r) for r in options.resources_of(old).devices] == rules


def test_process_nodes(tmp_path):
    cfg = resolved(devices=['/dev/zero:/dev/z:r'])
    (node,) = devices.process_nodes(cfg)
    assert node['container'] == '/dev/z' and node['host'] == '/dev/zero' and (node['type'], node['major'], node['minor']) == ('c', 1, 5)
    assert mounts.check_devices([node]) == [node]
    with pytest.raises(ConfigError, match='a device is'):
        mounts.check_devices([dict(node, container='/etc/z')])
    # privileged: the host's nodes but the container's own (null, pts...) and mounts
    (tmp_path / 'pts').mkdir()
    (tmp_path / 'net').mkdir()
    (tmp_path / 'file').write_text('')
    os.symlink('/dev/null', str(tmp_path / 'link'))
    assert devices.host_nodes(str(tmp_path)) == []  # no mknod here: plain files and links are not devices
    names = [d['container'] for d in devices.host_nodes()]
    assert '/dev/null' not in names and not any(n.startswith('/dev/pts/') for n in names)
