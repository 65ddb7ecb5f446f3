# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers as systemd units on a real systemd + cgroup v2 host, under the systemd cgroup driver.

Few plays, few tasks (each task costs 10-17 s under emulation). First: the unit
``nsbox-unitweb.service`` runs the container's init as its main process, and the container's cgroup
is the unit's delegated child ``.../nsbox-unitweb.service/container`` with its memory limit;
``state: absent`` removes it all. Then a real reboot of the VM: the enabled container's unit starts
it again at boot, the disabled one is reported exited (its recorded pid belongs to the old boot).
The rest of the unit behaviour is tested in tests/integration/test_systemd_units.py.
"""
from __future__ import annotations

import json

import pytest

from harness import images

FIXTURE_CACHE = '/var/tmp/nsbox-fixture-images'
CGROUP = '/sys/fs/cgroup/system.slice/nsbox-unitweb.service'


@pytest.fixture(scope='module')
def busybox(realhost_ansible):
    """The busybox image, loaded once for this module's tests."""
    archive = images.FixtureImages(FIXTURE_CACHE).build().docker_archive
    res = realhost_ansible.tasks([
        {'name': 'copy', 'ansible.builtin.copy': {'src': archive, 'dest': '/root/busybox.tar'}},
        {'name': 'load', 'nsbox.runtime.image': {'name': 'busybox', 'source': 'load', 'path': '/root/busybox.tar'}},
    ])
    assert res.rc == 0 and not res.failed, res
    return 'busybox'


def test_a_unit_runs_the_container_in_its_delegated_cgroup(realhost, realhost_ansible, busybox):
    web = {'name': 'unitweb', 'image': busybox, 'command': 'sleep 1000', 'memory': '64m', 'stop_timeout': 1, 'network_mode': 'none',
           'supervisor': 'auto'}
    tasks = [
        {'name': 'web', 'nsbox.runtime.container': web},
        {'name': 'look', 'ansible.builtin.shell': 'cat {0}/container/memory.max {0}/container/cgroup.procs; echo -; '
                                                  'systemctl show -p MainPID --value nsbox-unitweb.service; systemctl is-enabled nsbox-unitweb.service'
                                                  .format(CGROUP), 'changed_when': False},
        {'name': 'remove', 'nsbox.runtime.container': {'name': 'unitweb', 'state': 'absent'}},
    ]
    res = realhost_ansible.tasks(tasks)
    assert res.rc == 0 and not res.failed, res
    started = res.task('web')
    pid = started['container']['state']['pid']
    assert started['unit']['active'] and started['unit']['main_pid'] == pid, started
    memory_max, procs, rest = res.task('look')['stdout'].split('\n', 1)[0], *res.task('look')['stdout'].split('\n', 1)[1].split('-\n')
    assert memory_max == str(64 << 20)
    assert str(pid) in procs.split()
    assert rest.split() == [str(pid), 'enabled']
    assert res.task('remove')['actions'][0] == 'removed unit nsbox-unitweb.service'
    assert realhost.ssh('test -e /etc/systemd/system/nsbox-unitweb.service || test -d %s || echo gone' % CGROUP).stdout.strip() == 'gone'


def test_a_reboot_brings_back_the_enabled_container_only(realhost, realhost_ansible, busybox):
    base = {'image': busybox, 'command': 'sleep 100000', 'stop_timeout': 1, 'network_mode': 'none', 'supervisor': 'systemd'}
    res = realhost_ansible.tasks([
        {'name': 'on', 'nsbox.runtime.container': dict(base, name='booton', enabled=True)},
        {'name': 'off', 'nsbox.runtime.container': dict(base, name='bootoff', enabled=False)},
    ])
    assert res.rc == 0 and not res.failed, res
    assert res.task('on')['unit']['active'] and res.task('off')['unit']['active'], res
    assert res.task('on')['unit']['enabled'] and not res.task('off')['unit']['enabled'], res
    old_boot = realhost.boot_id()
    try:
        new_boot = realhost.reboot()
        assert new_boot != old_boot
        main_pid = realhost.ssh('systemctl show -p MainPID --value nsbox-booton.service').stdout.strip()
        active = realhost.ssh('systemctl is-active nsbox-booton.service nsbox-bootoff.service', check=False).stdout.split()
        assert active == ['active', 'inactive'], active
        found = {c['name']: c for c in json.loads(realhost.ssh('nsbox inspect booton bootoff').stdout)}
        on, off = found['booton'], found['bootoff']
        assert on['state']['status'] == 'running' and on['state']['running'], on['state']
        assert str(on['state']['pid']) == main_pid, (on['state'], main_pid)
        recorded = json.loads(realhost.ssh('cat /var/lib/nsbox/containers/%s/state.json' % on['id']).stdout)
        assert recorded['boot_id'] == new_boot and recorded['pid'] == on['state']['pid'], recorded
        # Stopped at shutdown (or, had that not been recorded, re-derived from pid + start time + boot id: D2),
        # never a stale "running".
        assert off['state']['status'] == 'exited' and not off['state']['running'] and off['state']['pid'] is None, off['state']
    finally:
        res = realhost_ansible.tasks([{'name': 'rm ' + n, 'nsbox.runtime.container': {'name': n, 'state': 'absent'}} for n in ('booton', 'bootoff')])
    assert res.rc == 0 and not res.failed, res
    assert realhost.ssh('ls /etc/systemd/system | grep -c nsbox-boot', check=False).stdout.strip() == '0'
