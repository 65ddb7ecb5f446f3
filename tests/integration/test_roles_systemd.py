# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles on a host where systemd is PID 1 (harness/systemd_host.py), over SSH.

With the default ``nsbox_containers_supervisor: auto`` every declared container becomes an enabled
unit ``nsbox-NAME.service``, ``depends_on`` becomes ``Requires=``/``After=`` on the other's unit, an
unchanged re-run changes nothing, and prune removes an undeclared container with its unit.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from harness import images
from harness.containers import FIXTURE_CACHE
from harness.runner import AnsibleRunner
from harness.systemd_host import SYSTEMD, SystemdHost, UNIFIED

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir(UNIFIED) or not os.path.exists(SYSTEMD)
                                or not all(shutil.which(c) for c in ('unshare', 'pivot_root', 'ip')),
                                reason='root, a cgroup2 hierarchy at %s, systemd (not as PID 1), unshare, pivot_root and ip' % UNIFIED)
LOOP = "sh -c 'trap \"exit 0\" TERM; while :; do sleep 0.2; done'"


@pytest.fixture(scope='module')
def sd(reaper):
    fixtures = images.FixtureImages(FIXTURE_CACHE).build()
    host = SystemdHost('sdroles').start()
    ansible = AnsibleRunner([host])
    try:
        yield host, ansible, fixtures.docker_archive
    finally:
        ansible.close()
        host.stop()
    reaper.check()


def converge(ansible, archive, containers, prune=False):
    role_vars = {
        'nsbox_host_packages_install': False,   # the test host shares the machine's /usr
        'nsbox_host_kernel_modules_load': False,
        'nsbox_default_network_mode': 'none',   # no bridge: this test is about units
        'nsbox_images': [{'name': 'busybox', 'source': 'load', 'path': archive}],
        'nsbox_containers': containers,
        'nsbox_containers_prune': prune,
    }
    return ansible.playbook([{'hosts': 'testhosts', 'gather_facts': False, 'vars': role_vars,
                              'roles': [{'role': 'nsbox.runtime.host'}, {'role': 'nsbox.runtime.containers'}]}])


def show(host, unit, *props):
    out = host.ssh('systemctl show %s -p %s' % (unit, ','.join(props))).stdout
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


DECLARED = [{'name': 'client', 'image': 'busybox', 'command': LOOP, 'depends_on': ['web']},
            {'name': 'web', 'image': 'busybox', 'command': LOOP, 'restart_policy': 'always'}]


def test_containers_become_enabled_units_in_depends_on_order(sd):
    host, ansible, archive = sd
    res = converge(ansible, archive, DECLARED)
    assert res.rc == 0, res
    loop = [r['result'] for r in res.records if 'Converge the declared containers' in r['task']][0]
    assert [item['name'] for item in loop['containers']] == ['web', 'client']
    for name in ('web', 'client'):
        st = show(host, 'nsbox-%s.service' % name, 'ActiveState', 'UnitFileState', 'Type', 'MainPID')
        assert st['ActiveState'] == 'active' and st['UnitFileState'] == 'enabled' and st['Type'] == 'notify', st
        assert int(st['MainPID']) > 0
    deps = show(host, 'nsbox-client.service', 'Requires', 'After')
    assert 'nsbox-web.service' in deps['Requires'] and 'nsbox-web.service' in deps['After'], deps


def test_unchanged_rerun_changes_nothing(sd):
    _host, ansible, archive = sd
    res = converge(ansible, archive, DECLARED)
    assert res.rc == 0 and res.changed == [], [(r['task'], r['host']) for r in res.changed]


def test_prune_removes_the_undeclared_container_and_its_unit(sd):
    host, ansible, archive = sd
    res = converge(ansible, archive, [DECLARED[1]], prune=True)
    assert res.rc == 0, res
    deadline = time.monotonic() + 30
    while host.ssh('test -e /etc/systemd/system/nsbox-client.service', check=False).returncode == 0 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert host.ssh('test -e /etc/systemd/system/nsbox-client.service', check=False).returncode != 0
    assert show(host, 'nsbox-web.service', 'ActiveState')['ActiveState'] == 'active'
    assert 'client' not in host.ssh('nsbox ps -a').stdout
