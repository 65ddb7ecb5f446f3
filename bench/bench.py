# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nsbox benchmarks: each measure times nsbox and its peers side by side in one run.

A measure has one or more nsbox sides and one or more peers. Runs alternate (A B C ...,
A B C ...) so drift on a noisy machine hits every side alike; the table shows each side's
median and min-max and its ratio to each peer's median, and a JSON report is written to
bench/results/. Add a measure by subclassing :class:`Measure` and listing it in MEASURES.
Performance claims live here, never in timed tests.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from harness import images  # noqa: E402  pylint: disable=wrong-import-position
from harness import oci as ocih  # noqa: E402  pylint: disable=wrong-import-position
from harness.podman import PrivatePodman, empty_dir as _empty_dir, run as _run, unmount_under as _unmount_under  # noqa: E402  pylint: disable=wrong-import-position
from harness.registry import Registry  # noqa: E402  pylint: disable=wrong-import-position
from harness.runner import AnsibleRunner, collections_path  # noqa: E402  pylint: disable=wrong-import-position
from harness.testhost import DATA_ROOT, TestHost  # noqa: E402  pylint: disable=wrong-import-position


class Measure:
    """One comparison: the sides in ``ours`` (nsbox) and ``peers``, each timed as its ``run_<side>`` method.

    ``prepare(side)`` runs untimed before each run of a side (e.g. to empty its store) and
    ``verify(side)`` untimed after it, raising when the run did not do the whole job.
    """

    name = ''
    detail = ''  # what exactly is measured, shown with the table (may be set by setup)
    ours = ('nsbox',)
    peers = ('peer',)
    labels = {}  # side -> name in the table
    runs = 7  # default number of timed runs per side

    def setup(self):
        """Prepare every side (not timed)."""

    def teardown(self):
        """Undo setup (always called, also after a failed setup)."""

    def prepare(self, side):
        """Untimed, before each run of ``side``."""

    def verify(self, side):
        """Untimed, after each run of ``side``."""


class _OnTestHost(Measure):
    """Measures that need a private SSH test host with nsbox set up (its own data-root, whatever the machine's config says)."""

    def setup(self):
        self.host = TestHost('bench').start()
        self.runner = AnsibleRunner([self.host])
        res = self.runner.module('nsbox.runtime.host', {'data_root': DATA_ROOT})
        if res['_status'] == 'failed':
            raise RuntimeError('host set-up failed: %s' % res.get('msg'))

    def teardown(self):
        if getattr(self, 'runner', None):
            self.runner.close()
        if getattr(self, 'host', None):
            self.host.stop()


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
        subprocess.run(['nsbox', 'version'], check=True, stdout=subprocess.DEVNULL, env=self._env())

    def run_python(self):
        subprocess.run(['/usr/bin/python3', '-I', '-c', 'pass'], check=True)

    def setup(self):
        super().setup()
        # Run the CLI the test host installed, from the machine (same kernel, same files).
        self.bin = os.path.join(self.host.workdir, 'ov', '1', 'upper', 'bin')

    def _env(self):
        return dict(os.environ, PATH='%s:%s' % (self.bin, os.environ['PATH']))


LIBRARY_PULL = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import config
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import service
cfg = config.HostConfig({'data_root': sys.argv[2], 'state_dir': sys.argv[3]})
out = service.pull(cfg, sys.argv[4], insecure=True)
print(json.dumps({'actions': out['actions'], 'image': out['image']}))
"""


class ImagePull(_OnTestHost):
    """The bench image (~120 MB gzip, 4 layers; images.bench_image) from a loopback registry into empty storage,
    every layer unpacked: nsbox's library and module against podman and skopeo + umoci."""

    name = 'image pull + unpack'
    ours = ('library', 'module')
    peers = ('podman', 'skopeo_umoci')
    labels = {'library': 'nsbox library: service.pull (python3)', 'module': 'nsbox.runtime.image over SSH (ansible)',
              'podman': 'podman pull', 'skopeo_umoci': 'skopeo copy + umoci unpack'}
    runs = 5

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
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import config
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import logs, service
cfg = config.HostConfig({'data_root': sys.argv[2], 'state_dir': sys.argv[3], 'cgroup_parent': sys.argv[4]})
service.ensure(cfg, 'bench', {'image': 'busybox', 'command': ['ip', '-4', '-o', 'addr', 'show', 'eth0']}, state='started')
container = service.open_store(cfg).find('bench')
while container.status()['status'] != 'exited':
    time.sleep(0.002)
out = logs.tail(container.log_path, 5, 1)
state = container.status()
service.ensure(cfg, 'bench', state='absent')
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
        self.work = tempfile.mkdtemp(prefix='nsbox-bench-net-', dir='/var/tmp')
        self.holder = subprocess.Popen(['unshare', '--net', '--', 'sh', '-c', 'ip link set lo up; exec sleep infinity'])  # pylint: disable=consider-using-with
        time.sleep(0.2)
        self.prefix = ['nsenter', '--net=/proc/%d/ns/net' % self.holder.pid, '--']
        fixtures = images.FixtureImages('/var/tmp/nsbox-fixture-images').build()
        self.collections = collections_path(self.work)
        self.cgroup_parent = '/nsbox-bench-%d' % os.getpid()
        self.args = [self.collections, os.path.join(self.work, 'data'), os.path.join(self.work, 'run'), self.cgroup_parent]
        # The supervisor runs the installed library (DESIGN D1), as on a managed host: installed here as the demo does.
        load = ('import sys; sys.path.insert(0, sys.argv[1]); '
                'from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import config, install; '
                'install.LibraryInstall().apply(); '
                'from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import service; '
                "service.load(config.HostConfig({'data_root': sys.argv[2], 'state_dir': sys.argv[3]}), sys.argv[4], name='busybox')")
        _run(['/usr/bin/python3', '-c', load, self.collections, self.args[1], self.args[2], fixtures.docker_archive])
        self.podman = PrivatePodman(os.path.join(self.work, 'podman'), prefix=self.prefix, hide_cgroup2=True)
        self.podman('load', '-i', fixtures.docker_archive)
        self.detail = 'busybox running ip addr; both in one private network namespace (nsbox0 10.77/16, cni-podman0 10.88/16)'
        self.out = {}

    def teardown(self):
        if getattr(self, 'podman', None):
            self.podman.reset()
        if getattr(self, 'holder', None):
            self.holder.kill()
            self.holder.wait()
        for root in ('/sys/fs/cgroup/%s' % c for c in os.listdir('/sys/fs/cgroup')):
            path = os.path.join(root, getattr(self, 'cgroup_parent', 'none').lstrip('/'))
            if os.path.isdir(path):
                subprocess.run(['rmdir', path], check=False, capture_output=True)
        if getattr(self, 'work', None):
            _unmount_under(self.work)
            shutil.rmtree(self.work, ignore_errors=True)

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


class OciLifecycle(Measure):
    """One OCI bundle (busybox /bin/true; pid, net, ipc, uts, mount, cgroup namespaces, a cgroup with limits)
    given to nsbox-oci, runc and crun: create + start + wait + delete as podman drives a runtime (the bench is
    the child subreaper that reaps the init, as conmon is), and each one's ``run``."""

    name = 'OCI runtime: create+start+wait+delete of /bin/true'
    ours = ('nsbox', 'nsbox_run', 'nsbox_pyc', 'nsbox_pyc_run')
    peers = ('runc', 'runc_run', 'crun', 'crun_run')
    labels = {'nsbox': 'nsbox-oci create+start+wait+delete', 'nsbox_run': 'nsbox-oci run',
              'runc': 'runc create+start+wait+delete', 'runc_run': 'runc run',
              'nsbox_pyc': 'nsbox-oci c+s+w+d, bytecode cached (unpacked)', 'nsbox_pyc_run': 'nsbox-oci run, bytecode cached (unpacked)',
              'crun': 'crun create+start+wait+delete (+nsenter)', 'crun_run': 'crun run (+nsenter)'}
    runs = 15

    def setup(self):
        import ctypes  # pylint: disable=import-outside-toplevel
        if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER: the inits end up here
            raise OSError(ctypes.get_errno(), 'prctl(PR_SET_CHILD_SUBREAPER)')
        self.work = tempfile.mkdtemp(prefix='nsbox-bench-oci-', dir='/var/tmp')
        self.parent = '/nsbox-bench-oci-%d' % os.getpid()
        rootfs = ocih.busybox_rootfs(os.path.join(self.work, 'rootfs'))
        self.bundle = ocih.write_bundle(os.path.join(self.work, 'bundle'), ocih.config(rootfs, ['/bin/true'], self.parent + '/c'))
        self.bins = {'nsbox': [ocih.install_private(self.work)], 'runc': [shutil.which('runc') or 'runc']}
        # An experiment beside the real install: the same zipapp unpacked, with its bytecode compiled once. zipimport
        # cannot cache bytecode, so every nsbox-oci call compiles the library's source again (where the time goes).
        unpacked = os.path.join(self.work, 'unpacked')
        with zipfile.ZipFile(os.path.realpath(os.path.join(self.work, 'lib', 'current.pyz'))) as zf:
            zf.extractall(unpacked)
        subprocess.run(['/usr/bin/python3', '-m', 'compileall', '-q', unpacked], check=True)
        self.bins['nsbox_pyc'] = ['/usr/bin/python3', '-I', unpacked, 'oci']
        # crun refuses a hybrid host: it runs in a mount namespace of its own without the cgroup2 mount (entered by nsenter).
        self.holder = subprocess.Popen(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c',  # pylint: disable=consider-using-with
                                        'umount /sys/fs/cgroup/unified 2>/dev/null; echo ready; exec sleep infinity'], stdout=subprocess.PIPE)
        self.holder.stdout.readline()
        self.bins['crun'] = ['nsenter', '--mount=/proc/%d/ns/mnt' % self.holder.pid, '--', shutil.which('crun') or 'crun']
        self.codes = {}
        self.detail = 'same bundle (%s); medians of alternating runs' % self.bundle
        for tool in ('nsbox', 'runc', 'crun'):
            missing = [b for b in (self.bins[tool][0], self.bins[tool][-1]) if not os.path.isabs(b) and not shutil.which(b)]
            if missing:
                raise RuntimeError('%s is not installed (apt-get install %s)' % (tool, tool))

    def teardown(self):
        if getattr(self, 'holder', None):
            self.holder.kill()
            self.holder.wait()
        if getattr(self, 'work', None):
            ocih.remove_cgroups(self.parent)
            shutil.rmtree(self.work, ignore_errors=True)

    def _cli(self, tool, *args):
        root = os.path.join(self.work, 'state-' + tool)
        # stderr to a file: create hands its stdio to the container's init, a pipe would stay open while it lives.
        with tempfile.TemporaryFile(dir=self.work) as err:
            code = subprocess.run(self.bins[tool] + ['--root', root] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=err, check=False).returncode
            if code and args[0] != 'run':
                err.seek(0)
                raise RuntimeError('%s %s exited %d: %s' % (tool, ' '.join(args), code, err.read().decode()[-2000:]))
        return code

    def _lifecycle(self, tool):
        pid_file = os.path.join(self.work, 'pid-' + tool)
        self._cli(tool, 'create', '--bundle', self.bundle, '--pid-file', pid_file, 'bench')
        with open(pid_file) as f:
            pid = int(f.read())
        self._cli(tool, 'start', 'bench')
        self.codes[tool] = os.waitpid(pid, 0)[1]
        self._cli(tool, 'delete', 'bench')

    def _run(self, tool):
        self.codes[tool + '_run'] = self._cli(tool, 'run', '--bundle', self.bundle, 'bench')

    def run_nsbox(self):
        self._lifecycle('nsbox')

    def run_nsbox_run(self):
        self._run('nsbox')

    def run_nsbox_pyc(self):
        self._lifecycle('nsbox_pyc')

    def run_nsbox_pyc_run(self):
        self._run('nsbox_pyc')

    def run_runc(self):
        self._lifecycle('runc')

    def run_runc_run(self):
        self._run('runc')

    def run_crun(self):
        self._lifecycle('crun')

    def run_crun_run(self):
        self._run('crun')

    def verify(self, side):
        if self.codes.pop(side) != 0:
            raise RuntimeError('%s: /bin/true did not exit 0' % side)


MEASURES = {'host-noop': HostNoop, 'cli-start': CliStart, 'image-pull': ImagePull, 'bridge-run': BridgeRun, 'oci': OciLifecycle}


def run_measure(measure, runs=None):
    """Time every side ``runs`` times (after one untimed warm-up round), sides alternating within each round."""
    runs = runs or measure.runs
    sides = list(measure.ours) + list(measure.peers)
    times = {side: [] for side in sides}
    try:
        measure.setup()
        for round_no in range(runs + 1):  # round 0 warms up and is not counted
            for side in sides:
                measure.prepare(side)
                start = time.perf_counter()
                getattr(measure, 'run_' + side)()
                elapsed = time.perf_counter() - start
                measure.verify(side)
                if round_no:
                    times[side].append(elapsed)
    finally:
        measure.teardown()
    medians = {side: statistics.median(times[side]) for side in sides}
    return {'measure': measure.name, 'detail': measure.detail, 'runs': runs, 'peers': list(measure.peers),
            'sides': [{'side': side, 'label': measure.labels.get(side, side), 'nsbox': side in measure.ours, 'median': medians[side],
                       'min': min(times[side]), 'max': max(times[side]), 'times': times[side]} for side in sides],
            'ratios': {side: {peer: medians[side] / medians[peer] for peer in measure.peers} for side in sides}}


def format_result(result):
    """One measure's table: a row per side, and per peer a column of ratios (this side's median / the peer's)."""
    width = max(len(s['label']) for s in result['sides'])
    lines = ['%s, %d runs%s' % (result['measure'], result['runs'], ': ' + result['detail'] if result['detail'] else ''),
             '  %-*s %9s %17s' % (width, 'side', 'median', 'min-max') + ''.join('  %14s' % ('/ ' + p) for p in result['peers'])]
    for s in result['sides']:
        lines.append('  %-*s %8.3fs %17s' % (width, s['label'], s['median'], '%.3f-%.3f' % (s['min'], s['max']))
                     + ''.join('  %14.2f' % result['ratios'][s['side']][p] for p in result['peers']))
    return '\n'.join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('measures', nargs='*', choices=[[]] + sorted(MEASURES), help='default: all')
    parser.add_argument('--runs', type=int, help='timed runs per side (default: each measure\'s own)')
    args = parser.parse_args()
    results = []
    for name in args.measures or sorted(MEASURES):
        results.append(run_measure(MEASURES[name](), args.runs))
        print(format_result(results[-1]) + '\n', flush=True)
    out = os.path.join(REPO, 'bench', 'results')
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, 'bench-%s.json' % time.strftime('%Y%m%dT%H%M%S'))
    with open(path, 'w') as f:
        json.dump(results, f, indent=1)
    print('report: %s' % path)


if __name__ == '__main__':
    main()
