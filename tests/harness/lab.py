# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Molecule's test hosts: private TestHosts on a test bridge inside a network namespace of the lab's own.

``python3 tests/harness/lab.py create LAB STATE INSTANCE_CONFIG HOST...`` makes:

- the lab: a network namespace ``nsbox-lab-LAB`` (``ip netns add``) holding a bridge ``nsblab0``
  (10.123.0.1/24). No bridge, veth or address is made in the machine's own network namespace;
- per host, a :class:`TestHost` with its own network, mount, UTS and cgroup namespaces: its
  sshd on port 22 of its own network namespace, its hostname, overlays on ``/etc``,
  ``/usr/local``, ``/var/lib`` and ``/run``, a real directory bound at the data-root, its cgroup
  ``/nsbox-lab-LAB/HOST`` as its cgroup root, and ``eth0`` (a veth) on the lab's bridge at
  10.123.0.(10+i). SSH reaches it at that address through the ProxyCommand
  ``nsrelay.py /run/netns/nsbox-lab-LAB %h %p``, which joins the lab's namespace.

It writes STATE (what destroy needs) and Molecule's instance config, and returns at once: the
hosts outlive it (their sshds run in sessions of their own). ``destroy LAB STATE`` ends every
process of every host (by mount namespace, then by cgroup), removes the cgroups, the lab's
namespace and the hosts' directories. Both are idempotent.
"""
from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

HARNESS = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HARNESS))

from harness.runner import collections_path  # noqa: E402  pylint: disable=wrong-import-position
from harness.testhost import TestHost, remove_cgroup  # noqa: E402  pylint: disable=wrong-import-position

BRIDGE = 'nsblab0'
SUBNET = '10.123.0.%d'
SSH_PORT = 22


def netns_name(lab):
    return 'nsbox-lab-%s' % lab


def cgroup_of(lab, host=None):
    return '/nsbox-lab-%s' % lab + ('/%s' % host if host else '')


def _run(*cmd):
    subprocess.run(cmd, check=True, capture_output=True, text=True)


def _make_lab_netns(lab):
    ns = netns_name(lab)
    _run('ip', 'netns', 'add', ns)
    _run('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    _run('ip', '-n', ns, 'link', 'add', BRIDGE, 'type', 'bridge')
    _run('ip', '-n', ns, 'addr', 'add', SUBNET % 1 + '/24', 'dev', BRIDGE)
    _run('ip', '-n', ns, 'link', 'set', BRIDGE, 'up')


def _plug(lab, host, index):
    """A veth from the lab's bridge to the host's eth0, its address and default route."""
    ns, port, address = netns_name(lab), 'nsl%d' % index, SUBNET % (10 + index)
    _run('ip', '-n', ns, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', str(host.proc.pid))
    _run('ip', '-n', ns, 'link', 'set', port, 'master', BRIDGE, 'up')
    enter = ['nsenter', '--net=/proc/%d/ns/net' % host.proc.pid]
    _run(*enter, 'ip', 'addr', 'add', address + '/24', 'dev', 'eth0')
    _run(*enter, 'ip', 'link', 'set', 'eth0', 'up')
    _run(*enter, 'ip', 'route', 'add', 'default', 'via', SUBNET % 1)
    return address


def create(lab, state_path, instance_config_path, names):
    if os.path.exists(state_path):
        with open(state_path) as f:
            return json.load(f)
    labdir = tempfile.mkdtemp(prefix='nsbox-lab-', dir='/tmp')  # short: ssh control sockets must fit in 108 bytes
    state = {'lab': lab, 'dir': labdir, 'hosts': []}
    try:
        _make_lab_netns(lab)
        for i, name in enumerate(names):
            host = TestHost(name, netns=True, hostname=name, cgroup=cgroup_of(lab, name), listen='0.0.0.0', port=SSH_PORT,
                            workdir=os.path.join(labdir, name))
            os.makedirs(host.workdir)
            state['hosts'].append({'name': name, 'workdir': host.workdir, 'key': host.client_key})
            host.start()  # with no trace of the machine's nsbox (TestHost removes it in the host's overlays)
            state['hosts'][-1].update(pid=host.proc.pid, mnt_ns=host.mnt_ns, address=_plug(lab, host, i))
        _write(state_path, state)
    except BaseException:
        destroy_state(state)
        raise
    _write(instance_config_path, [{'instance': h['name'], 'address': h['address'], 'user': 'root', 'port': SSH_PORT,
                                   'identity_file': h['key']} for h in state['hosts']])
    return state


def _write(path, data):
    with open(path + '.tmp', 'w') as f:
        json.dump(data, f, indent=2)
    os.rename(path + '.tmp', path)


def _end_relays(lab):
    """End the ProxyCommands (nsrelay.py) still joined to the lab: SSH masters kept open (ControlPersist) by
    Ansible and testinfra hold them, and a relay to a host that is gone would wait forever. They were
    started for this lab's hosts only (their command line names its namespace)."""
    marker = ('/run/netns/%s' % netns_name(lab)).encode()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            with open('/proc/%s/cmdline' % entry, 'rb') as f:
                argv = f.read().split(b'\0')
            if len(argv) > 2 and argv[1].endswith(b'/nsrelay.py') and argv[2] == marker:
                os.kill(int(entry), signal.SIGTERM)


def destroy_state(state):
    _end_relays(state['lab'])
    for h in state['hosts']:
        host = TestHost(h['name'], netns=True, cgroup=cgroup_of(state['lab'], h['name']), workdir=h['workdir'])
        host.mnt_ns = h.get('mnt_ns')
        host.stop()
    subprocess.run(['ip', 'netns', 'del', netns_name(state['lab'])], check=False, capture_output=True)
    remove_cgroup(cgroup_of(state['lab']))
    shutil.rmtree(state['dir'], ignore_errors=True)


def destroy(lab, state_path):
    try:
        with open(state_path) as f:
            state = json.load(f)
    except FileNotFoundError:
        state = {'lab': lab, 'dir': '/nonexistent', 'hosts': []}  # still: a lab namespace or cgroup left by a crash
    destroy_state(state)
    with contextlib.suppress(FileNotFoundError):
        os.remove(state_path)


def main(argv):
    # The cgroup helpers read mounts with the runtime library: make this checkout importable as the collection.
    tmp = tempfile.mkdtemp(prefix='nsbox-labpy-', dir='/tmp')
    atexit.register(shutil.rmtree, tmp, True)
    sys.path.insert(0, collections_path(tmp))
    if argv[0] == 'create':
        create(argv[1], argv[2], argv[3], argv[4:])
    elif argv[0] == 'destroy':
        destroy(argv[1], argv[2])
    else:
        sys.exit('usage: lab.py create LAB STATE INSTANCE_CONFIG HOST... | destroy LAB STATE')


if __name__ == '__main__':
    main(sys.argv[1:])
