# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup module over SSH, on this host's real hierarchies (hybrid: v1 controllers + a cgroup2 tree).

Every test works under its own parent cgroup (``/nsbox-test-<random>``), never under the
machine's or another tool's cgroups, and removes it afterwards even on failure. Processes
are started by the test (the test host shares the machine's PID namespace) and killed by PID.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys

import pytest

from harness.containers import kill_and_remove
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.layout import Layout

LAYOUT = Layout.detect() if os.path.isdir('/sys/fs/cgroup') else None
pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2',
                                reason='these tests are for v1/hybrid hosts; v2 runs in the realhost lane')


@pytest.fixture
def parent():
    """A parent cgroup of the test's own; everything under it is killed and removed at the end."""
    name = '/nsbox-test-%s' % secrets.token_hex(4)
    yield name
    kill_and_remove(name)


@pytest.fixture
def procs():
    """Start processes for a test; each is killed by its PID at the end."""
    started = []

    def start(code):
        proc = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        started.append(proc)
        return proc
    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def cg(ansible, parent, check=False, diff=False, **args):
    return ansible.module('nsbox.runtime.cgroup', dict({'name': 'app', 'parent': parent}, **args), check=check, diff=diff)


def dirs_of(parent, name='app'):
    return [os.path.join(root, parent.lstrip('/'), name) for root in list(LAYOUT.v1.values()) + [LAYOUT.unified] if root]


def test_converge_change_live_check_mode_and_absent(ansible, testhost, parent, procs):
    limits = {'memory': '64m', 'cpus': 0.5, 'pids_limit': 50, 'cpu_shares': 512, 'cpuset_cpus': '0'}
    check = cg(ansible, parent, check=True, **limits)
    assert check['_status'] == 'changed' and check['actions'][0].startswith('created cgroup')
    assert not any(os.path.exists(d) for d in dirs_of(parent))
    res = cg(ansible, parent, diff=True, **limits)
    assert res['_status'] == 'changed', res
    assert res['cgroup']['version'] == LAYOUT.mode and res['cgroup']['driver'] == 'cgroupfs'
    assert res['cgroup']['resources'] == {'memory': 64 << 20, 'cpus': 0.5, 'cpu_period': 100000, 'pids_limit': 50,
                                          'cpu_shares': 512, 'cpuset_cpus': '0'}
    assert res['diff']['after']['memory'] == 64 << 20
    assert all(os.path.isdir(d) for d in dirs_of(parent))
    assert open(os.path.join(LAYOUT.v1['memory'], parent.lstrip('/'), 'app', 'memory.limit_in_bytes')).read().strip() == str(64 << 20)
    assert cg(ansible, parent, **limits)['_status'] == 'ok'
    # A process moved in stays when a limit changes live.
    sleeper = procs('import time; time.sleep(300)')
    moved = cg(ansible, parent, procs=[sleeper.pid], **limits)
    assert moved['_status'] == 'changed' and moved['cgroup']['procs'] == [sleeper.pid]
    assert cg(ansible, parent, procs=[sleeper.pid], **limits)['_status'] == 'ok'
    bigger = {**limits, 'memory': '128m', 'cpus': 1.5}
    predicted = cg(ansible, parent, check=True, **bigger)
    assert predicted['_status'] == 'changed' and sorted(predicted['actions']) == ['set cpus: 0.5 -> 1.5', 'set memory: 67108864 -> 134217728']
    assert open(os.path.join(LAYOUT.v1['cpu'], parent.lstrip('/'), 'app', 'cpu.cfs_quota_us')).read().strip() == '50000'
    live = cg(ansible, parent, **bigger)
    assert live['_status'] == 'changed' and live['cgroup']['procs'] == [sleeper.pid] and sleeper.poll() is None
    assert open(os.path.join(LAYOUT.v1['cpu'], parent.lstrip('/'), 'app', 'cpu.cfs_quota_us')).read().strip() == '150000'
    # absent: check mode predicts, then the process is killed and the cgroup removed everywhere.
    assert cg(ansible, parent, check=True, state='absent')['_status'] == 'changed' and sleeper.poll() is None
    gone = cg(ansible, parent, state='absent')
    assert gone['_status'] == 'changed' and gone['actions'] == ['killed 1 processes and removed cgroup %s/app' % parent]
    assert sleeper.wait(10) == -signal.SIGKILL
    assert not any(os.path.exists(d) for d in dirs_of(parent))
    assert cg(ansible, parent, state='absent')['_status'] == 'ok'


def test_memory_limit_oom_kills_and_is_counted(ansible, testhost, parent, procs):
    hog = procs('import sys; sys.stdin.readline(); b = bytearray(256 << 20); sys.stdout.write("survived")')
    res = cg(ansible, parent, memory='32m', memory_swap='32m', procs=[hog.pid])
    assert res['_status'] == 'changed', res
    hog.stdin.write(b'go\n')
    hog.stdin.flush()
    assert hog.wait(30) == -signal.SIGKILL
    stats = cg(ansible, parent, memory='32m', memory_swap='32m')['cgroup']['stats']
    assert stats['memory']['oom_kills'] >= 1 and stats['memory']['peak'] <= 32 << 20


def test_cpu_quota_throttles_a_busy_loop(ansible, testhost, parent, procs):
    spin = procs('import sys, time; sys.stdin.readline(); end = time.time() + 1.5\nwhile time.time() < end: pass')
    assert cg(ansible, parent, cpus=0.1, procs=[spin.pid])['_status'] == 'changed'
    spin.stdin.write(b'go\n')
    spin.stdin.flush()
    spin.wait(30)
    cpu = cg(ansible, parent, cpus=0.1)['cgroup']['stats']['cpu']
    assert cpu['nr_throttled'] >= 5 and cpu['throttled_usec'] > 500000, cpu
    # 1.5 s of wall time at 0.1 CPU: at most ~0.2 s of CPU.
    assert cpu['usage_usec'] < 400000, cpu


def test_pids_limit_stops_a_fork_bomb(ansible, testhost, parent, procs):
    code = ('import os, sys, time\nsys.stdin.readline()\nok = failed = 0\nfor _i in range(100):\n'
            '    try:\n        pid = os.fork()\n    except OSError:\n        failed += 1\n        continue\n'
            '    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    ok += 1\n'
            'print(ok, failed, flush=True)\ntime.sleep(30)\n')
    bomb = procs(code)
    assert cg(ansible, parent, pids_limit=10, procs=[bomb.pid])['_status'] == 'changed'
    bomb.stdin.write(b'go\n')
    bomb.stdin.flush()
    ok, failed = map(int, bomb.stdout.readline().split())
    assert ok == 9 and failed == 91  # the bomb itself is the tenth
    stats = cg(ansible, parent, pids_limit=10)['cgroup']['stats']
    assert stats['pids'] == 10
    assert cg(ansible, parent, state='absent')['_status'] == 'changed'
    assert bomb.wait(10) == -signal.SIGKILL


def test_device_rules(ansible, testhost, parent, procs):
    probe = procs('import sys\nsys.stdin.readline()\nfor dev in ("/dev/zero", "/dev/null"):\n'
                  '    try:\n        open(dev, "rb").close()\n        print(dev, "ok", flush=True)\n'
                  '    except OSError as exc:\n        print(dev, exc.errno, flush=True)\n')
    res = cg(ansible, parent, devices=['c 1:5 rwm'], procs=[probe.pid])
    assert res['_status'] == 'changed' and res['cgroup']['resources']['devices'] == ['c 1:5 rwm']
    assert cg(ansible, parent, devices=['c 1:5 rwm'])['_status'] == 'ok'
    probe.stdin.write(b'go\n')
    probe.stdin.flush()
    out, _err = probe.communicate(timeout=10)
    assert out.decode().split('\n')[:2] == ['/dev/zero ok', '/dev/null 1']  # EPERM


def test_block_io_limits(ansible, testhost, parent):
    dev = '/dev/vda' if os.path.exists('/dev/vda') else None
    if dev is None:
        pytest.skip('no /dev/vda on this machine to set block I/O limits on')
    res = cg(ansible, parent, device_read_bps=[{'path': dev, 'rate': '10m'}], device_write_iops=[{'path': dev, 'rate': 100}])
    assert res['_status'] == 'changed', res
    major, minor = os.major(os.stat(dev).st_rdev), os.minor(os.stat(dev).st_rdev)
    key = '%d:%d' % (major, minor)
    assert res['cgroup']['resources']['device_read_bps'] == {key: 10 << 20}
    assert cg(ansible, parent, device_read_bps=[{'path': dev, 'rate': '10m'}], device_write_iops=[{'path': dev, 'rate': 100}])['_status'] == 'ok'
    dropped = cg(ansible, parent, device_read_bps=[], device_write_iops=[{'path': dev, 'rate': 100}])
    assert dropped['_status'] == 'changed' and dropped['cgroup']['resources']['device_read_bps'] == {}


@pytest.mark.parametrize('args, message', [
    ({'memory': 'lots'}, "failed to parse memory: expected a size such as 512m"),
    ({'memory': '1m'}, 'failed to use memory: the minimum memory limit is 6m'),
    ({'cpus': 0}, 'failed to parse cpus: 0.0 is out of range'),
    ({'memory_swap': '1g'}, 'failed to use memory_swap: it is memory plus swap: set memory too'),
    ({'devices': ['x 1:3 rwm']}, "failed to parse device rule 'x 1:3 rwm'"),
    ({'cpuset_cpus': 'all'}, 'failed to parse cpuset_cpus'),
    ({'device_read_bps': [{'path': '/dev/null', 'rate': '1m'}]}, "failed to use device_read_bps device '/dev/null': not a block device"),
    ({'procs': [999999999]}, 'failed to move process 999999999: no such process'),
    ({'name': '../escape'}, "failed to use cgroup path"),
])
def test_bad_input_fails_clearly_and_creates_nothing(ansible, testhost, parent, args, message):
    res = cg(ansible, parent, **args)
    assert res['_status'] == 'failed' and res['msg'].startswith(message), res['msg']
    assert not any(os.path.exists(os.path.join(root, parent.lstrip('/'))) for root in list(LAYOUT.v1.values()) + [LAYOUT.unified] if root)


def test_a_limit_the_host_cannot_set_leaves_nothing(ansible, testhost, parent):
    """cpuset 99 does not exist here: the kernel refuses it after the cgroup was made, which is then undone."""
    res = cg(ansible, parent, memory='64m', cpuset_cpus='99')
    assert res['_status'] == 'failed' and res['msg'].startswith("failed to write '99' to "), res['msg']
    assert not any(os.path.exists(d) for d in dirs_of(parent))
