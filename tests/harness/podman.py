# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""podman with a private store, for benchmarks and tests that compare with it or drive it (nothing of the machine's touched)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess


def run(cmd, timeout=600, **kwargs):
    """Run a command, raising with its stderr when it fails."""
    res = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if res.returncode != 0:
        raise RuntimeError('%s exited %d:\n%s' % (' '.join(cmd), res.returncode, (res.stderr or res.stdout)[-4000:]))
    return res.stdout


def unmount_under(path):
    """Unmount whatever is mounted at or below ``path`` (deepest first)."""
    with open('/proc/self/mountinfo') as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p == path or p.startswith(path + '/')), key=len, reverse=True):
        if subprocess.run(['umount', point], capture_output=True, check=False).returncode != 0:
            subprocess.run(['umount', '-l', point], capture_output=True, check=False)


def empty_dir(path):
    """Remove everything inside ``path`` but keep ``path`` itself (it may be a bind-mount source)."""
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if os.path.isdir(full) and not os.path.islink(full):
            shutil.rmtree(full)
        else:
            os.unlink(full)


class PrivatePodman:
    """podman as root with all its state under ``home``: storage, run root and config files there, and every
    command in a private mount namespace where /etc, /var/lib and /run are overlays with upper dirs in ``home``.

    The namespace is needed: podman 4.3 as root writes its blob-info cache to /var/lib/containers/cache
    whatever its --root. With it, nothing podman writes reaches the machine, and the storage driver's own
    mounts end with the namespace.
    """

    OVERLAID = ('/etc', '/var/lib', '/run')

    def __init__(self, home, driver='overlay', prefix=(), hide_cgroup2=False):
        self.home, self.driver, self.prefix = home, driver, list(prefix)
        self.root, self.runroot = os.path.join(home, 'root'), os.path.join(home, 'runroot')
        conf = os.path.join(home, 'conf')
        os.makedirs(os.path.join(home, 'tmp'), exist_ok=True)
        os.makedirs(conf, exist_ok=True)
        with open(os.path.join(conf, 'containers.conf'), 'w') as f:
            f.write('[engine]\nevents_logger = "none"\ntmp_dir = "%s/tmp/libpod"\nstatic_dir = "%s/libpod"\nvolume_path = "%s/volumes"\n'
                    'image_copy_tmp_dir = "%s/tmp"\n[network]\nnetwork_config_dir = "%s/networks"\n'
                    % (self.runroot, self.root, self.root, home, home))
        with open(os.path.join(conf, 'registries.conf'), 'w') as f:
            f.write('unqualified-search-registries = []\n')
        with open(os.path.join(conf, 'auth.json'), 'w') as f:
            f.write('{"auths": {}}\n')
        with open(os.path.join(conf, 'storage.conf'), 'w') as f:
            f.write('[storage]\ndriver = "%s"\ngraphroot = "%s"\nrunroot = "%s"\n' % (driver, self.root, self.runroot))
        self.env = dict(os.environ, CONTAINERS_CONF=conf + '/containers.conf', CONTAINERS_REGISTRIES_CONF=conf + '/registries.conf',
                        CONTAINERS_STORAGE_CONF=conf + '/storage.conf', REGISTRY_AUTH_FILE=conf + '/auth.json', TMPDIR=home + '/tmp')
        script = ['set -e']
        for i, target in enumerate(self.OVERLAID):
            upper, work = '%s/ov/%d/upper' % (home, i), '%s/ov/%d/work' % (home, i)
            script += ['mkdir -p %s %s' % (upper, work),
                       'mount -t overlay nsbox-bench -o lowerdir=%s,upperdir=%s,workdir=%s %s' % (target, upper, work, target)]
        if hide_cgroup2:  # crun refuses a hybrid host; in this private mount namespace it sees pure v1
            script.append('umount /sys/fs/cgroup/unified 2>/dev/null || true')
        self.script = '\n'.join(script + ['exec podman "$@"'])

    def __call__(self, *args):
        cmd = self.prefix + ['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', self.script, 'podman',
                             '--root', self.root, '--runroot', self.runroot, '--storage-driver', self.driver]
        return run(cmd + list(args), env=self.env)

    def works(self):
        """Whether podman can set up this storage driver here (then leaves it reset)."""
        try:
            self('info', '--format', '{{.Store.GraphDriverName}}')
            return True
        except RuntimeError:
            return False
        finally:
            self.reset()

    def layer_dirs(self):
        """The unpacked layer directories of every stored layer."""
        with open(os.path.join(self.root, '%s-layers' % self.driver, 'layers.json')) as f:
            ids = [layer['id'] for layer in json.load(f)]
        if self.driver == 'overlay':
            return [os.path.join(self.root, 'overlay', i, 'diff') for i in ids]
        return [os.path.join(self.root, 'vfs', 'dir', i) for i in ids]

    def reset(self):
        """Remove all storage and whatever podman wrote (its mounts went with its namespace; any other goes first)."""
        for path in (self.root, self.runroot, os.path.join(self.home, 'ov')):
            unmount_under(path)
            shutil.rmtree(path, ignore_errors=True)


# Runs on the "managed host" side: the collection's runtime library, called as the image module calls it.
