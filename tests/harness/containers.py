# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A test host set up for containers, and the cleanup every container test relies on.

Each test module's containers live under a cgroup parent of its own (``/nsbox-test-<hex>``, set
in the host config). ``teardown`` kills whatever is left in that parent by pid, removes it,
unmounts what is left under the data-root, and says what there was: a test that leaves anything
fails (the box fixtures assert ``NOTHING``).

Only what the tests made counts. A test host that shares the machine's network namespace sees the
machine's links, and the machine may run nsbox containers of its own (a demo kept running, with its
bridge and veths): ``setup`` takes a snapshot of the links and mounts there are, and ``leftovers``
counts only those that are not in it. Each report moves the snapshot on, so a leak is reported by
the test that made it, once. Nothing here removes anything by name: links are only reported, and
what is removed is the test's own (its cgroup parent, its host's private data-root and mounts).
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import time
import weakref

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.layout import Layout

from . import cgroupfs

FIXTURE_CACHE = '/var/tmp/nsbox-fixture-images'
LAYOUT = Layout.detect() if os.path.isdir('/sys/fs/cgroup') else None
DATA_ROOT = '/var/lib/nsbox'
NOTHING = {'supervisors': [], 'mounts': [], 'containers': [], 'volumes': [], 'links': []}
LINK_PREFIXES = ('nsv', 'nsbr-', 'nsbox0')  # a container's veth, a user network's bridge, the default bridge
V1_ONLY = 'cgroup cleanup here is for v1/hybrid hosts'
# {host: {'links': [...], 'mounts': [...]}}: what the host had before its tests ran (setup), moved on by each report.
_BEFORE = weakref.WeakKeyDictionary()


def cgroup_roots():
    return list(LAYOUT.v1.values()) + ([LAYOUT.unified] if LAYOUT.unified else [])


def kill_and_remove(parent):
    """SIGKILL every process under cgroup ``parent`` (every hierarchy), then remove its directories, deepest first."""
    for root in cgroup_roots():
        cgroupfs.remove_tree(os.path.join(root, parent.lstrip('/')), kill=True, wait=4.0)


def supervisors(host):
    """Pids of this test host's supervisors: `python -I -B <lib> supervise ID`, after their exec `... <lib> monitor ID`.

    Only those in the test host's mount namespace: the pid namespace is the machine's, and another
    test host (a parallel run) has supervisors of its own that this one must neither count nor kill.
    """
    code = ('import os\n'
            'mine = os.readlink("/proc/self/ns/mnt")\n'
            'for p in os.listdir("/proc"):\n'
            '    try:\n'
            '        argv = open("/proc/%s/cmdline" % p, "rb").read().split(b"\\0")\n'
            '        ns = os.readlink("/proc/%s/ns/mnt" % p)\n'
            '    except OSError:\n'
            '        continue\n'
            '    if ns == mine and any(a.startswith(b"/usr/local/lib/nsbox/") and b in (b"supervise", b"monitor") for a, b in zip(argv, argv[1:])):\n'
            '        print(p)\n')
    out = host.ssh('python3 -c %s' % shlex.quote(code), check=False).stdout
    return [int(p) for p in out.split()]


def mounts(host, under=DATA_ROOT + '/containers'):
    out = host.ssh('grep -F " %s/" /proc/self/mountinfo || true' % under).stdout
    return [line.split()[4] for line in out.splitlines() if line.strip()]


class Box:
    """The test host set up for containers, with helpers."""

    def __init__(self, host, ansible, parent):
        self.host, self.ansible, self.parent = host, ansible, parent

    def run(self, check=False, diff=False, **args):
        return self.ansible.module('nsbox.runtime.container', args, check=check, diff=diff)

    def create_many(self, containers, base=None):
        """``{name: args}`` (each over ``base``) created and started in one play; every one must change."""
        res = self.ansible.tasks([{'name': name, 'nsbox.runtime.container': dict(base or {}, name=name, **args)}
                                  for name, args in containers.items()])
        for name in containers:
            assert res.task(name)['_status'] == 'changed', res.task(name)
        return res

    def remove_many(self, names):
        """Containers ``names`` removed (killed at once) in one play."""
        res = self.ansible.tasks([{'nsbox.runtime.container': {'name': n, 'state': 'absent', 'force_kill': True}} for n in names])
        assert res.rc == 0, res

    def info(self, name, log_lines=0):
        res = self.ansible.module('nsbox.runtime.container_info', {'name': [name], 'log_lines': log_lines})
        return res['containers'][0] if res['containers'] else None

    def infos(self, names):
        """container_info of several containers in one run: {name: container}."""
        res = self.ansible.module('nsbox.runtime.container_info', {'name': list(names)})
        return {c['name']: c for c in res['containers']}

    def exec(self, name, command, **args):
        res = self.ansible.module('nsbox.runtime.container_exec', dict({'container': name, 'command': command}, **args))
        assert res['_status'] == 'changed', res
        return res

    def execs(self, name, commands):
        """Several container_exec tasks in one play (one Ansible start): {label: result}; failures kept."""
        return self.exec_many({label: (name, cmd, extra) for label, (cmd, extra) in commands.items()})

    def exec_many(self, commands):
        """{label: (container, command, extra args)} as one play: {label: result}; failures kept."""
        tasks = [{'name': label, 'nsbox.runtime.container_exec': dict({'container': name, 'command': cmd}, **extra), 'ignore_errors': True}
                 for label, (name, cmd, extra) in commands.items()]
        res = self.ansible.tasks(tasks)
        return {label: res.task(label) for label in commands}

    def wait_exited(self, name, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            info = self.info(name, log_lines=50)
            if info['state']['status'] == 'exited' or time.monotonic() > deadline:
                return info
            time.sleep(0.3)

    def sh(self, cmd):
        return self.host.ssh(cmd).stdout.strip()

    def cgroup_dirs(self, cid):
        return [os.path.join(root, self.parent.lstrip('/'), cid) for root in cgroup_roots()]

    def cgroup_file(self, cid, controller, name):
        """A v1 controller file of the container's cgroup, stripped."""
        with open(os.path.join(LAYOUT.v1[controller], self.parent.lstrip('/'), cid, name)) as f:
            return f.read().strip()


def links(host):
    """nsbox's links (by name) in the host's network namespace: the machine's, for a host without one of its own.

    Asked over netlink (``ip link``): /sys/class/net shows the namespace of whoever mounted /sys, the machine's.
    """
    out = host.ssh("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1").stdout
    return sorted(n for n in out.split() if n.startswith(LINK_PREFIXES))


def remember(host):
    """Snapshot what the host has before its tests (the machine's own, where it shares the machine's): not theirs to report."""
    _BEFORE[host] = {'links': links(host), 'mounts': mounts(host)}


def setup(host, ansible, parent, images_to_load, **host_args):
    """The test host from scratch: nsbox's files gone, the host config (cgroup parent), the images loaded ({name: archive})."""
    host.ssh('rm -rf /etc/nsbox /usr/local/lib/nsbox /usr/local/bin/nsbox /run/nsbox %s/*' % DATA_ROOT)
    remember(host)
    # A test host that shares the machine's network namespace must not get bridges or nftables
    # rules: its containers default to network_mode none. Hosts with a netns of their own (TestHost
    # netns=True) are where bridge networking is tested.
    host_args.setdefault('default_network_mode', 'bridge' if getattr(host, 'netns', False) else 'none')
    tasks = [{'nsbox.runtime.host': dict({'cgroup_parent': parent}, **host_args)}]
    tasks += [{'nsbox.runtime.image': {'name': name, 'source': 'load', 'path': path}} for name, path in images_to_load.items()]
    res = ansible.tasks(tasks)
    assert res.rc == 0, res
    return Box(host, ansible, parent)


def leftovers(host):
    """What the runtime left on the host since ``setup`` (or the last report): supervisors, mounts, containers, volumes, links."""
    def ls(sub):
        return host.ssh('ls -A %s/%s 2>/dev/null | grep -v "^.lock$" || true' % (DATA_ROOT, sub)).stdout.split()
    found = {'supervisors': supervisors(host), 'mounts': mounts(host), 'containers': ls('containers'), 'volumes': ls('volumes')}
    # Links in the host's network namespace (the machine's, for a host without one of its own: none may appear there).
    found['links'] = links(host)
    before = _BEFORE.get(host)
    if before is not None:
        _BEFORE[host] = {'links': found['links'], 'mounts': sorted(set(before['mounts']) & set(found['mounts']))}
        for key in ('links', 'mounts'):
            found[key] = [x for x in found[key] if x not in before[key]]
    return found


def teardown(host, parent, everything=True):
    """Kill and remove what the runtime left (by pid, under the test's cgroup parent); returns what there was."""
    found = leftovers(host)
    for pid in found['supervisors']:
        host.ssh('kill -9 %d' % pid, check=False)
    kill_and_remove(parent)
    for target in sorted(found['mounts'], key=len, reverse=True):
        host.ssh('umount -l %s' % target, check=False)
    if everything:
        host.ssh('rm -rf /run/nsbox %s/*' % DATA_ROOT, check=False)
    else:
        if found['containers']:
            host.ssh('cd %s/containers && rm -rf %s /run/nsbox/containers' % (DATA_ROOT, ' '.join(found['containers'])), check=False)
        if found['volumes']:
            host.ssh('cd %s/volumes && rm -rf %s' % (DATA_ROOT, ' '.join(found['volumes'])), check=False)
    return found


@contextlib.contextmanager
def private_box(reaper, name, images_to_load, netns=False, before=None, **host_args):
    """A test host of the caller's own (``netns``: with a network namespace of its own), set up as ``setup`` does;
    ``before(host)`` runs first (e.g. a filesystem of its own for the data-root). Afterwards everything is taken
    down, and nothing may be left (supervisor, mount, container files, links) nor an orphan."""
    from .runner import AnsibleRunner  # pylint: disable=import-outside-toplevel
    from .testhost import TestHost  # pylint: disable=import-outside-toplevel
    host = TestHost(name, netns=netns).start()
    ansible = AnsibleRunner([host])
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    try:
        if before is not None:
            before(host)
        yield setup(host, ansible, parent, images_to_load, **host_args)
    finally:
        left = teardown(host, parent)
        ansible.close()
        host.stop()
    reaper.check()
    assert left == NOTHING, 'the tests left these behind: %r' % left


@contextlib.contextmanager
def library_host(fixtures, reaper):
    """The runtime library on this machine, with a data-root and cgroup parent of its own and the busybox image loaded.

    Yields (HostConfig, base dir, config dict). Afterwards every container is removed (its init
    killed by pid), what is left mounted under the base dir is unmounted, the cgroup parent and
    the base dir are removed, and no process the runtime started may be left (the reaper).
    """
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import mountinfo  # pylint: disable=import-outside-toplevel
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host.config import HostConfig  # pylint: disable=import-outside-toplevel
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import converge  # pylint: disable=import-outside-toplevel
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import images as image_service  # pylint: disable=import-outside-toplevel
    base = '/var/tmp/nsbox-runner-%s' % secrets.token_hex(4)  # overlay upper dirs need a real filesystem
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    data = {'data_root': base + '/data', 'state_dir': base + '/run', 'cgroup_parent': parent,
            'default_network_mode': 'none'}  # the machine's own network namespace: no bridges here
    cfg = HostConfig(data)
    try:
        image_service.load(cfg, fixtures.docker_archive, name='busybox')
        yield cfg, base, data
    finally:
        store = converge.open_store(cfg)
        for c in store.all():
            st = c.status()
            if st['running']:
                os.kill(st['pid'], signal.SIGKILL)
            try:
                converge.remove(cfg, store, c, force=True)
            except Exception:  # pylint: disable=broad-except
                pass
        for mnt in sorted(mountinfo.read('/proc/self/mountinfo'), key=lambda m: -len(m.mount_point)):
            if mnt.mount_point.startswith(base):
                subprocess.run(['umount', '-l', mnt.mount_point], check=False)
        kill_and_remove(parent)
        shutil.rmtree(base, ignore_errors=True)
        reaper.check()
