# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container lifecycle on a systemd + pure cgroup v2 host (the systemd cgroup driver), in one play.

The guest's Python is slow under emulation, so the whole lifecycle is one playbook: load the
busybox image, run a job to its exit, run a long-lived container with limits, read its cgroup
from inside and out, change its memory live, stop it, remove both.
"""
from __future__ import annotations

from harness import images

FIXTURE_CACHE = '/var/tmp/nsbox-fixture-images'


def test_container_lifecycle_on_systemd_v2(realhost, realhost_ansible):
    archive = images.FixtureImages(FIXTURE_CACHE).build().docker_archive
    web = {'name': 'web', 'image': 'busybox', 'command': 'sleep 1000', 'memory': '64m', 'pids_limit': 32, 'stop_timeout': 1,
           'network_mode': 'none'}
    tasks = [
        {'name': 'copy', 'ansible.builtin.copy': {'src': archive, 'dest': '/root/busybox.tar'}},
        {'name': 'load', 'nsbox.runtime.image': {'name': 'busybox', 'source': 'load', 'path': '/root/busybox.tar'}},
        {'name': 'job', 'nsbox.runtime.container': {'name': 'job', 'image': 'busybox', 'command': ['sh', '-c', 'echo hi; exit 3'],
                                                    'network_mode': 'none'}},
        {'name': 'web', 'nsbox.runtime.container': web},
        {'name': 'cgroup', 'nsbox.runtime.container_exec': {'container': 'web', 'command': 'cat /proc/1/cgroup /proc/self/status'},
         'changed_when': False},
        {'name': 'live', 'nsbox.runtime.container': dict(web, memory='96m'), 'register': 'live'},
        {'name': 'memory.max', 'ansible.builtin.command': 'cat /sys/fs/cgroup/nsbox.slice/nsbox-{{ live.container.id }}.slice/memory.max',
         'changed_when': False},
        {'name': 'job info', 'nsbox.runtime.container_info': {'name': ['job'], 'log_lines': 5}, 'register': 'job',
         'until': "job.containers[0].state.status == 'exited'", 'retries': 30, 'delay': 1},
        {'name': 'stop', 'nsbox.runtime.container': dict(web, memory='96m', state='stopped')},
        {'name': 'web info', 'nsbox.runtime.container_info': {'name': ['web']}},
        {'name': 'remove', 'nsbox.runtime.container': {'name': '{{ item }}', 'state': 'absent'}, 'loop': ['web', 'job']},
    ]
    res = realhost_ansible.tasks(tasks)
    assert res.rc == 0 and not res.failed, res
    started = res.task('web')['container']
    cid, pid = started['id'], started['state']['pid']
    assert started['state']['running'] and started['state']['supervised']
    # Inside: its own cgroup namespace (the cgroup reads as its root), Docker's capabilities, no_new_privs.
    out = res.task('cgroup')['stdout']
    assert out.splitlines()[0] == '0::/' and 'CapEff:\t00000000a80425fb' in out and 'NoNewPrivs:\t1' in out
    live = res.task('live')
    assert live['_status'] == 'changed' and live['container']['state']['pid'] == pid
    assert res.task('memory.max')['stdout'] == str(96 << 20)
    job = res.task('job info')['containers'][0]
    assert job['state']['exit_code'] == 3 and [e['log'] for e in job['logs']] == ['hi\n']
    web_info = res.task('web info')['containers'][0]
    assert web_info['state']['status'] == 'exited' and web_info['state']['exit_code'] == 137
    # The systemd driver: a slice per container under nsbox.slice, gone with the container.
    assert realhost.ssh('ls /sys/fs/cgroup/nsbox.slice/ 2>/dev/null | grep -c %s || true' % cid[:12]).stdout.strip() == '0'
    assert realhost.ssh('grep -c /var/lib/nsbox/containers /proc/self/mountinfo || true').stdout.strip() == '0'
    assert realhost.ssh('ls /var/lib/nsbox/containers | grep -v "^.lock$" || true').stdout.strip() == ''
    assert realhost.ssh('kill -0 %d' % pid, check=False).returncode != 0
