# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Measures of single operations on one host: the host module's no-op, the CLI's start-up, an image
pull, a run to exit on a bridge network."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

from common import DATA_ROOT, LibraryStore, Measure, PrivatePodman, _OnTestHost, _empty_dir, _run, _unmount_under
from harness import images
from harness.registry import Registry
from harness.runner import collections_path


class HostNoop(_OnTestHost):
    name = 'host module no-op over SSH'
    peers = ('ping',)
    labels = {'nsbox': 'nsbox.runtime.host', 'ping': 'ansible.builtin.ping (floor)'}

    def run_nsbox(self):
        assert self.runner.module('nsbox.runtime.host')['_status'] == 'ok'

    def run_ping(self):
        assert self.runner.module('ansible.builtin.ping')['_status'] == 'ok'


class CliStart(_OnTestHost):
    name = 'nsbox version (host CLI start-up)'
    peers = ('python',)
    labels = {'nsbox': 'nsbox version', 'python': 'python3 -I -c pass (floor)'}

    def run_nsbox(self):
        subprocess.run([self.wrapper, 'version'], check=True, stdout=subprocess.DEVNULL)

    def run_python(self):
        subprocess.run(['/usr/bin/python3', '-I', '-c', 'pass'], check=True)

    def setup(self):
        super().setup()
        # Run the CLI the test host installed, from the machine (same kernel, same files): its wrapper names
        # /usr/local/lib/nsbox/current, which is the test host's alone, so a copy names the host's upper dir instead.
        upper = os.path.join(self.host.workdir, 'ov', '1', 'upper')
        with open(os.path.join(upper, 'bin', 'nsbox')) as f:
            text = f.read()
        assert '/usr/local/lib/nsbox/current' in text, text
        self.wrapper = os.path.join(self.host.workdir, 'nsbox-wrapper')
        with open(self.wrapper, 'w') as f:
            f.write(text.replace('/usr/local/lib/nsbox/current', os.path.join(upper, 'lib', 'nsbox', 'current')))
        os.chmod(self.wrapper, 0o755)


# Runs on the "managed host" side: the collection's runtime library, called as the image module calls it.
LIBRARY_PULL = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import config
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import images
cfg = config.HostConfig({'data_root': sys.argv[2], 'state_dir': sys.argv[3]})
out = images.pull(cfg, sys.argv[4], insecure=True)
print(json.dumps({'actions': out['actions'], 'image': out['image']}))
"""


class ImagePull(_OnTestHost):
    """The bench image (~120 MB gzip, 4 layers; images.bench_image) from a loopback registry into empty storage,
    every layer unpacked: nsbox's library and module against podman and skopeo + umoci."""

    name = 'image pull + unpack'
    ours = ('library', 'module')
    peers = ('podman', 'skopeo_umoci')
    labels = {'library': 'nsbox library: images.pull (python3)', 'module': 'nsbox.runtime.image over SSH (ansible)',
              'podman': 'podman pull', 'skopeo_umoci': 'skopeo copy + umoci unpack'}
    runs = 3

    def setup(self):
        self.machine_store = os.path.exists('/var/lib/containers')
        self.work = tempfile.mkdtemp(prefix='nsbox-bench-pull-', dir='/var/tmp')
        self.image = images.bench_image()
        self.registry = Registry().start()
        images.push(self.registry, self.image['source'], 'nsbox/bench', 'latest')
        self.ref = '%s/nsbox/bench:latest' % self.registry.host
        self.collections = collections_path(self.work)
        self.podman = PrivatePodman(os.path.join(self.work, 'podman'))
        if not self.podman.works():
            self.podman = PrivatePodman(os.path.join(self.work, 'podman'), 'vfs')
        self.labels = dict(self.labels, podman='podman pull (%s, private storage)' % self.podman.driver)
        self.result = {}
        self.store = {side: os.path.join(self.work, side) for side in ('library', 'oci', 'bundle')}
        super().setup()
        self.store['module'] = os.path.join(self.host.workdir, 'data-root')
        self.detail = '%.1f MB gzip in %d layers, registry on 127.0.0.1, overlay layer dirs for nsbox' % (
            self.image['size'] / 1e6, len(self.image['layers']))

    def teardown(self):
        try:
            super().teardown()
        finally:
            if getattr(self, 'podman', None):
                self.podman.reset()
            if getattr(self, 'registry', None):
                self.registry.stop()
            if getattr(self, 'work', None):
                _unmount_under(self.work)
                shutil.rmtree(self.work, ignore_errors=True)

    def prepare(self, side):
        if side == 'library':
            shutil.rmtree(self.store['library'], ignore_errors=True)
        elif side == 'module':
            _empty_dir(self.store['module'])
        elif side == 'podman':
            self.podman.reset()
        else:
            shutil.rmtree(self.store['oci'], ignore_errors=True)
            shutil.rmtree(self.store['bundle'], ignore_errors=True)

    def run_library(self):
        cmd = ['/usr/bin/python3', '-c', LIBRARY_PULL, self.collections, self.store['library'], os.path.join(self.work, 'nsbox-state'), self.ref]
        self.result['library'] = json.loads(_run(cmd))

    def run_module(self):
        self.result['module'] = self.runner.module('nsbox.runtime.image', {'name': self.ref, 'insecure': True, 'data_root': DATA_ROOT})

    def run_podman(self):
        self.podman('pull', '--quiet', '--tls-verify=false', self.ref)

    def run_skopeo_umoci(self):
        images.skopeo('copy', '--src-tls-verify=false', 'docker://' + self.ref, 'oci:%s:bench' % self.store['oci'], timeout=600)
        _run(['umoci', 'unpack', '--image', '%s:bench' % self.store['oci'], self.store['bundle']])

    def verify(self, side):
        """Every side holds the pushed image with its layers unpacked (and the machine's container store is untouched)."""
        if side in ('library', 'module'):
            n = len(self.image['layers'])
            done = 'fetched %d and unpacked %d of %d layers' % (n, n, n)
            if not any(a.startswith(done) for a in self.result[side].get('actions', [])):
                raise RuntimeError('%s: not a whole pull into an empty store: %s' % (side, self.result[side]))
            with open(os.path.join(self.store[side], 'images', 'index.json')) as f:
                record = json.load(f)['images'][self.image['digest']]
            dirs = [os.path.join(self.store[side], 'layers', layer['chain_id'].split(':')[1], 'diff') for layer in record['layers']]
        elif side == 'podman':
            dirs = self.podman.layer_dirs()
        else:
            rootfs = os.path.join(self.store['bundle'], 'rootfs')
            dirs = [os.path.join(rootfs, p) for p in ('bin', 'usr/lib/python3.11', 'usr/share', 'usr/lib/x86_64-linux-gnu')]
        unpacked = [d for d in dirs if os.path.isdir(d) and os.listdir(d)]
        if len(unpacked) != len(self.image['layers']):
            raise RuntimeError('%s: %d of %d layers unpacked (%s)' % (side, len(unpacked), len(self.image['layers']), dirs))
        if os.path.exists('/var/lib/containers') and not self.machine_store:
            raise RuntimeError('%s wrote the machine\'s /var/lib/containers' % side)


# Runs inside the bench's network namespace: the runtime library as the container module calls it.
LIBRARY_RUN = """
import json, sys, time
sys.path.insert(0, sys.argv[1])
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import config
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import converge, logs
cfg = config.HostConfig({'data_root': sys.argv[2], 'state_dir': sys.argv[3], 'cgroup_parent': sys.argv[4]})
converge.ensure(cfg, 'bench', {'image': 'busybox', 'command': ['ip', '-4', '-o', 'addr', 'show', 'eth0']}, state='started')
container = converge.open_store(cfg).find('bench')
while container.status()['status'] != 'exited':
    time.sleep(0.002)
out = logs.tail(container.log_path, 5, 1)
state = container.status()
converge.ensure(cfg, 'bench', state='absent')
print(json.dumps({'logs': [e['log'] for e in out], 'exit_code': state['exit_code'], 'error': state['error']}))
"""


class BridgeRun(Measure):
    """Run to exit on a bridge network (address, veth, NAT rules), then remove: nsbox's library against
    podman run --rm (its CNI bridge), both in a network namespace of the bench's own."""

    name = 'run to exit, bridge network'
    peers = ('podman',)
    labels = {'nsbox': 'nsbox library: create+start+wait+remove (python3)', 'podman': 'podman run --rm --network bridge'}
    runs = 7

    def setup(self):
        self.holder = subprocess.Popen(['unshare', '--net', '--', 'sh', '-c', 'ip link set lo up; exec sleep infinity'])  # pylint: disable=consider-using-with
        time.sleep(0.2)
        self.prefix = ['nsenter', '--net=/proc/%d/ns/net' % self.holder.pid, '--']
        self.store = LibraryStore('nsbox-bench-net-')
        self.work, self.args = self.store.work, self.store.args
        self.podman = PrivatePodman(os.path.join(self.work, 'podman'), prefix=self.prefix, hide_cgroup2=True)
        self.podman('load', '-i', self.store.archive)
        self.detail = 'busybox running ip addr; both in one private network namespace (nsbox0 10.77/16, cni-podman0 10.88/16)'
        self.out = {}

    def teardown(self):
        if getattr(self, 'podman', None):
            self.podman.reset()
        if getattr(self, 'holder', None):
            self.holder.kill()
            self.holder.wait()
        if getattr(self, 'store', None):
            self.store.remove()

    def run_nsbox(self):
        self.out['nsbox'] = _run(self.prefix + ['/usr/bin/python3', '-c', LIBRARY_RUN] + self.args)

    def run_podman(self):
        self.out['podman'] = self.podman('run', '--rm', '--cgroup-manager=cgroupfs', '--events-backend=file', '--ulimit', 'nofile=20000:20000',
                                         '--ulimit', 'nproc=32768:32768', '--network', 'bridge', 'localhost/nsbox/busybox:latest',
                                         'ip', '-4', '-o', 'addr', 'show', 'eth0')

    def verify(self, side):
        want = '10.77.' if side == 'nsbox' else '10.88.'
        if want not in self.out[side]:
            raise RuntimeError('%s: the container had no address on its bridge: %r' % (side, self.out[side]))
