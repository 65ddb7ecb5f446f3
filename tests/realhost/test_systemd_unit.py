# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container as a systemd unit on a real systemd + cgroup v2 host, under the systemd cgroup driver.

One play (each task costs 10-17 s under emulation): the unit ``nsbox-unitweb.service`` runs the
container's init as its main process, and the container's cgroup is the unit's delegated child
``.../nsbox-unitweb.service/container`` with its memory limit; ``state: absent`` removes it all.
The rest of the unit behaviour is tested in tests/integration/test_systemd_units.py.
"""
from __future__ import annotations

from harness import images

FIXTURE_CACHE = '/var/tmp/nsbox-fixture-images'
CGROUP = '/sys/fs/cgroup/system.slice/nsbox-unitweb.service'


def test_a_unit_runs_the_container_in_its_delegated_cgroup(realhost, realhost_ansible):
    archive = images.FixtureImages(FIXTURE_CACHE).build().docker_archive
    web = {'name': 'unitweb', 'image': 'busybox', 'command': 'sleep 1000', 'memory': '64m', 'stop_timeout': 1, 'network_mode': 'none',
           'supervisor': 'auto'}
    tasks = [
        {'name': 'copy', 'ansible.builtin.copy': {'src': archive, 'dest': '/root/busybox.tar'}},
        {'name': 'load', 'nsbox.runtime.image': {'name': 'busybox', 'source': 'load', 'path': '/root/busybox.tar'}},
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
