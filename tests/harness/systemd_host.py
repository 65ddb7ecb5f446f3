# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A test host with systemd as PID 1, reachable over SSH: units tested for real on a machine whose
own PID 1 is not systemd.

The host is made of namespaces: a network namespace of the harness's own (``ip netns``: only ``lo``
there, the machine's network is never touched; SSH reaches its sshd through nsrelay.py as a
ProxyCommand), and pid + mount + uts + ipc + cgroup namespaces in which systemd boots on a root of
its own: a tmpfs with the machine's ``/usr`` read-only, overlays over ``/etc``, ``/var``, ``/root``,
``/usr/local`` (upper dirs in the host's work directory, so they survive a "reboot"), a fresh
``/run``, ``/tmp`` and ``/dev``, ``/proc/sys`` read-only but for ``net`` (which is the namespace's),
``/sys`` read-only, and a real directory at ``/var/lib/nsbox`` (overlay layers cannot live on an
overlay). The host's systemd never sees the machine's root.

The trap: a systemd booted in the machine's cgroup takes that cgroup over, and removes empty cgroups
when it stops. So the boot happens in a cgroup of the harness's own
(``/sys/fs/cgroup/unified/nsbox-systemd-test-<hex>``, cgroup v2) and in a cgroup namespace rooted
there, with only cgroup2 mounted inside: the inner systemd sees a pure cgroup v2 tree whose root is
that cgroup (on this hybrid machine it has no controllers: the v1 hierarchies hold them). Every
process of the host is in that cgroup, which is how the teardown finds and kills them all.

Units that must not start (the machine's enabled services: a registry, postgresql, podman, ssh; udev,
sysctl, module loading, binfmt, getty...) are masked at the first boot; the host's own sshd is a
unit ``nsbox-test-sshd.service`` in ``multi-user.target``. ``reboot()`` powers systemd off
(SIGRTMIN+4, as ``systemctl poweroff``), waits for every process to end, and boots again on the
same upper dirs: enabled units come back, as after a real reboot.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time

from . import cgroupfs
from .lifecycle import SshHost
from .testhost import _keygen

UNIFIED = '/sys/fs/cgroup/unified'
SYSTEMD = '/lib/systemd/systemd'
SSHD = '/usr/sbin/sshd'
OVERLAYS = ('etc', 'var', 'root', 'usr/local')
DATA_ROOT = '/var/lib/nsbox'
# Masked at the first boot: what would touch the machine (modules, sysctls, binfmt, udev, the kernel's
# debug filesystems), what a container has no use for (getty, logind, random seed, first boot), and
# the machine's services (their wants in /etc are dropped too).
MASK = (
    'systemd-modules-load.service', 'systemd-binfmt.service', 'proc-sys-fs-binfmt_misc.automount', 'proc-sys-fs-binfmt_misc.mount',
    'systemd-sysctl.service', 'systemd-udevd.service', 'systemd-udevd-control.socket', 'systemd-udevd-kernel.socket',
    'systemd-udev-trigger.service', 'systemd-udev-settle.service', 'systemd-hwdb-update.service',
    'dev-hugepages.mount', 'dev-mqueue.mount', 'sys-fs-fuse-connections.mount', 'sys-kernel-config.mount',
    'sys-kernel-debug.mount', 'sys-kernel-tracing.mount', 'tmp.mount', 'systemd-remount-fs.service',
    'systemd-firstboot.service', 'systemd-machine-id-commit.service', 'systemd-pcrphase-sysinit.service',
    'systemd-pcrphase.service', 'systemd-repart.service', 'systemd-random-seed.service', 'systemd-sysusers.service',
    'systemd-logind.service', 'getty.target', 'getty-static.service', 'console-getty.service', 'systemd-ask-password-wall.path',
    'systemd-ask-password-console.path', 'systemd-tmpfiles-clean.timer', 'systemd-journald-audit.socket', 'kmod-static-nodes.service',
    'systemd-timesyncd.service', 'systemd-pstore.service', 'e2scrub_reap.service', 'ssh.service', 'ssh.socket', 'sshd.service',
    'cron.service', 'postgresql.service', 'docker-registry.service', 'podman.service', 'podman.socket', 'podman-restart.service',
    'podman-auto-update.service', 'podman-auto-update.timer', 'apt-daily.timer', 'apt-daily-upgrade.timer', 'dpkg-db-backup.timer',
    'e2scrub_all.timer', 'fstrim.timer', 'man-db.timer', 'logrotate.timer', 'systemd-networkd.service', 'systemd-resolved.service',
    'networking.service', 'cni-dhcp.socket', 'packagekit.service', 'remote-fs.target', 'cryptsetup.target', 'veritysetup.target',
    'integritysetup.target', 'systemd-update-utmp-runlevel.service', 'systemd-user-sessions.service',
)
SSHD_UNIT = '''[Unit]
Description=sshd of the nsbox test host
After=network.target

[Service]
ExecStartPre=/bin/mkdir -p /run/sshd
ExecStart=/usr/sbin/sshd -D -e -f /etc/nsbox-test/sshd_config
KillMode=process

[Install]
WantedBy=multi-user.target
'''


def _boot_script(work, name, port):
    """Run as PID 1 of the new pid namespace (in the new mount, uts, ipc, cgroup namespaces): build the root, then exec systemd."""
    root = '%s/root' % work
    lines = ['set -e', 'hostname %s' % name, 'ip link set lo up',
             'mkdir -p %s' % root, 'mount -t tmpfs -o mode=755 nsbox-sdhost %s' % root]
    for link in ('bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'):
        lines.append('if [ -L /{0} ]; then ln -s "$(readlink /{0})" {1}/{0}; fi'.format(link, root))
    lines += ['mkdir -p %s/usr' % root, 'mount --bind /usr %s/usr' % root, 'mount -o remount,bind,ro %s/usr' % root]
    for i, d in enumerate(OVERLAYS):
        upper, wdir = '%s/ov/%d/upper' % (work, i), '%s/ov/%d/work' % (work, i)
        lines += ['mkdir -p %s %s %s/%s' % (upper, wdir, root, d),
                  'mount -t overlay nsbox-sdhost -o lowerdir=/%s,upperdir=%s,workdir=%s %s/%s' % (d, upper, wdir, root, d)]
    lines += ['mkdir -p %s%s && mount --bind %s/data-root %s%s' % (root, DATA_ROOT, work, root, DATA_ROOT)]
    for d in ('proc', 'sys', 'dev', 'run', 'tmp', 'srv', 'opt', 'home', 'mnt'):
        lines.append('mkdir -p %s/%s' % (root, d))
    lines += ['mount -t tmpfs -o mode=755,nosuid,nodev nsbox-sdhost %s/run' % root,
              'mount -t tmpfs -o mode=1777,nosuid,nodev nsbox-sdhost %s/tmp' % root,
              'mount -t tmpfs -o mode=755,nosuid nsbox-sdhost %s/dev' % root]
    for node in ('null', 'zero', 'full', 'random', 'urandom', 'tty'):
        lines += ['touch %s/dev/%s' % (root, node), 'mount --bind /dev/%s %s/dev/%s' % (node, root, node)]
    lines += ['mkdir -p %s/dev/pts %s/dev/shm' % (root, root),
              'mount -t devpts -o newinstance,ptmxmode=0666,mode=620,gid=5 devpts %s/dev/pts' % root,
              'ln -s pts/ptmx %s/dev/ptmx' % root, 'mount -t tmpfs -o mode=1777,nosuid,nodev shm %s/dev/shm' % root,
              'ln -s /proc/self/fd %s/dev/fd' % root,
              'mount -t proc -o nosuid,nodev,noexec proc %s/proc' % root,
              'mount --bind %s/proc/sys %s/proc/sys' % (root, root), 'mount -o remount,bind,ro %s/proc/sys' % root,
              'mount --bind %s/proc/sys/net %s/proc/sys/net' % (root, root), 'mount -o remount,bind,rw %s/proc/sys/net' % root,
              'if [ -e {0}/proc/sysrq-trigger ]; then mount --bind {0}/proc/sysrq-trigger {0}/proc/sysrq-trigger; '
              'mount -o remount,bind,ro {0}/proc/sysrq-trigger; fi'.format(root),
              'mount -t sysfs -o ro,nosuid,nodev,noexec sysfs %s/sys' % root,
              'mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 %s/sys/fs/cgroup' % root]
    # First boot: the host's identity, its sshd, and what must not start.
    etc = '%s/etc' % root
    units = '%s/systemd/system' % etc
    lines += ['if [ ! -e %s/prepared ]; then' % work,
              '  echo %s > %s/hostname' % (name, etc),
              # root's shell files are the machine's (pyenv: a rehash waits on the machine's lock file at every login)
              '  printf "" > %s/root/.bashrc; printf "" > %s/root/.profile' % (root, root),
              # nsbox as the machine may have it (a demo's config with another data-root): the host starts without
              '  rm -rf %s/nsbox %s/usr/local/lib/nsbox %s/usr/local/bin/nsbox' % (etc, root, root),
              '  rm -rf %s/*.wants %s/default.target' % (units, units),
              '  ln -s /lib/systemd/system/multi-user.target %s/default.target' % units,
              '  for u in %s; do ln -sf /dev/null %s/$u; done' % (' '.join(MASK), units),
              '  mkdir -p %s/nsbox-test %s/multi-user.target.wants' % (etc, units),
              '  cp %s/host_key %s/authorized_keys %s/nsbox-test/' % (work, work, etc),
              '  printf "%s" > %s/nsbox-test/sshd_config' % ('\\n'.join([
                  'Port %d' % port, 'ListenAddress 127.0.0.1', 'HostKey /etc/nsbox-test/host_key',
                  'AuthorizedKeysFile /etc/nsbox-test/authorized_keys', 'PidFile /run/nsbox-test-sshd.pid',
                  'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'StrictModes no', 'UsePAM no',
                  'MaxSessions 50', 'MaxStartups 50:30:100', 'Subsystem sftp internal-sftp', 'LogLevel ERROR', '']), etc),
              "  cat > %s/nsbox-test-sshd.service <<'EOF'\n%sEOF" % (units, SSHD_UNIT),
              '  ln -s ../nsbox-test-sshd.service %s/multi-user.target.wants/' % units,
              '  touch %s/prepared' % work,
              'fi']
    lines += ['cd %s' % root, 'mkdir -p .oldroot', 'pivot_root . .oldroot', 'umount -l /.oldroot', 'rmdir /.oldroot',
              'exec /usr/bin/env -i container=nsbox-test PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 %s' % SYSTEMD]
    return '\n'.join(lines) + '\n'


class SystemdHost(SshHost):
    """One host with systemd as PID 1 (see the module docstring); use as a context manager (stop() always runs)."""

    __test__ = False
    netns = True  # containers may use bridge networking: it stays in the host's network namespace

    def __init__(self, name='sdhost'):
        self.name = name
        self.tag = secrets.token_hex(4)
        # Short paths: ssh control sockets must fit in 108 bytes.
        self.workdir = tempfile.mkdtemp(prefix='nsbox-sd-', dir='/tmp')
        self.cgroup = os.path.join(UNIFIED, 'nsbox-systemd-test-%s' % self.tag)
        self.netns_name = 'nsbox-sd-%s' % self.tag
        self.net_ns_path = '/run/netns/%s' % self.netns_name
        self.client_key = os.path.join(self.workdir, 'id_client')
        self.control_dir = os.path.join(self.workdir, 'cp')
        self.remote_tmp = '/tmp/ansible-remote'
        self.port = 2222
        self.proc = None
        self.boot_seconds = []

    # -- lifecycle -------------------------------------------------------------------
    def start(self, timeout=60):
        try:
            os.makedirs(self.control_dir)
            os.makedirs(os.path.join(self.workdir, 'data-root'))
            _keygen(os.path.join(self.workdir, 'host_key'))
            _keygen(self.client_key)
            shutil.copy(self.client_key + '.pub', os.path.join(self.workdir, 'authorized_keys'))
            subprocess.run(['ip', 'netns', 'add', self.netns_name], check=True)
            os.mkdir(self.cgroup)
            self.boot(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def boot(self, timeout=60):
        """Boot systemd (again) and wait until its sshd answers."""
        t0 = time.monotonic()
        script = _boot_script(self.workdir, self.name, self.port)
        cgroup_procs = os.path.join(self.cgroup, 'cgroup.procs')

        def into_cgroup():  # before the cgroup namespace is made: its root is this cgroup
            with open(cgroup_procs, 'w') as f:
                f.write(str(os.getpid()))
        log = open(os.path.join(self.workdir, 'boot.log'), 'ab')  # pylint: disable=consider-using-with
        with log:
            self.proc = subprocess.Popen(  # pylint: disable=consider-using-with,subprocess-popen-preexec-fn
                ['ip', 'netns', 'exec', self.netns_name, 'unshare', '--pid', '--fork', '--mount', '--uts', '--ipc', '--cgroup',
                 '--propagation', 'private', '--', 'sh', '-c', script],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=into_cgroup)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError('systemd of %s ended (%s) while booting:\n%s' % (self.name, self.proc.returncode, self.log_tail()))
            with contextlib.suppress(subprocess.TimeoutExpired):  # a handshake begun while sshd was starting, on a busy machine
                if self.ssh('true', check=False, timeout=15).returncode == 0:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError('%s did not answer over SSH within %ds:\n%s\n%s' % (self.name, timeout, self.log_tail(), self.processes()))
            time.sleep(0.2)
        self.boot_seconds.append(time.monotonic() - t0)
        return self

    def systemd_pid(self):
        """The host pid of the test host's systemd (PID 1 inside), or None."""
        for pid in self.pids():
            with contextlib.suppress(OSError):
                with open('/proc/%d/status' % pid) as f:
                    for line in f:
                        if line.startswith('NSpid:') and line.split()[-1] == '1' and len(line.split()) > 2:
                            return pid
        return None

    def pids(self):
        """Every process of the host: those in its cgroup tree."""
        out = []
        for dirpath, _dirs, _files in os.walk(self.cgroup):
            with contextlib.suppress(OSError):
                with open(os.path.join(dirpath, 'cgroup.procs')) as f:
                    out += [int(p) for p in f.read().split()]
        return out

    def processes(self):
        """What runs in the host (for error messages): pid and command line."""
        out = []
        for pid in self.pids():
            with contextlib.suppress(OSError), open('/proc/%d/cmdline' % pid, 'rb') as f:
                out.append('%d %s' % (pid, f.read().replace(b'\0', b' ').decode(errors='replace')[:200]))
        return '\n'.join(out)

    def _close_masters(self):
        if os.path.isdir(self.control_dir):
            for sock in os.listdir(self.control_dir):
                subprocess.run(['ssh', '-o', 'ControlPath=%s' % os.path.join(self.control_dir, sock), '-O', 'exit', 'x'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=10)

    def shutdown(self, timeout=60):
        """Power systemd off (SIGRTMIN+4: poweroff.target, units stopped in order), then end what is left by pid."""
        self._close_masters()
        pid = self.systemd_pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGRTMIN + 4)
        if self.proc is not None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        self._kill_all()
        if self.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        self.proc = None

    def _kill_all(self):
        for _round in range(50):
            pids = self.pids() if os.path.isdir(self.cgroup) else []
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)

    def reboot(self, timeout=60):
        self.shutdown()
        return self.boot(timeout)

    def stop(self):
        """Power off, then remove the cgroups, the network namespace and the work directory."""
        with contextlib.suppress(Exception):
            self.shutdown()
        self._kill_all()
        if os.path.isdir(self.cgroup):
            cgroupfs.remove_tree(self.cgroup)
        if os.path.exists(self.net_ns_path):
            subprocess.run(['ip', 'netns', 'delete', self.netns_name], check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n=30):
        with contextlib.suppress(OSError), open(os.path.join(self.workdir, 'boot.log'), errors='replace') as f:
            return ''.join(f.readlines()[-n:])
        return ''

    # -- reaching it -----------------------------------------------------------------
    def proxy_command(self):
        return '/usr/bin/python3 %s %s %d' % (os.path.join(os.path.dirname(os.path.abspath(__file__)), 'nsrelay.py'), self.net_ns_path, self.port)

    def ssh_args(self):
        return ['ssh', '-p', str(self.port), '-i', self.client_key, '-o', 'IdentitiesOnly=yes', '-o', 'ProxyCommand=%s' % self.proxy_command(),
                '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes',
                'root@127.0.0.1']

    def inventory_line(self):
        return ('%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s '
                'ansible_python_interpreter=/usr/bin/python3 ansible_remote_tmp=%s ansible_ssh_common_args="-o ProxyCommand=\'%s\'"'
                % (self.name, self.port, self.client_key, self.remote_tmp, self.proxy_command()))
