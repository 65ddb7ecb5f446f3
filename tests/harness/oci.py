# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OCI bundles and a private nsbox-oci for the OCI runtime's tests and benchmark (the same bundle goes to runc and crun)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile

from .images import busybox_rootfs_bytes
from .runner import collections_path

DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']


def install_private(work):
    """nsbox and nsbox-oci installed under ``work`` (lib/, bin/) by the library's own install code (DESIGN D1); returns nsbox-oci's path."""
    code = ('import sys; sys.path.insert(0, sys.argv[1]); '
            'from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import install; '
            "install.LibraryInstall(sys.argv[2] + '/lib', sys.argv[2] + '/bin/nsbox', python='/usr/bin/python3').apply()")
    subprocess.run([sys.executable, '-c', code, collections_path(work), work], check=True)
    return os.path.join(work, 'bin', 'nsbox-oci')


def busybox_rootfs(path):
    """The busybox test rootfs unpacked at ``path``."""
    os.makedirs(path)
    with tarfile.open(fileobj=io.BytesIO(busybox_rootfs_bytes())) as tar:
        tar.extractall(path)  # noqa: S202 - our own archive
    return path


def config(rootfs, args, cgroups_path, hostname='box'):
    """A config.json as `runc spec` writes it (without a terminal), for ``args`` on ``rootfs`` (read-only)."""
    return {
        'ociVersion': '1.0.2',
        'process': {'terminal': False, 'user': {'uid': 0, 'gid': 0}, 'args': list(args), 'cwd': '/',
                    'env': ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'],
                    'capabilities': {k: list(DEFAULT_CAPS) for k in ('bounding', 'effective', 'permitted', 'ambient')},
                    'rlimits': [{'type': 'RLIMIT_NOFILE', 'hard': 1024, 'soft': 1024}], 'noNewPrivileges': True},
        'root': {'path': rootfs, 'readonly': True},
        'hostname': hostname,
        'mounts': [
            {'destination': '/proc', 'type': 'proc', 'source': 'proc'},
            {'destination': '/dev', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'strictatime', 'mode=755', 'size=65536k']},
            {'destination': '/dev/pts', 'type': 'devpts', 'source': 'devpts',
             'options': ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5']},
            {'destination': '/dev/shm', 'type': 'tmpfs', 'source': 'shm', 'options': ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k']},
            {'destination': '/dev/mqueue', 'type': 'mqueue', 'source': 'mqueue', 'options': ['nosuid', 'noexec', 'nodev']},
            {'destination': '/sys', 'type': 'sysfs', 'source': 'sysfs', 'options': ['nosuid', 'noexec', 'nodev', 'ro']},
            {'destination': '/tmp', 'type': 'tmpfs', 'source': 'tmpfs', 'options': ['nosuid', 'nodev']},
        ],
        'linux': {
            'cgroupsPath': cgroups_path,
            'resources': {'devices': [{'allow': False, 'access': 'rwm'}], 'memory': {'limit': 64 << 20}, 'pids': {'limit': 100}},
            'namespaces': [{'type': t} for t in ('pid', 'network', 'ipc', 'uts', 'mount', 'cgroup')],
            'maskedPaths': ['/proc/kcore', '/proc/keys', '/sys/firmware'],
            'readonlyPaths': ['/proc/bus', '/proc/sys', '/proc/sysrq-trigger'],
        },
    }


def write_bundle(path, cfg):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, 'config.json'), 'w') as f:
        json.dump(cfg, f, indent=1)
    return path


def remove_cgroups(parent):
    """Remove cgroup ``parent`` (and what is below it) in every hierarchy: what the containers' runtimes left of their parent."""
    for hierarchy in os.listdir('/sys/fs/cgroup'):
        top = os.path.join('/sys/fs/cgroup', hierarchy, parent.lstrip('/'))
        if os.path.isdir(top):
            for dirpath, _dirs, _files in sorted(os.walk(top), key=lambda e: -e[0].count('/')):
                os.rmdir(dirpath)
