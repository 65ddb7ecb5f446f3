# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""container/spec.py: the typed container spec is the stored record, typed, and back unchanged."""
from __future__ import annotations

import dataclasses
import json

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container.spec import (
    ContainerSpec, Healthcheck, Mount, NetworkAttachment, PublishedPort, RestartPolicy, Ulimit, Userns)

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}
CONFIG = {'Cmd': ['sh'], 'Env': ['X=1'], 'Labels': {'l': '1'}, 'StopSignal': 'SIGINT',
          'Healthcheck': {'Test': ['CMD', 'true'], 'Interval': 2000000000}}
CASES = [
    {},
    {'command': 'sleep 1', 'env': {'A': 'b'}, 'working_dir': '/srv', 'user': 'nobody', 'hostname': 'web', 'group_add': ['audio']},
    {'volumes': ['/tmp:/x:ro', 'vol:/y:nocopy', '/srv:/z:rshared'], 'mounts': [{'type': 'tmpfs', 'target': '/t', 'tmpfs_size': '1m',
                                                                               'tmpfs_mode': '1777'}]},
    {'memory': '64m', 'cpus': 1.5, 'pids_limit': 10, 'memory_swap': '128m', 'blkio_weight': 100},
    {'published_ports': ['8080:80', '127.0.0.1:53:53/udp'], 'networks': [{'name': 'n1', 'aliases': ['b', 'a'], 'ipv4_address': '10.0.0.5'}]},
    {'restart_policy': 'on-failure:3', 'healthcheck': {'test': ['CMD', 'true'], 'interval': '1s'}, 'ulimits': ['nofile:10:20'],
     'log': {'max_size': '1m', 'max_files': 3}, 'stop_signal': 'quit', 'stop_timeout': 3},
    {'uidmap': ['0:100000:65536'], 'cap_add': ['net_admin'], 'security_opt': ['no-new-privileges=false'], 'sysctls': {'net.ipv4.ip_forward': '1'}},
    {'privileged': True, 'devices': ['/dev/null:/dev/mynull:r'], 'read_only': True, 'tty': True, 'init': True, 'oom_score_adj': -5},
]


def record(opts):
    return options.resolve('c', options.check(opts, {'systemd': False}), IMAGE, CONFIG)


@pytest.mark.parametrize('opts', CASES)
def test_a_record_round_trips_unchanged(opts):
    stored = json.loads(json.dumps(record(opts)))  # as config.json gives it back
    spec = ContainerSpec.of(stored)
    assert json.dumps(spec.record()) == json.dumps(stored)  # the same fields, values and order
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.name = 'other'


def test_nested_values_are_typed():
    spec = ContainerSpec.of(record(CASES[2]))
    assert spec.mounts[0] == Mount('tmpfs', '/t', tmpfs_size=1 << 20, tmpfs_mode=0o1777)  # mounts, then volumes
    assert spec.mounts[1] == Mount('bind', '/x', True, '/tmp')
    assert spec.mounts[2] == Mount('volume', '/y', False, 'vol', no_copy=True) and spec.mounts[3].propagation == 'rshared'
    spec = ContainerSpec.of(record(CASES[4]))
    assert spec.published_ports == (PublishedPort('127.0.0.1', 53, 53, 'udp'), PublishedPort('0.0.0.0', 8080, 80, 'tcp'))  # by host port
    assert spec.networks == (NetworkAttachment('n1', '10.0.0.5', ('a', 'b')),)
    spec = ContainerSpec.of(record(CASES[5]))
    assert spec.restart_policy == RestartPolicy('on-failure', 3) and spec.ulimits == (Ulimit('nofile', 10, 20),)
    assert spec.healthcheck == Healthcheck(('CMD', 'true'), 1.0, 30.0, 0.0, 3) and spec.stop_signal == 'SIGQUIT'
    assert ContainerSpec.of(record(CASES[6])).userns.mode == 'private'


def test_a_record_of_an_older_version_takes_the_old_values():
    stored = record({})
    for field in options.ADDED_FIELDS:
        del stored[field]
    spec = ContainerSpec.of(stored)
    assert spec.userns == Userns('host') and spec.restart_policy == RestartPolicy() and spec.networks == () and spec.supervisor == 'nsbox'
    assert spec.record() == dict(record({}), networks=[], userns={'mode': 'host', 'uid_map': None, 'gid_map': None},
                                 healthcheck=None, **{k: v for k, v in options.ADDED_FIELDS.items() if k not in ('networks', 'userns', 'healthcheck')})


def test_an_image_volume_nothing_is_mounted_on_is_said():
    """Issue 20 item 7: an image's VOLUME (PostgreSQL's data directory) was ignored without a word."""
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import converge  # pylint: disable=import-outside-toplevel
    image_config = {'Volumes': {'/var/lib/postgresql/data': {}, '/srv/': {}}}
    warned = converge.image_volume_warnings(image_config, record({}))
    assert len(warned) == 2 and warned[1].startswith('the image declares VOLUME /var/lib/postgresql/data, and nothing is mounted there')
    covered = record({'volumes': ['pgdata:/var/lib/postgresql/data', '/tmp:/srv']})
    assert converge.image_volume_warnings(image_config, covered) == []
    assert converge.image_volume_warnings({}, covered) == []
