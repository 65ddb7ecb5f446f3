# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Managed hosts for tests and the demo: an sshd on 127.0.0.1 that Ansible reaches over SSH.

A *private* test host runs its sshd in a mount namespace of its own, where ``/etc``,
``/usr/local``, ``/var/lib`` and ``/run`` are overlays on the real ones and the data-root
``/var/lib/nsbox`` is a real directory (overlay layers cannot live on an overlay). So a
module under test writes ``/etc/nsbox/config.json`` or ``/usr/local/bin/nsbox`` for real,
at their real paths, and the machine's own files stay untouched. It shares the kernel,
the pid and the network namespace with the machine (cgroups, loopback, /proc).

With ``netns=True`` it has a network namespace of its own too (only ``lo``, brought up), so
what a module does to the network (bridges, veths, nftables, sysctls) stays in it and goes
with it. Its sshd listens on that namespace's 127.0.0.1; SSH reaches it through a
ProxyCommand (nsrelay.py) that joins the namespace: the machine's network is not touched.

For Molecule's hosts (tests/harness/lab.py) a private host can also have a hostname of its
own (a UTS namespace) and a cgroup of its own: its sshd is moved into ``cgroup`` (every
hierarchy) before ``unshare --cgroup``, and the host's ``/sys/fs/cgroup`` is mounted afresh in
its namespaces, so the host sees that cgroup as its root. What runs on it (containers under
``/nsbox``) lands under the host's cgroup, and stop() kills everything in it and removes it.

A private host starts with no trace of the machine's own nsbox (a demo kept running, a real
installation): nsbox's files (``FRESH_PATHS``: the host config, the library, the state dir) are
removed in its overlays, and the machine's nsbox mounts it got as copies with its mount
namespace (containers' rootfs under the machine's data-root, persisted namespaces under the state
dir) are unmounted there. So a module run on it never reads the machine's config (whose data-root
may be a directory the overlays do not cover) and the tests count only what they made. Both
happen in its private namespace: the machine's files and mounts stay as they are.

The demo uses a plain (non-private) host: there, the play configures this machine.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from .lifecycle import SshHost
from .netutil import free_port

SSHD = '/usr/sbin/sshd'
CGROUP_ROOT = '/sys/fs/cgroup'
PRIVATE_OVERLAYS = ('/etc', '/usr/local', '/var/lib', '/run')
DATA_ROOT = '/var/lib/nsbox'
STATE_DIR = '/run/nsbox'
MACHINE_CONFIG = '/etc/nsbox/config.json'
# nsbox's files as an installation leaves them (the host module and role): removed in a private host's overlays.
FRESH_PATHS = ('/etc/nsbox', '/usr/local/lib/nsbox', '/usr/local/bin/nsbox', STATE_DIR,
               '/etc/sysctl.d/90-nsbox.conf', '/etc/modules-load.d/nsbox.conf')


def _keygen(path):
    subprocess.run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', path], check=True,
                   stdout=subprocess.DEVNULL)


def _unescape(field):
    """A mountinfo path field with its octal escapes (``\\040`` for a space) decoded."""
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


def machine_nsbox_roots(config=MACHINE_CONFIG):
    """Where the machine's own nsbox keeps its mounts: the default data-root and state dir, and the ones its config names."""
    roots = {DATA_ROOT, STATE_DIR}
    with contextlib.suppress(OSError, ValueError):
        with open(config) as f:
            cfg = json.load(f)
        roots.update(os.path.normpath(cfg[k]) for k in ('data_root', 'state_dir') if isinstance(cfg.get(k), str) and cfg[k].startswith('/'))
    return sorted(roots)


def machine_nsbox_mounts(mountinfo='/proc/self/mountinfo', roots=None):
    """Mount points at or below the machine's nsbox roots, deepest first (what a new mount namespace gets copies of)."""
    roots = machine_nsbox_roots() if roots is None else roots
    with open(mountinfo) as f:
        points = [_unescape(line.split()[4]) for line in f if line.strip()]
    return sorted({p for p in points if any(p == r or p.startswith(r.rstrip('/') + '/') for r in roots)},
                  key=lambda p: (-p.count('/'), p))


def cgroup_mounts(mountinfo='/proc/self/mountinfo'):
    """[(mount point, fstype, mount options)] of the machine's cgroup hierarchies, and [(link, target)] beside them."""
    # Only hosts with a cgroup of their own need the library (the demo's plain host does not import it).
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import mountinfo as mi  # pylint: disable=import-outside-toplevel
    mounts = [(m.mount_point, m.fstype, ','.join(o for o in m.super_options if o not in ('rw', 'ro')) or 'none')
              for m in mi.read(mountinfo) if m.fstype in ('cgroup', 'cgroup2')]
    links = [(os.path.join(CGROUP_ROOT, n), os.readlink(os.path.join(CGROUP_ROOT, n)))
             for n in sorted(os.listdir(CGROUP_ROOT)) if os.path.islink(os.path.join(CGROUP_ROOT, n))]
    return mounts, links


def make_cgroup(path):
    """``path`` (e.g. ``/nsbox-lab-x/h1``) in every hierarchy; cpuset's cpus and mems filled from the parent, as v1 needs."""
    mounts, _links = cgroup_mounts()
    dirs = []
    for point, _fstype, options in mounts:
        parts = path.strip('/').split('/')
        for i in range(1, len(parts) + 1):
            d = os.path.join(point, *parts[:i])
            if not os.path.isdir(d):
                os.mkdir(d)
            if 'cpuset' in options.split(','):
                for knob in ('cpuset.cpus', 'cpuset.mems'):
                    with open(os.path.join(os.path.dirname(d), knob)) as src, open(os.path.join(d, knob), 'w') as dst:
                        dst.write(src.read())
        dirs.append(os.path.join(point, path.strip('/')))
    return dirs


def remove_cgroup(path):
    """SIGKILL every process under ``path`` (every hierarchy), then remove the directories, deepest first."""
    mounts, _links = cgroup_mounts()
    for point, _fstype, _options in mounts:
        top = os.path.join(point, path.strip('/'))
        for _attempt in range(100):
            walk = sorted(os.walk(top), key=lambda e: -e[0].count('/'))
            for dirpath, _dirs, _files in walk:
                with contextlib.suppress(OSError), open(os.path.join(dirpath, 'cgroup.procs')) as f:
                    for pid in f.read().split():
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(int(pid), signal.SIGKILL)
                with contextlib.suppress(FileNotFoundError, OSError):
                    os.rmdir(dirpath)
            if not os.path.isdir(top):
                break
            time.sleep(0.05)


def _cgroup_script(mounts, links):
    """Shell lines (run in the new cgroup namespace) mounting the hierarchies afresh: rooted at the host's cgroup."""
    lines = ['mount -t tmpfs -o mode=0755 nsbox-cgroup %s' % CGROUP_ROOT]
    for point, fstype, options in mounts:
        lines.append('mkdir -p %s' % point)
        lines.append('mount -t %s -o %s nsbox-cgroup %s' % (fstype, options, point) if fstype == 'cgroup'
                     else 'mount -t cgroup2 nsbox-cgroup %s' % point)
    lines += ['ln -s %s %s' % (target, link) for link, target in links]
    return lines


def _ns_setup_script(work, sshd_cmd, propagation='private', netns=False, hostname=None, cgroup=None):
    """Shell run inside the new mount namespace: overlays, the data-root, then exec sshd.

    First the copies of the machine's nsbox mounts are unmounted (the namespace's mounts are private
    copies by then: nothing of it reaches the machine), and after the overlays nsbox's files are
    removed in them (whiteouts in the host's upper dirs). With ``propagation='shared'`` every mount of the namespace is made shared, as systemd mounts
    ``/`` — after unshare made them private copies, so they form peer groups of this namespace
    only and nothing can propagate to the machine's own mounts.
    """
    lines = ['set -e']
    if netns:
        lines.append('ip link set lo up')
    if hostname:
        lines.append('hostname %s' % hostname)
    if cgroup:
        lines += _cgroup_script(*cgroup_mounts())
    lines += ['umount -l %s 2>/dev/null || true' % shlex.quote(point) for point in machine_nsbox_mounts()]
    if propagation == 'shared':
        lines.append('mount --make-rshared /')
    for i, target in enumerate(PRIVATE_OVERLAYS):
        upper, wdir = '%s/ov/%d/upper' % (work, i), '%s/ov/%d/work' % (work, i)
        lines.append('mkdir -p %s %s' % (upper, wdir))
        lines.append('mount -t overlay nsbox-testhost -o lowerdir=%s,upperdir=%s,workdir=%s %s' % (target, upper, wdir, target))
    if hostname:
        lines.append('echo %s > /etc/hostname' % hostname)
    lines.append('rm -rf %s' % ' '.join(FRESH_PATHS))
    lines += ['mkdir -p %s /run/sshd' % DATA_ROOT,
              'mount --bind %s/data-root %s' % (work, DATA_ROOT),
              'exec ' + ' '.join(sshd_cmd)]
    return '\n'.join(lines) + '\n'


class TestHost(SshHost):
    """One SSH-reachable host; use as a context manager (stop() always runs)."""

    __test__ = False  # not a pytest class

    def __init__(self, name='testhost', private=True, workdir=None, propagation='private', netns=False,
                 hostname=None, cgroup=None, listen='127.0.0.1', port=None):
        self.name = name
        self.private = private
        self.netns = netns and private
        self.hostname = hostname if private else None
        self.cgroup = cgroup if private else None
        self.listen = listen if self.netns else '127.0.0.1'  # another address only in a network namespace of its own
        self.propagation = propagation
        self._own_workdir = workdir is None
        # Short paths: ssh control sockets must fit in 108 bytes.
        self.workdir = workdir or tempfile.mkdtemp(prefix='nsbox-%s-' % name, dir='/tmp')
        self.port = port
        self.proc = None
        self.client_key = os.path.join(self.workdir, 'id_client')
        self.control_dir = os.path.join(self.workdir, 'cp')
        self.remote_tmp = os.path.join(self.workdir, 'remote-tmp')
        self.mnt_ns = None
        self._mnt_ns_fd = None
        self.net_ns_path = None

    # -- lifecycle -------------------------------------------------------------------
    def _start(self):
        os.makedirs(self.control_dir, exist_ok=True)
        os.makedirs(self.remote_tmp, mode=0o700, exist_ok=True)
        os.makedirs('/run/sshd', exist_ok=True)  # sshd's privilege-separation directory
        _keygen(os.path.join(self.workdir, 'host_key'))
        _keygen(self.client_key)
        shutil.copy(self.client_key + '.pub', os.path.join(self.workdir, 'authorized_keys'))
        self.port = self.port or free_port()
        config = os.path.join(self.workdir, 'sshd_config')
        with open(config, 'w') as f:
            f.write('\n'.join([
                'Port %d' % self.port, 'ListenAddress %s' % self.listen,
                'HostKey %s/host_key' % self.workdir,
                'AuthorizedKeysFile %s/authorized_keys' % self.workdir,
                'PidFile %s/sshd.pid' % self.workdir,
                'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
                'StrictModes no', 'UsePAM no', 'MaxSessions 50', 'MaxStartups 50:30:100',
                'Subsystem sftp internal-sftp', 'LogLevel ERROR', '',
            ]))
        sshd_cmd = [SSHD, '-D', '-e', '-f', config]
        log = open(os.path.join(self.workdir, 'sshd.log'), 'wb')  # pylint: disable=consider-using-with
        with log:
            if self.private:
                os.makedirs(os.path.join(self.workdir, 'data-root'))
                flags = ['--net'] * self.netns + ['--uts'] * bool(self.hostname) + ['--cgroup'] * bool(self.cgroup)
                cmd = (['unshare', '--mount'] + flags + ['--propagation', 'private', '--', 'sh', '-c']
                       + [_ns_setup_script(self.workdir, sshd_cmd, self.propagation, self.netns, self.hostname, self.cgroup)])
            else:
                cmd = sshd_cmd
            procs = [os.path.join(d, 'cgroup.procs') for d in make_cgroup(self.cgroup)] if self.cgroup else []

            def join():  # in the child, before exec: unshare --cgroup then roots the namespace here
                for path in procs:
                    with open(path, 'w') as f:
                        f.write('0')
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                         stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=join if procs else None)
        self._wait_listening(20)
        if self.private:
            self.mnt_ns = os.readlink('/proc/%d/ns/mnt' % self.proc.pid)
            # Held open until stop() is done: while it is, the namespace lives and its number cannot be given to another
            # one (the kernel reuses them at once), so stop() never takes another's processes for this host's.
            self._mnt_ns_fd = os.open('/proc/%d/ns/mnt' % self.proc.pid, os.O_RDONLY | os.O_CLOEXEC)
        if self.netns:
            self.net_ns_path = '/proc/%d/ns/net' % self.proc.pid
        self.ssh('true')

    def _listening_in_netns(self):
        """The sshd's socket in its own namespace's table (/proc/PID/net/tcp: that process's namespace)."""
        with contextlib.suppress(OSError), open('/proc/%d/net/tcp' % self.proc.pid) as f:
            want = ':%04X' % self.port
            return any(line.split()[1].endswith(want) and line.split()[3] == '0A' for line in f.readlines()[1:])
        return False

    def _wait_listening(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('sshd of %s exited with %s:\n%s' % (self.name, self.proc.returncode, self.log_tail()))
            if self.netns:
                if self._listening_in_netns():
                    return
            else:
                with contextlib.suppress(OSError), socket.create_connection(('127.0.0.1', self.port), timeout=1):
                    return
            time.sleep(0.05)
        raise RuntimeError('sshd of %s is not listening after %ds:\n%s' % (self.name, timeout, self.log_tail()))

    def log_tail(self, n=20):
        with contextlib.suppress(OSError), open(os.path.join(self.workdir, 'sshd.log'), errors='replace') as f:
            return ''.join(f.readlines()[-n:])
        return ''

    def _namespace_pids(self):
        """Pids of processes in this host's mount namespace (all were started through its sshd)."""
        pids = []
        for entry in os.listdir('/proc'):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    if os.readlink('/proc/%s/ns/mnt' % entry) == self.mnt_ns:
                        pids.append(int(entry))
        return pids

    def stop(self):
        """Close SSH masters, end the sshd (and, for a private host, every process in its namespace)."""
        if os.path.isdir(self.control_dir):
            for sock in os.listdir(self.control_dir):
                subprocess.run(['ssh', '-o', 'ControlPath=%s' % os.path.join(self.control_dir, sock), '-O', 'exit', 'x'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=10)
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.mnt_ns:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                pids = self._namespace_pids()
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                deadline = time.monotonic() + 5
                while pids and time.monotonic() < deadline:
                    time.sleep(0.05)
                    pids = self._namespace_pids()
                if not pids:
                    break
        if self.cgroup:
            remove_cgroup(self.cgroup)  # the containers too: they run in mount namespaces of their own
        if self._mnt_ns_fd is not None:
            os.close(self._mnt_ns_fd)
            self._mnt_ns_fd = None
        self.proc = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    # -- reaching it -----------------------------------------------------------------
    def proxy_command(self):
        """SSH's ProxyCommand for a host with a network namespace of its own, else None."""
        if not self.netns:
            return None
        return '/usr/bin/python3 %s %s %d' % (os.path.join(os.path.dirname(os.path.abspath(__file__)), 'nsrelay.py'),
                                              self.net_ns_path, self.port)

    def ssh_args(self):
        proxy = ['-o', 'ProxyCommand=%s' % self.proxy_command()] if self.netns else []
        return ['ssh', '-p', str(self.port), '-i', self.client_key, '-o', 'IdentitiesOnly=yes'] + proxy + [
            '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
            '-o', 'BatchMode=yes', 'root@127.0.0.1']

    def inventory_line(self):
        line = ('%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s '
                'ansible_python_interpreter=/usr/bin/python3 ansible_remote_tmp=%s'
                % (self.name, self.port, self.client_key, self.remote_tmp))
        if self.netns:
            line += ' ansible_ssh_common_args="-o ProxyCommand=\'%s\'"' % self.proxy_command()
        return line
