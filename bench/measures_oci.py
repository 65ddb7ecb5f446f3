# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OCI runtime: one bundle given to nsbox-oci, runc and crun (docs/oci.md)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

from common import Measure
from harness import oci as ocih


class OciLifecycle(Measure):
    """One OCI bundle (busybox /bin/true; pid, net, ipc, uts, mount, cgroup namespaces, a cgroup with limits)
    given to nsbox-oci, runc and crun: create + start + wait + delete as podman drives a runtime (the bench is
    the child subreaper that reaps the init, as conmon is), and each one's ``run``."""

    name = 'OCI runtime: create+start+wait+delete of /bin/true'
    ours = ('nsbox', 'nsbox_run')
    peers = ('runc', 'runc_run', 'crun', 'crun_run')
    labels = {'nsbox': 'nsbox-oci create+start+wait+delete', 'nsbox_run': 'nsbox-oci run',
              'runc': 'runc create+start+wait+delete', 'runc_run': 'runc run',
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
