# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Density: what a running container costs beside it (the supervisor's memory against conmon's),
and whether starting containers gets slower as more of them run."""
from __future__ import annotations

import json
import statistics
import subprocess

from common import LibraryStore, Measure, _run
from measures_ansible import _AnsiblePeers


def pss_kib(pid):
    """The proportional set size of one process (kB), from /proc/PID/smaps_rollup."""
    with open('/proc/%d/smaps_rollup' % pid) as f:
        for line in f:
            if line.startswith('Pss:'):
                return int(line.split()[1])
    raise RuntimeError('no Pss in /proc/%d/smaps_rollup' % pid)


def parent_pid(pid):
    with open('/proc/%d/stat' % pid) as f:
        return int(f.read().rsplit(')', 1)[1].split()[1])


def comm(pid):
    with open('/proc/%d/comm' % pid) as f:
        return f.read().strip()


class SupervisorMemory(_AnsiblePeers):
    """The process that holds each running container: nsbox's supervisor (no systemd) against podman's conmon.

    Under systemd (DESIGN D2) nsbox runs no process per container at all: the unit's main pid is
    the container's init. The figure here is the other case, the module's own supervisor.
    """

    name = 'supervisor memory per running container (PSS)'
    labels = {'nsbox': 'nsbox supervisor (python3)', 'podman': 'conmon'}
    unit = 'MB'
    count = 5

    def setup(self):
        super().setup()
        self.detail = '%d containers of busybox sleep on each side, PSS of the process holding each init (the init itself not counted)' % self.count

    def collect(self, runs):
        nsbox = self.runner.tasks([dict(self.nsbox_task('bench-mem-{{ item }}'), name='start', loop=list(range(self.count))),
                                   {'name': 'info', 'nsbox.runtime.container_info': {'data_root': '/var/lib/nsbox'}}])
        inits = [c['state']['pid'] for c in nsbox.task('info')['containers'] if c['name'].startswith('bench-mem-')]
        podman = self.runner.tasks([dict(self.podman_task('bench-mem-{{ item }}'), name='start', loop=list(range(self.count))),
                                    {'name': 'pids', 'ansible.builtin.command': {
                                        'argv': [self.wrapper] + self.cmd_args + ['inspect', '--format', '{{ "{{" }}.State.Pid{{ "}}" }}']
                                        + ['bench-mem-%d' % i for i in range(self.count)]}}])
        podman_inits = [int(line) for line in podman.task('pids')['stdout'].split()]
        holders = {'nsbox': [parent_pid(pid) for pid in inits], 'podman': [parent_pid(pid) for pid in podman_inits]}
        if len(holders['nsbox']) != self.count or len(holders['podman']) != self.count:
            raise RuntimeError('not all containers run: %r' % holders)
        self.names = {side: sorted({comm(pid) for pid in pids}) for side, pids in holders.items()}
        return {side: [pss_kib(pid) / 1024.0 for pid in pids] for side, pids in holders.items()}

    def extra(self):
        return {'holder processes': getattr(self, 'names', {}), 'under systemd (D2)': 'no nsbox process per container'}


# The runtime library as the container module calls it: start COUNT containers one after the other, timing each start.
LIBRARY_SERIES = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import config
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import converge
cfg = config.HostConfig({'data_root': sys.argv[2], 'state_dir': sys.argv[3], 'cgroup_parent': sys.argv[4]})
action, count = sys.argv[5], int(sys.argv[6])
times = []
for i in range(count):
    start = time.perf_counter()
    if action == 'start':
        converge.ensure(cfg, 'slope-%d' % i, {'image': 'busybox', 'command': ['sleep', '100000'], 'network_mode': 'none'}, state='started')
    else:
        converge.ensure(cfg, 'slope-%d' % i, state='absent', force_kill=True)
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


class StartSlope(Measure):
    """Start 50 containers, then 50 more, one at a time, all left running: is the 51st start as fast as the 1st?"""

    name = 'start 50 containers, then 50 more'
    ours = ('next',)
    peers = ('first',)
    labels = {'first': 'starts 1-50', 'next': 'starts 51-100 (50 running)'}
    count = 100

    def setup(self):
        self.store = LibraryStore('nsbox-bench-slope-')
        self.args = self.store.args
        self.detail = 'library ensure(state=started) of busybox sleep, network none, each start timed; 2-core machine'
        self.times = []

    def collect(self, runs):
        self.times = json.loads(_run(['/usr/bin/python3', '-c', LIBRARY_SERIES] + self.args + ['start', str(self.count)], timeout=1800))
        half = self.count // 2
        return {'first': self.times[:half], 'next': self.times[half:]}

    def extra(self):
        if len(self.times) < 2:
            return {}
        slope = statistics.linear_regression(range(len(self.times)), self.times).slope
        return {'slope over all starts (ms per running container)': round(slope * 1000, 3)}

    def teardown(self):
        if getattr(self, 'args', None):
            subprocess.run(['/usr/bin/python3', '-c', LIBRARY_SERIES] + self.args + ['remove', str(self.count)], capture_output=True,
                           check=False, timeout=1800)
        if getattr(self, 'store', None):
            self.store.remove()
