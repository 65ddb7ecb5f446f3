# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible-level measures: the same Ansible drives nsbox.runtime.container and containers.podman.podman_container.

Both modules run over SSH on one private test host (harness.testhost: its own /etc, /var/lib
and /run). podman keeps its storage in a directory of the bench's own (``--root``/``--runroot``
through the module's ``cmd_args``), uses runc (crun refuses this hybrid cgroup host) with the
cgroupfs manager and file events, and gets the explicit ulimits this host needs (root here
lacks CAP_SYS_RESOURCE). containers.podman comes from the ``ansible`` package on PyPI: its
wheel is downloaded once (pinned by hash in bench/peers.txt) and only that collection is
taken out of it.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile

from common import DATA_ROOT, REPO, PrivatePodman, _OnTestHost, _run, _unmount_under
from harness import images

PEERS_CACHE = '/var/tmp/nsbox-bench-peers'
PODMAN_IMAGE = 'localhost/nsbox/busybox:latest'
ULIMITS = ['nofile=20000:20000', 'nproc=32768:32768']


def podman_collection(collections_dir):
    """Put containers.podman (from the pinned ``ansible`` wheel) into ``collections_dir``."""
    wheel_dir = os.path.join(PEERS_CACHE, 'wheels')
    wheels = [n for n in os.listdir(wheel_dir) if n.endswith('.whl')] if os.path.isdir(wheel_dir) else []
    if not wheels:
        _run([sys.executable, '-m', 'pip', 'download', '-q', '--no-deps', '--require-hashes', '-r', os.path.join(REPO, 'bench', 'peers.txt'),
              '-d', wheel_dir], timeout=900)
        wheels = [n for n in os.listdir(wheel_dir) if n.endswith('.whl')]
    prefix = 'ansible_collections/containers/podman/'
    with zipfile.ZipFile(os.path.join(wheel_dir, wheels[0])) as whl:
        whl.extractall(collections_dir, [n for n in whl.namelist() if n.startswith(prefix)])


class _AnsiblePeers(_OnTestHost):
    """A test host with busybox loaded in nsbox's store and in a private podman store."""

    ours = ('nsbox',)
    peers = ('podman',)

    def setup(self):
        self.work = tempfile.mkdtemp(prefix='nsbox-b-', dir='/var/tmp')  # podman refuses a runroot over 50 characters
        super().setup()
        podman_collection(self.runner_collections())
        fixtures = images.FixtureImages('/var/tmp/nsbox-fixture-images').build()
        res = self.runner.module('nsbox.runtime.image', {'name': 'busybox', 'source': 'load', 'path': fixtures.docker_archive, 'data_root': DATA_ROOT})
        if res['_status'] == 'failed':
            raise RuntimeError('loading busybox into nsbox failed: %s' % res.get('msg'))
        self.podman = PrivatePodman(os.path.join(self.work, 'podman'))
        if not self.podman.works():
            self.podman = PrivatePodman(os.path.join(self.work, 'podman'), 'vfs')
        self.podman('load', '-i', fixtures.docker_archive)
        # podman_container runs podman on the test host; the wrapper gives it PrivatePodman's storage and config.
        self.wrapper = os.path.join(self.work, 'podman-wrapper')
        with open(self.wrapper, 'w') as f:
            f.write('#!/bin/sh\n' + ''.join('export %s=%s\n' % (k, self.podman.env[k]) for k in
                                            ('CONTAINERS_CONF', 'CONTAINERS_REGISTRIES_CONF', 'CONTAINERS_STORAGE_CONF', 'REGISTRY_AUTH_FILE', 'TMPDIR'))
                    + 'exec podman "$@"\n')
        os.chmod(self.wrapper, 0o755)
        self.cmd_args = ['--root', self.podman.root, '--runroot', self.podman.runroot, '--storage-driver', self.podman.driver,
                         '--runtime', 'runc', '--cgroup-manager=cgroupfs', '--events-backend=file']

    def runner_collections(self):
        """The runner's collections path (it holds nsbox.runtime; containers.podman goes beside it)."""
        with open(self.runner.config) as f:
            return [line.split('=', 1)[1].strip() for line in f if line.startswith('collections_path')][0]

    def nsbox_task(self, name, state='started'):
        return {'nsbox.runtime.container': {'name': name, 'image': 'busybox', 'command': ['sleep', '100000'], 'state': state,
                                            'network_mode': 'none', 'data_root': DATA_ROOT}}

    def podman_task(self, name, state='started'):
        return {'containers.podman.podman_container': {'name': name, 'image': PODMAN_IMAGE, 'command': ['sleep', '100000'], 'state': state,
                                                       'network': ['none'], 'ulimit': ULIMITS, 'executable': self.wrapper,
                                                       'cmd_args': self.cmd_args}}

    def remove_all(self):
        """Remove every container of both sides (untimed)."""
        self.runner.tasks([{'name': 'list', 'nsbox.runtime.container_info': {'data_root': DATA_ROOT}, 'register': 'info'},
                           {'name': 'rm', 'nsbox.runtime.container': {'name': '{{ item.name }}', 'state': 'absent', 'force_kill': True,
                                                                      'data_root': DATA_ROOT},
                            'loop': '{{ info.containers }}'}])
        # on the test host: podman's mounts for its containers live in the test host's mount namespace
        self.runner.tasks([{'name': 'podman rm', 'ansible.builtin.command': {'argv': [self.wrapper] + self.cmd_args + ['rm', '-a', '-f', '-t', '0']}}])

    def teardown(self):
        try:
            if getattr(self, 'wrapper', None):
                self.remove_all()
        finally:
            super().teardown()
            if getattr(self, 'podman', None):
                self.podman.reset()
            if getattr(self, 'work', None):
                _unmount_under(self.work)
                shutil.rmtree(self.work, ignore_errors=True)


class ModuleStart(_AnsiblePeers):
    """One ad-hoc task over SSH that creates and starts a container (no network), from nothing."""

    name = 'container module start over SSH'
    labels = {'nsbox': 'nsbox.runtime.container', 'podman': 'containers.podman.podman_container'}
    runs = 5

    def setup(self):
        super().setup()
        self.detail = 'one task: create + start busybox sleep, network none; the container is removed between runs (untimed)'
        self.res = {}

    def prepare(self, side):
        self.remove_all()

    def run_nsbox(self):
        self.res['nsbox'] = self.runner.tasks([dict(self.nsbox_task('bench-start'), name='start')])

    def run_podman(self):
        self.res['podman'] = self.runner.tasks([dict(self.podman_task('bench-start'), name='start')])

    def verify(self, side):
        res = self.res[side]
        if res.rc != 0 or len(res.changed) != 1:
            raise RuntimeError('%s: the start task did not change exactly once: %r' % (side, res))


class NoopConverge(_AnsiblePeers):
    """A play declaring 20 running containers, run again when all are as declared: every task ``ok``."""

    name = 'idempotent no-op converge of 20 containers'
    ours = ('batch', 'nsbox')
    labels = {'batch': 'nsbox.runtime.containers (1 task, 20)', 'nsbox': 'nsbox.runtime.container x20 (loop)',
              'podman': 'containers.podman.podman_container x20'}
    runs = 3
    count = 20

    def setup(self):
        super().setup()
        self.detail = ('ansible-playbook, %d declared running containers, nothing to change: one task looping over them '
                       '(both modules), or the containers module (the containers role\'s way)' % self.count)
        self.res = {}
        self.plays = {}
        for side, task in (('nsbox', self.nsbox_task), ('podman', self.podman_task)):
            loop_task = dict(task('bench-%s-{{ item }}' % side), name='converge', loop=list(range(self.count)))
            self.plays[side] = [{'hosts': 'testhosts', 'gather_facts': False, 'tasks': [loop_task]}]
        one = self.nsbox_task('x')['nsbox.runtime.container']
        items = [dict(one, name='bench-batch-%d' % i) for i in range(self.count)]
        for item in items:
            del item['data_root']
        self.plays['batch'] = [{'hosts': 'testhosts', 'gather_facts': False, 'tasks': [
            {'name': 'converge', 'nsbox.runtime.containers': {'containers': items, 'data_root': DATA_ROOT}}]}]
        for side, play in self.plays.items():
            first = self.runner.playbook(play)
            if first.rc != 0:
                raise RuntimeError('%s: the first converge failed: %r' % (side, first))

    def run_batch(self):
        self.res['batch'] = self.runner.playbook(self.plays['batch'])

    def run_nsbox(self):
        self.res['nsbox'] = self.runner.playbook(self.plays['nsbox'])

    def run_podman(self):
        self.res['podman'] = self.runner.playbook(self.plays['podman'])

    def verify(self, side):
        res = self.res[side]
        if res.rc != 0 or res.changed or len(res.records) != 1:
            raise RuntimeError('%s: not a no-op converge: %r' % (side, res))
