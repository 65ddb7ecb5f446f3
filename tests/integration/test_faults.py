# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults a production host meets (issue 19), for real on a test host of their own.

A full disk: the test host's data-root is a small tmpfs of its own (in its mount namespace, gone with it), filled by
a container writing to a volume on it. Stopping, removing and recording an exit must work then, and every error
must say which filesystem is full."""
from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import tempfile
import threading
import time

import pytest

from harness import images
from harness.containers import DATA_ROOT, LAYOUT, NOTHING, V1_ONLY, private_box, teardown
from harness.registry import Registry

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)


@pytest.fixture(scope='module')
def full_host(reaper, fixtures):
    def small_data_root(host):
        host.ssh('mkdir -p %s && mount -t tmpfs -o size=48m,mode=0711 nsbox-full %s' % (DATA_ROOT, DATA_ROOT))
    with private_box(reaper, 'fullhost', {'busybox': fixtures.docker_archive}, before=small_data_root) as box:
        yield box  # the tmpfs goes with the test host's mount namespace


def _free(box):
    return int(box.sh('df --output=avail -k %s | tail -1' % DATA_ROOT))


def _until(box, name, accept, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        info = box.info(name)
        if accept(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.3)


def test_a_full_disk_takes_nothing_down_and_loses_no_exit_code(full_host):
    box = full_host
    crash = dict(name='crash', image='busybox', command=['sh', '-c', 'sleep 6; exit 3'], restart_policy='on-failure:1', stop_timeout=0)
    assert box.run(**crash)['_status'] == 'changed'
    filler = dict(name='filler', image='busybox', command=['sh', '-c', 'dd if=/dev/zero of=/data/big bs=64k 2>/dev/null; sleep 3600'],
                  volumes=['fill:/data'], stop_timeout=0)
    assert box.run(**filler)['_status'] == 'changed'
    deadline = time.monotonic() + 30
    while _free(box) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _free(box) == 0, 'the volume did not fill the data-root'
    # crash ends while the disk is full: its exit code is recorded and its policy restarts it, once.
    info = _until(box, 'crash', lambda i: i['state']['restart_count'] == 1 and i['state']['status'] == 'exited', timeout=40)
    assert (info['state']['status'], info['state']['exit_code'], info['state']['restart_count']) == ('exited', 3, 1), info['state']
    # Anything that needs new room says where there is none, and changes nothing.
    other = box.run(name='other', image='busybox', command='sleep 1')
    assert other['_status'] == 'failed' and 'no space left on %s' % DATA_ROOT in other['msg'], other
    assert box.info('other') is None
    # Stopping and removing work on the full disk, from the module and from the command line.
    res = box.run(name='crash', state='absent')
    assert res['_status'] == 'changed', res
    out = box.host.ssh('nsbox stop filler && nsbox rm filler', check=False)
    assert out.returncode == 0 and 'Traceback' not in out.stderr, (out.stdout, out.stderr)
    assert box.ansible.module('nsbox.runtime.volume', {'name': 'fill', 'state': 'absent'})['_status'] == 'changed'
    assert _free(box) > 40000  # the volume's data went with it


# -- SIGKILL of a module at random points (a fixed seed, a bounded count) -------------------------------------------
SEED = 19
KILLS_PER_OP = 2


@pytest.fixture(scope='module')
def fault_host(reaper, fixtures):
    """A test host with a network namespace of its own (bridges)."""
    with private_box(reaper, 'faulthost', {'busybox': fixtures.docker_archive}, netns=True) as box:
        yield box


@pytest.fixture(scope='module')
def pull_host(reaper, fixtures):
    """A test host in the machine's network namespace (the loopback registry is there), and the registry."""
    with Registry() as reg, private_box(reaper, 'pullhost', {}) as box:
        images.push(reg, fixtures.ref('multilayer'), 'nsbox/multilayer', 'latest', creds=reg.creds)
        box.ref = '%s/nsbox/multilayer:latest' % reg.host
        yield box


def _module_pids(host, since):
    """Module processes of this test host (Ansible's pipelined ``python3``, in its mount namespace) started after ``since``."""
    found = []
    for entry in filter(str.isdigit, os.listdir('/proc')):
        try:
            if os.readlink('/proc/%s/ns/mnt' % entry) != host.mnt_ns:
                continue
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                argv = f.read().split(b'\0')
            with open('/proc/%s/stat' % entry) as f:
                started = int(f.read().rsplit(')', 1)[1].split()[19])
        except (OSError, ValueError, IndexError):
            continue
        if argv[:2] == [b'/usr/bin/python3', b''] and started >= since:
            found.append(int(entry))
    return found


def _ticks():
    with open('/proc/uptime') as f:
        return int(float(f.read().split()[0]) * os.sysconf('SC_CLK_TCK'))


def _killed_run(box, task, delay):
    """``task`` run, and its module SIGKILLed ``delay`` seconds after it starts on the host (if it is still running then).
    A killed module never removes its AnsiballZ payload dir: TMPDIR puts it in one of this run's own, removed here."""
    since, done = _ticks(), {}
    payload_tmp = tempfile.mkdtemp(prefix='nsbox-killed-')
    task = dict(task, ignore_errors=True, environment={'TMPDIR': payload_tmp})
    try:
        return _kill_during(box, task, delay, since, done)
    finally:
        shutil.rmtree(payload_tmp, ignore_errors=True)


def _kill_during(box, task, delay, since, done):
    worker = threading.Thread(target=lambda: done.update(res=box.ansible.tasks([task])))
    worker.start()
    killed = []
    deadline = time.monotonic() + 60
    while worker.is_alive() and not killed and time.monotonic() < deadline:
        pids = _module_pids(box.host, since)
        if pids:
            time.sleep(delay)
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        time.sleep(0.005)
    worker.join()
    return killed


def _ops():
    """(name, tasks that make its precondition, the task to kill, the task that undoes it)."""
    ctr = {'name': 'fi', 'image': 'busybox', 'command': 'sleep 3600', 'stop_timeout': 0, 'published_ports': ['18090:80'],
           'networks': ['fi-net']}
    net = {'nsbox.runtime.network': {'name': 'fi-net', 'subnet': '10.90.0.0/24'}}
    gone = {'nsbox.runtime.container': {'name': 'fi', 'state': 'absent', 'force_kill': True}}
    return [
        ('network create', [], net, {'nsbox.runtime.network': {'name': 'fi-net', 'state': 'absent'}}),
        ('create', [net], {'nsbox.runtime.container': dict(ctr, state='present')}, gone),
        ('start', [net, {'nsbox.runtime.container': dict(ctr, state='present')}], {'nsbox.runtime.container': ctr}, gone),
        ('stop', [net, {'nsbox.runtime.container': ctr}], {'nsbox.runtime.container': dict(ctr, state='stopped')}, gone),
        ('remove', [net, {'nsbox.runtime.container': ctr}], gone, gone),
    ]


def _kill_rounds(box, rng, name, before, task, undo, after=()):
    for _round in range(KILLS_PER_OP):
        if before:
            assert box.ansible.tasks(before).rc == 0, name
        _killed_run(box, task, rng.uniform(0.0, 1.2))
        again = box.ansible.tasks([dict(task, name='op')])
        assert again.rc == 0, (name, again.task('op'))
        assert box.ansible.tasks([undo] + list(after)).rc == 0, name
        left = teardown(box.host, box.parent, everything=False)
        assert left == NOTHING, (name, left)
        assert box.sh('ls -A %s/tmp 2>/dev/null || true' % DATA_ROOT) == '', name


def test_a_module_killed_anywhere_is_repaired_by_the_next_run(fault_host):
    """Issue 19: kill -9 of a module at random points of network create, create, start, stop and remove; the next run
    converges, and once undone nothing is left (containers, mounts, supervisors, links, the store's tmp/)."""
    rng = random.Random(SEED)
    for name, before, task, undo in _ops():
        after = [] if name == 'network create' else [{'nsbox.runtime.network': {'name': 'fi-net', 'state': 'absent'}}]
        _kill_rounds(fault_host, rng, name, before, task, undo, after)


def test_a_pull_killed_anywhere_is_repaired_by_the_next_run(pull_host):
    rng = random.Random(SEED + 1)
    _kill_rounds(pull_host, rng, 'pull', [], {'nsbox.runtime.image': {'name': pull_host.ref, 'insecure': True}},
                 {'nsbox.runtime.image': {'name': pull_host.ref, 'state': 'absent'}})
