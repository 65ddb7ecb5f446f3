# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cgroup v2 manager's core on this host's cgroup2 tree: procs, freeze, kill, subtree_control, device programs.

On a hybrid host the cgroup2 tree carries no controller nsbox manages, but everything that is
not a controller is there for real. The v2 controllers run in the realhost lane.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups import devices, v2
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.layout import Layout
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import CgroupError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.resources import Resources
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import devices as container_devices

LAYOUT = Layout.detect() if os.path.isdir('/sys/fs/cgroup') else None
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or LAYOUT is None or not LAYOUT.unified, reason='needs root and a cgroup2 tree')


@pytest.fixture
def mgr():
    top = '/nsbox-test-%s' % secrets.token_hex(4)
    manager = v2.CgroupV2Manager(top + '/box', LAYOUT.unified, may_enable_root=False)
    yield manager
    v2.CgroupV2Manager(top, LAYOUT.unified).remove()
    assert not os.path.exists(os.path.join(LAYOUT.unified, top.lstrip('/')))


@pytest.fixture
def proc():
    started = []

    def start(code):
        p = subprocess.Popen([sys.executable, '-c', code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        started.append(p)
        return p
    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
        p.wait()


def cpu_ticks(pid):
    fields = open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_procs_freeze_thaw_kill(mgr, proc):
    spin = proc('while True: pass')
    mgr.create()
    mgr.add_procs([spin.pid])
    assert mgr.procs() == [spin.pid]
    assert Resources.from_options({'frozen': True}) and mgr.apply(Resources.from_options({'frozen': True})) == {'frozen': (False, True)}
    before = cpu_ticks(spin.pid)
    time.sleep(0.3)
    assert cpu_ticks(spin.pid) == before  # frozen: no CPU time at all
    assert mgr.apply(Resources.from_options({'frozen': False})) == {'frozen': (True, False)}
    time.sleep(0.3)
    assert cpu_ticks(spin.pid) > before
    mgr.kill()
    assert spin.wait(5) == -signal.SIGKILL and mgr.procs() == []


def test_kill_reaches_child_cgroups(mgr, proc):
    child = v2.CgroupV2Manager(mgr.path + '/inner', LAYOUT.unified)
    a, b = proc('import time; time.sleep(60)'), proc('import time; time.sleep(60)')
    mgr.create()
    child.create()
    mgr.add_procs([a.pid])
    child.add_procs([b.pid])
    assert mgr.remove() is True
    assert a.wait(5) == b.wait(5) == -signal.SIGKILL and not os.path.exists(mgr.dir)


def test_subtree_control_never_touches_the_root(mgr):
    mgr.create()
    root_before = open(os.path.join(LAYOUT.unified, 'cgroup.subtree_control')).read()
    offered = set(open(os.path.join(LAYOUT.unified, 'cgroup.controllers')).read().split()) - set(root_before.split())
    for controller in sorted(offered)[:1] or ['memory']:
        with pytest.raises(CgroupError, match='failed to enable controllers %s' % controller):
            mgr.enable_controllers({controller})
    assert open(os.path.join(LAYOUT.unified, 'cgroup.subtree_control')).read() == root_before
    mgr.enable_controllers(set())  # nothing asked, nothing written


def test_device_program_denies_and_reads_back(mgr, proc):
    probe = proc('import sys\nfor line in sys.stdin:\n    try:\n        open(line.strip(), "rb").close()\n        print("ok", flush=True)\n'
                 '    except OSError as exc:\n        print(exc.errno, flush=True)\n')
    only_zero = Resources.from_options({'devices': ['c 1:5 r']})
    assert mgr.apply(only_zero) == {'devices': ([], only_zero.devices)}
    mgr.add_procs([probe.pid])

    def try_open(path):
        probe.stdin.write(path.encode() + b'\n')
        probe.stdin.flush()
        return probe.stdout.readline().decode().strip()
    assert try_open('/dev/zero') == 'ok' and try_open('/dev/null') == '1'
    assert mgr.plan(only_zero) == {}
    both = Resources.from_options({'devices': ['c 1:5 r', 'c 1:3 rw']})
    assert list(mgr.apply(both)) == ['devices']
    assert try_open('/dev/null') == 'ok'
    assert [name for _id, name in devices.attached(mgr.dir)] == [devices.rules_name(both.devices)]  # the old one was detached
    assert mgr.plan(both) == {}


def test_a_containers_device_list_as_a_program(mgr, proc, tmp_path):
    """Every container's standard allow list (launch/devices.py) as the eBPF program of a pure v2 host: the pseudo
    devices open, a disk and a host device not passed do not (EPERM), any node may be made (m) but not opened."""
    probe = proc('import os, sys\nfor line in sys.stdin:\n    try:\n        cmd, path = line.split()\n'
                 '        if cmd == "mknod":\n            os.mknod(path, 0o600 | 0o060000, os.makedev(7, 0))\n'
                 '        else:\n            os.close(os.open(path, os.O_RDONLY))\n        print("ok", flush=True)\n'
                 '    except OSError as exc:\n        print(exc.errno, flush=True)\n')
    rules = Resources(devices=container_devices.cgroup_rules({}))
    mgr.apply(rules)
    mgr.add_procs([probe.pid])

    def ask(cmd, path):
        probe.stdin.write(('%s %s\n' % (cmd, path)).encode())
        probe.stdin.flush()
        return probe.stdout.readline().decode().strip()
    for path in ('/dev/null', '/dev/zero', '/dev/urandom', '/dev/full'):
        assert ask('open', path) == 'ok', path
    for path in ('/dev/loop0', '/dev/fuse', '/dev/kmsg'):
        if os.path.exists(path):
            assert ask('open', path) == '1', path  # EPERM
    node = str(tmp_path / 'loop')
    assert ask('mknod', node) == 'ok' and ask('open', node) == '1'
    assert mgr.plan(rules) == {}
    fuse = Resources(devices=container_devices.cgroup_rules({'devices': [{'type': 'c', 'major': 10, 'minor': 229, 'permissions': 'rw'}]}))
    mgr.apply(fuse)
    if os.path.exists('/dev/fuse'):
        assert ask('open', '/dev/fuse') == 'ok'
