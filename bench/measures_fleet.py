# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fleet measure: the roles converge 10 simulated hosts, against the same play on 1 host (forks=10).

The hosts are Molecule's lab hosts (tests/harness/lab.py: each a private test host with its own
network, mount, UTS and cgroup namespaces and sshd, on a bridge inside a network namespace of the
lab's own), made fresh before each run (untimed) and destroyed after it, so every run converges
from nothing: the library installed, the host config written, busybox loaded, the web container
started and published. The play is Molecule's (molecule/shared/converge.yml) with the fleet
scenario's variables (molecule/fleet/molecule.yml); a run is the whole ``ansible-playbook``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

import yaml

from common import REPO, Measure, images
from harness.runner import collections_path

LAB = os.path.join(REPO, 'tests', 'harness', 'lab.py')
RELAY = os.path.join(REPO, 'tests', 'harness', 'nsrelay.py')
PLAY = os.path.join(REPO, 'molecule', 'shared', 'converge.yml')
SCENARIO = os.path.join(REPO, 'molecule', 'fleet', 'molecule.yml')


class FleetConverge(Measure):
    """``ansible-playbook`` of the roles on a fresh lab of 10 hosts, and on a fresh lab of 1."""

    name = 'converge 10 simulated hosts vs 1 host'
    ours = ('fleet',)
    peers = ('one',)
    labels = {'fleet': '10 hosts, forks=10', 'one': '1 host'}
    runs = 2
    sizes = {'fleet': 10, 'one': 1}

    def setup(self):
        self.work = tempfile.mkdtemp(prefix='nsb-fl-', dir='/tmp')  # short: ssh control sockets must fit in 108 bytes
        images.FixtureImages('/var/tmp/nsbox-fixture-images').build()  # the archive the play loads
        with open(SCENARIO) as f:
            self.group_vars = yaml.safe_load(f)['provisioner']['inventory']['group_vars']['all']
        self.detail = ('molecule/shared/converge.yml (roles host + containers: library, config, busybox loaded, a published '
                       'httpd container), each run on fresh lab hosts made and removed untimed')
        self.result = {}

    def _lab(self, side):
        return 'bench-%s' % side

    def _paths(self, side):
        return os.path.join(self.work, side + '.json'), os.path.join(self.work, side + '-instances.json')

    def prepare(self, side):
        state, instances = self._paths(side)
        names = ['nsbox-bench-%02d' % (i + 1) for i in range(self.sizes[side])]
        subprocess.run([sys.executable, LAB, 'create', self._lab(side), state, instances] + names, check=True, capture_output=True, text=True)
        with open(instances) as f:
            hosts = yaml.safe_load(f)
        inventory = {'all': {'hosts': {h['instance']: {'ansible_host': h['address'], 'ansible_user': h['user'], 'ansible_port': h['port'],
                                                       'ansible_ssh_private_key_file': h['identity_file']} for h in hosts},
                             'vars': self.group_vars}}
        self.inventory = os.path.join(self.work, side + '-inventory.yml')
        with open(self.inventory, 'w') as f:
            yaml.safe_dump(inventory, f)
        self.config = os.path.join(self.work, side + '-ansible.cfg')
        proxy = '/usr/bin/python3 %s /run/netns/nsbox-lab-%s %%h %%p' % (RELAY, self._lab(side))
        with open(self.config, 'w') as f:
            f.write('\n'.join([
                '[defaults]', 'inventory = %s' % self.inventory, 'host_key_checking = False', 'forks = 10',
                'collections_path = %s' % collections_path(self.work), 'retry_files_enabled = False',
                'interpreter_python = /usr/bin/python3', 'local_tmp = %s/local-tmp' % self.work,
                '[ssh_connection]', 'pipelining = True',
                "ssh_args = -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes "
                "-o LogLevel=ERROR -o 'ProxyCommand=%s'" % proxy,  # ssh_args are taken as written: ssh expands %h %p
                'control_path = %s/%%%%C' % self.work, '']))

    def _converge(self, side):
        env = dict(os.environ, ANSIBLE_CONFIG=self.config, ANSIBLE_NOCOLOR='1')
        ansible = os.path.join(os.path.dirname(sys.executable), 'ansible-playbook')
        self.result[side] = subprocess.run([ansible, PLAY], env=env, capture_output=True, text=True, timeout=900, check=False)

    def run_fleet(self):
        self._converge('fleet')

    def run_one(self):
        self._converge('one')

    def verify(self, side):
        res = self.result.pop(side, None)
        self._destroy(side)
        if res is None or res.returncode != 0 or 'failed=1' in res.stdout:
            raise RuntimeError('%s: the converge failed:\n%s' % (side, (res.stdout + res.stderr)[-3000:] if res else 'did not run'))

    def _destroy(self, side):
        state, _instances = self._paths(side)
        subprocess.run([sys.executable, LAB, 'destroy', self._lab(side), state], check=False, capture_output=True, text=True)

    def teardown(self):
        for side in self.sizes:
            self._destroy(side)
        shutil.rmtree(getattr(self, 'work', '/nonexistent'), ignore_errors=True)
