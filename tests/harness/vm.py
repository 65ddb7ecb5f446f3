# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The real-host lane: a Debian 12 VM with systemd as PID 1 and pure cgroup v2, under QEMU (TCG).

This machine is a hybrid cgroup host without systemd; most real hosts are cgroup v2 with systemd.
The VM is such a host, reached over SSH like any test host (``ssh()``, ``inventory_line()``).

Image: built once from Debian packages only (debootstrap minbase of bookworm from the mirror apt
uses, the cloud kernel, a small initrd with the virtio modules), an ext4 disk made with
``mkfs.ext4 -d`` and turned into a qcow2 base. It is cached outside the checkout under
``/var/tmp/nsbox-vm/<hash of the recipe>/``; a changed recipe (package list, files, build code)
gives a new hash and a new build. A build happens in a temp dir renamed into place, so an
interrupted build is never used.

Boot: the kernel and initrd are passed to QEMU directly, the disk is a per-run qcow2 overlay
on the base (every run starts clean), user-mode networking is restricted (the guest reaches
nothing) with one forward from a free 127.0.0.1 port to the guest's sshd, and a QMP socket
saves the booted state once and restores it for each test group. QEMU runs with
``PR_SET_PDEATHSIG``: it dies with the process that started it, however that one ends.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import glob
import hashlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

from .lifecycle import SshHost
from .netutil import free_port
from .runner import AnsibleRunner

CACHE_ROOT = os.environ.get('NSBOX_VM_CACHE') or '/var/tmp/nsbox-vm'
QEMU = 'qemu-system-x86_64'
SUITE = 'bookworm'
DEFAULT_MIRROR = 'http://deb.debian.org/debian'
VM_NAME = 'nsbox-vm'
GROUP = 'realhost'
PR_SET_PDEATHSIG = 1

PACKAGES = (
    'systemd', 'systemd-sysv', 'udev', 'dbus', 'openssh-server', 'iproute2',
    'python3', 'python3-pyroute2', 'python3-nftables', 'python3-seccomp',
    'linux-image-cloud-amd64',
)

# Files written into the root tree after debootstrap: (path, mode, content).
FILES = (
    ('etc/hostname', 0o644, VM_NAME + '\n'),
    ('etc/hosts', 0o644, '127.0.0.1\tlocalhost\n127.0.1.1\t%s\n::1\tlocalhost ip6-localhost ip6-loopback\n' % VM_NAME),
    ('etc/fstab', 0o644, '/dev/vda\t/\text4\trw,noatime,errors=remount-ro\t0\t1\n'),
    ('etc/systemd/network/10-dhcp.network', 0o644, '[Match]\nName=en* eth*\n\n[Network]\nDHCP=ipv4\n'),
    # A small initrd: only what finds the root disk (ext4 is built into the cloud kernel).
    ('etc/initramfs-tools/conf.d/nsbox-vm.conf', 0o644, 'MODULES=list\n'),
    ('etc/initramfs-tools/modules', 0o644, 'virtio_pci\nvirtio_blk\nvirtio_net\n'),
    ('etc/ssh/sshd_config.d/nsbox-vm.conf', 0o644,
     'PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n'
     'UseDNS no\nMaxSessions 50\nMaxStartups 50:30:100\n'),
)

# Run in the root tree (chroot, proc and sysfs mounted in a private mount namespace).
CHROOT_COMMANDS = (
    'systemctl enable systemd-networkd.service',
    # Timers that would fire on the clock jump after a restore, and work a test VM never needs.
    'systemctl mask apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer'
    ' fstrim.timer e2scrub_reap.service',
    'update-initramfs -u -k all',
    'rm -rf /var/cache/apt/archives/*.deb /var/lib/apt/lists/* /var/log/*.log',
)

DISK_SIZE = 4 << 30
KERNEL_CMDLINE = ('root=/dev/vda rw console=ttyS0 quiet loglevel=4 mitigations=off '
                  'systemd.show_status=false 8250.nr_uarts=1')
BOOT_TIMEOUT = 300
RUNNING_TIMEOUT = 180


class QemuUnavailable(Exception):
    """QEMU cannot run on this machine (no binary, or the emulator fails to start): the lane is skipped."""


class VMError(Exception):
    """The VM was built or started, but did not do what it should."""


def log(msg):
    sys.stderr.write('[realhost] %s\n' % msg)
    sys.stderr.flush()


def _run(cmd, timeout=900, **kwargs):
    """Run a build step in a process group of its own; on failure, timeout or interrupt end the whole group."""
    with subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                          start_new_session=True, preexec_fn=_die_with_parent, **kwargs) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group this step started (debootstrap's dpkg, chroot, ...)
            proc.wait()
            raise
    if proc.returncode != 0:
        raise VMError('%s exited %d:\n%s\n%s' % (' '.join(cmd[:6]), proc.returncode, out[-3000:], err[-3000:]))
    return out


def _die_with_parent():
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _deb822_entries(text):
    for stanza in text.split('\n\n'):
        fields, key = {}, None
        for line in stanza.splitlines():
            if line.startswith('#') or not line.strip():
                continue
            if line[0] in ' \t' and key:
                fields[key] += ' ' + line.strip()
                continue
            name, sep, value = line.partition(':')
            if sep:
                key = name.strip().lower()
                fields[key] = value.strip()
        if fields:
            yield fields.get('types', '').split(), fields.get('uris', '').split(), fields.get('suites', '').split(), \
                fields.get('components', '').split()


def _one_line_entries(text):
    for line in text.splitlines():
        words = line.split('#', 1)[0].split()
        if words and words[0] == 'deb':
            words = words[1:]
            if words and words[0].startswith('['):
                while words and not words[0].endswith(']'):
                    words = words[1:]
                words = words[1:]
            if len(words) >= 2:
                yield ['deb'], [words[0]], [words[1]], words[2:]


def debian_mirror(suite=SUITE, apt_dir='/etc/apt'):
    """The Debian mirror apt already uses for ``suite`` (main), or NSBOX_VM_MIRROR, or deb.debian.org."""
    if os.environ.get('NSBOX_VM_MIRROR'):
        return os.environ['NSBOX_VM_MIRROR']
    paths = [os.path.join(apt_dir, 'sources.list')] + sorted(glob.glob(os.path.join(apt_dir, 'sources.list.d', '*')))
    for path in paths:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        entries = _deb822_entries(text) if path.endswith('.sources') else _one_line_entries(text)
        for types, uris, suites, components in entries:
            if 'deb' in types and suite in suites and 'main' in components:
                for uri in uris:
                    if uri.startswith(('http://', 'https://', 'file:')):
                        return uri.rstrip('/')
    return DEFAULT_MIRROR


@contextlib.contextmanager
def _flock(path, mode=fcntl.LOCK_EX):
    with open(path, 'a+') as f:  # pylint: disable=unspecified-encoding
        fcntl.flock(f, mode)
        yield f


class ImageBuilder:
    """Builds the VM's disk, kernel and initrd from Debian packages into a cache entry."""

    def __init__(self, cache_root=CACHE_ROOT, mirror=None):
        self.cache_root = cache_root
        self.mirror = mirror or debian_mirror()

    @staticmethod
    def recipe():
        """Everything that decides the image: its hash names the cache entry."""
        return {'suite': SUITE, 'variant': 'minbase', 'packages': PACKAGES, 'files': FILES,
                'chroot': CHROOT_COMMANDS, 'disk_size': DISK_SIZE, 'code': inspect.getsource(ImageBuilder)}

    @classmethod
    def recipe_hash(cls):
        return hashlib.sha256(json.dumps(cls.recipe(), sort_keys=True).encode()).hexdigest()[:16]

    def entry(self):
        return os.path.join(self.cache_root, self.recipe_hash())

    def ensure(self):
        """The cache entry for the current recipe, built first if missing. Returns (path, build timings or None)."""
        entry = self.entry()
        if os.path.isfile(os.path.join(entry, 'build.json')):
            return entry, None
        os.makedirs(self.cache_root, exist_ok=True)
        with _flock(os.path.join(self.cache_root, '.build.lock')):
            if os.path.isfile(os.path.join(entry, 'build.json')):  # another run built it meanwhile
                return entry, None
            for stale in glob.glob(os.path.join(self.cache_root, '.build-*')):  # interrupted builds
                shutil.rmtree(stale, ignore_errors=True)
            timings = self._build(entry)
            self._prune(entry)
        return entry, timings

    def _build(self, entry):
        log('building the VM image %s (Debian %s from %s); once per recipe' % (os.path.basename(entry), SUITE, self.mirror))
        tmp = tempfile.mkdtemp(prefix='.build-%s-' % os.path.basename(entry), dir=self.cache_root)
        root = os.path.join(tmp, 'root')
        debs = os.path.join(self.cache_root, 'debs')
        os.makedirs(debs, exist_ok=True)
        timings, t0 = {}, time.monotonic()
        try:
            t = time.monotonic()
            # A private mount namespace: debootstrap's proc/sys mounts in the tree end with it.
            _run(['unshare', '--mount', '--propagation', 'private', '--', 'debootstrap', '--variant=minbase',
                  '--include=' + ','.join(PACKAGES), '--cache-dir=' + debs, SUITE, root, self.mirror])
            timings['debootstrap_s'] = round(time.monotonic() - t, 1)

            t = time.monotonic()
            for path, mode, content in FILES:
                full = os.path.join(root, path)
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, 'w') as f:
                    f.write(content)
                os.chmod(full, mode)
            key = os.path.join(tmp, 'id_ed25519')
            _run(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'nsbox-realhost', '-f', key])
            ssh_dir = os.path.join(root, 'root', '.ssh')
            os.makedirs(ssh_dir, mode=0o700, exist_ok=True)
            shutil.copy(key + '.pub', os.path.join(ssh_dir, 'authorized_keys'))
            os.chmod(os.path.join(ssh_dir, 'authorized_keys'), 0o600)
            script = 'mount -t proc proc "$1/proc" && mount -t sysfs sysfs "$1/sys" && chroot "$1" /bin/sh -ec "$2"'
            env = {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8', 'DEBIAN_FRONTEND': 'noninteractive'}
            _run(['unshare', '--mount', '--propagation', 'private', '--', 'sh', '-c', script, 'sh', root,
                  '\n'.join(CHROOT_COMMANDS)], env=env)
            for pattern, name in (('vmlinuz-*', 'vmlinuz'), ('initrd.img-*', 'initrd.img')):
                found = sorted(glob.glob(os.path.join(root, 'boot', pattern)))
                if len(found) != 1:
                    raise VMError('expected one %s in the image, found %s' % (pattern, found))
                shutil.copy(found[0], os.path.join(tmp, name))
            timings['configure_s'] = round(time.monotonic() - t, 1)

            t = time.monotonic()
            raw = os.path.join(tmp, 'disk.raw')
            with open(raw, 'wb') as f:
                f.truncate(DISK_SIZE)
            _run(['mkfs.ext4', '-q', '-F', '-L', 'nsbox-root', '-d', root, raw])
            _run(['qemu-img', 'convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, os.path.join(tmp, 'base.qcow2')])
            os.unlink(raw)
            os.chmod(os.path.join(tmp, 'base.qcow2'), 0o444)
            shutil.rmtree(root)
            timings['disk_s'] = round(time.monotonic() - t, 1)
            timings['total_s'] = round(time.monotonic() - t0, 1)

            with open(os.path.join(tmp, 'recipe.json'), 'w') as f:
                json.dump(dict(self.recipe(), mirror=self.mirror), f, indent=1)
            with open(os.path.join(tmp, 'build.json'), 'w') as f:
                json.dump(timings, f)
                f.flush()
                os.fsync(f.fileno())
            os.rename(tmp, entry)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log('VM image built in %.0fs: %s' % (timings['total_s'], timings))
        return timings

    def _prune(self, keep):
        """Remove entries of older recipes that no running VM holds (each VM holds its entry's lock shared)."""
        for entry in glob.glob(os.path.join(self.cache_root, '*', 'build.json')):
            entry = os.path.dirname(entry)
            if entry == keep:
                continue
            with open(os.path.join(entry, 'lock'), 'a+') as f:  # pylint: disable=unspecified-encoding
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue
                shutil.rmtree(entry, ignore_errors=True)


class QMP:
    """A minimal QMP client: one command at a time, events skipped."""

    def __init__(self, path, timeout=300):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.reader = self.sock.makefile('rb')
        self._read()  # greeting
        self.execute('qmp_capabilities')

    def _read(self):
        while True:
            line = self.reader.readline()
            if not line:
                raise VMError('QMP connection closed')
            msg = json.loads(line)
            if 'event' not in msg:
                return msg

    def execute(self, command, **arguments):
        self.sock.sendall(json.dumps({'execute': command, 'arguments': arguments}).encode() + b'\n')
        msg = self._read()
        if 'error' in msg:
            raise VMError('QMP %s: %s' % (command, msg['error']))
        return msg['return']

    def hmp(self, command_line):
        """A monitor command (savevm/loadvm report errors only in their output)."""
        out = self.execute('human-monitor-command', **{'command-line': command_line})
        if 'error' in out.lower():
            raise VMError('%s: %s' % (command_line, out.strip()))
        return out

    def close(self):
        with contextlib.suppress(OSError):
            self.reader.close()
            self.sock.close()


class RealHostVM(SshHost):
    """One booted VM; use as a context manager (stop() always runs)."""

    __test__ = False  # not a pytest class
    SNAPSHOT = 'booted'

    def __init__(self, name=VM_NAME, memory=1024, cpus=2, cache_root=CACHE_ROOT):
        self.name = name
        self.memory = memory
        self.cpus = cpus
        self.cache_root = cache_root
        self.image = None
        self.workdir = None
        self.control_dir = None
        self.client_key = None
        self.port = None
        self.proc = None
        self.qmp = None
        self._entry_lock = None
        self.failed_units = []
        self.groups = 0  # test groups served (the conftest restores before each one after the first)
        self.timings = {'restore_s': [], 'ansible': []}

    # -- lifecycle -------------------------------------------------------------------
    def _start(self):
        if shutil.which(QEMU) is None:
            raise QemuUnavailable('%s is not installed (Debian package qemu-system-x86)' % QEMU)
        self.image, build = ImageBuilder(self.cache_root).ensure()
        self.timings['image'] = os.path.basename(self.image)
        self.timings['build'] = build or 'cached'
        self._entry_lock = open(os.path.join(self.image, 'lock'), 'a+')  # pylint: disable=consider-using-with,unspecified-encoding
        fcntl.flock(self._entry_lock, fcntl.LOCK_SH)
        runs = os.path.join(self.cache_root, 'runs')
        os.makedirs(runs, exist_ok=True)
        _remove_dead_runs(runs)
        self.workdir = tempfile.mkdtemp(prefix='%d-' % os.getpid(), dir=runs)
        self.control_dir = os.path.join(self.workdir, 'cp')
        os.makedirs(self.control_dir)
        self.client_key = os.path.join(self.workdir, 'id_ed25519')
        shutil.copy(os.path.join(self.image, 'id_ed25519'), self.client_key)
        os.chmod(self.client_key, 0o600)
        if self._booted_state_valid():
            try:
                self._warm_start()
                return
            except VMError as exc:
                log('starting from the saved booted state failed, booting instead: %s' % exc)
                self._kill()
                for name in ('booted.json', 'booted.qcow2'):
                    with contextlib.suppress(OSError):
                        os.unlink(os.path.join(self.image, name))
        self._cold_boot()

    def _overlay(self):
        return os.path.join(self.workdir, 'disk.qcow2')

    def _cold_boot(self):
        """Boot the base image, wait for systemd, save the state in the overlay and in the cache entry."""
        with contextlib.suppress(OSError):
            os.unlink(self._overlay())
        _run(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', os.path.join(self.image, 'base.qcow2'),
              self._overlay()])
        t = time.monotonic()
        self._launch()
        self._wait_ssh(BOOT_TIMEOUT)
        self.timings['cold_boot_to_ssh_s'] = round(time.monotonic() - t, 1)
        self._wait_running()
        self.timings['cold_boot_to_running_s'] = round(time.monotonic() - t, 1)
        t = time.monotonic()
        self._close_masters()
        self.qmp.execute('stop')
        self.qmp.hmp('savevm %s' % self.SNAPSHOT)
        self.timings['savevm_s'] = round(time.monotonic() - t, 1)
        # Paused and flushed: the overlay is consistent, and later runs start from a copy of it.
        t = time.monotonic()
        tmp = os.path.join(self.image, '.booted-%d.qcow2' % os.getpid())
        shutil.copyfile(self._overlay(), tmp)
        os.rename(tmp, os.path.join(self.image, 'booted.qcow2'))
        _write_json(os.path.join(self.image, 'booted.json'), {'key': self._booted_key()})
        self.timings['save_booted_state_s'] = round(time.monotonic() - t, 1)
        self.qmp.execute('cont')
        log('VM booted: ssh on 127.0.0.1:%d; %s' % (self.port, self._summary()))

    def _warm_start(self):
        """Start from the booted state a cold boot saved in the cache entry (a copy: the run starts clean)."""
        t = time.monotonic()
        shutil.copyfile(os.path.join(self.image, 'booted.qcow2'), self._overlay())
        self._launch(loadvm=self.SNAPSHOT)
        self._settle()
        self.timings['warm_start_s'] = round(time.monotonic() - t, 1)
        log('VM started from its saved booted state: ssh on 127.0.0.1:%d; %s' % (self.port, self._summary()))

    def _summary(self):
        return ', '.join('%s %s' % (k, v) for k, v in self.timings.items() if k.endswith('_s'))

    def _booted_key(self):
        """What a saved VM state depends on: the emulator and the virtual machine's shape."""
        version = subprocess.run([QEMU, '--version'], capture_output=True, text=True, check=False).stdout.splitlines()[:1]
        return {'qemu': version, 'machine': self._machine_args()}

    def _booted_state_valid(self):
        try:
            with open(os.path.join(self.image, 'booted.json')) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            return False
        return os.path.isfile(os.path.join(self.image, 'booted.qcow2')) and saved.get('key') == self._booted_key()

    def _machine_args(self):
        return ['-machine', 'pc', '-accel', 'tcg,thread=multi,tb-size=256', '-cpu', 'max', '-m', str(self.memory),
                '-smp', str(self.cpus), '-append', KERNEL_CMDLINE,
                '-device', 'virtio-net-pci,netdev=net0,romfile=', '-device', 'virtio-rng-pci', '-rtc', 'base=utc']

    def _launch(self, loadvm=None, attempts=3):
        qmp_path = os.path.join(self.workdir, 'qmp.sock')
        for attempt in range(attempts):
            self.port = free_port()
            cmd = [QEMU, '-name', self.name, '-nodefaults', '-no-user-config'] + self._machine_args() + [
                '-display', 'none', '-vga', 'none', '-serial', 'file:%s' % os.path.join(self.workdir, 'console.log'),
                '-kernel', os.path.join(self.image, 'vmlinuz'), '-initrd', os.path.join(self.image, 'initrd.img'),
                '-drive', 'file=%s,format=qcow2,if=virtio,cache=unsafe' % self._overlay(),
                # restrict=on: the guest reaches nothing; only the forward from the loopback port comes in.
                '-netdev', 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22' % self.port,
                '-qmp', 'unix:%s,server=on,wait=off' % qmp_path]
            if loadvm:
                cmd += ['-loadvm', loadvm]
            with contextlib.suppress(OSError):
                os.unlink(qmp_path)
            err = open(os.path.join(self.workdir, 'qemu.log'), 'wb')  # pylint: disable=consider-using-with
            with err:
                # A session of its own: a Ctrl-C in the terminal reaches the harness, which then kills it by pid.
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,  # pylint: disable=consider-using-with
                                             start_new_session=True, preexec_fn=_die_with_parent)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and self.proc.poll() is None:
                if os.path.exists(qmp_path):
                    with contextlib.suppress(OSError):
                        self.qmp = QMP(qmp_path)
                        return
                time.sleep(0.05)
            self._kill()
            output = _tail(os.path.join(self.workdir, 'qemu.log'))
            if 'hostfwd' in output and attempt + 1 < attempts:  # the free port was taken meanwhile
                continue
            if loadvm:
                raise VMError('QEMU did not start from the saved state:\n%s' % output)
            raise QemuUnavailable('the emulator failed to start (%s):\n%s' % (' '.join(cmd[:12]), output))

    def _wait_ssh(self, timeout, banner=True):
        """Until a command runs over SSH (and the master connection is up). ``banner``: first wait for
        sshd's banner, cheaply, while the guest boots; after a restore sshd is there at once."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if not banner or _ssh_banner(self.port):
                res = self.ssh('true', check=False, timeout=30)
                if res.returncode == 0:
                    return
            time.sleep(0.5)
        raise VMError('no SSH from the VM after %ds; console:\n%s' % (timeout, self.console_tail()))

    def _wait_running(self, before=''):
        """Wait until systemd finished starting up; 'degraded' is accepted and its failed units reported."""
        res = self.ssh(before + 'systemctl is-system-running --wait', check=False, timeout=RUNNING_TIMEOUT)
        state = res.stdout.strip()
        if state == 'degraded':
            failed = self.ssh('systemctl --failed --plain --no-legend', check=False).stdout.strip()
            self.failed_units = [line.split()[0] for line in failed.splitlines() if line.strip()]
            log('the VM is degraded; failed units: %s' % ', '.join(self.failed_units))
        elif state != 'running':
            raise VMError('systemctl is-system-running: %r (rc %d, %s); console:\n%s'
                          % (state, res.returncode, res.stderr.strip(), self.console_tail()))

    def restore(self):
        """Back to the state saved after boot: a clean host for the next test group."""
        t = time.monotonic()
        self._close_masters()
        self.qmp.hmp('loadvm %s' % self.SNAPSHOT)
        loaded = time.monotonic()
        self._settle()
        self.timings['restore_s'].append({'loadvm': round(loaded - t, 1), 'total': round(time.monotonic() - t, 1)})

    def boot_id(self):
        return self.ssh('cat /proc/sys/kernel/random/boot_id').stdout.strip()

    def reboot(self, timeout=BOOT_TIMEOUT):
        """A real reboot of the guest (``systemctl reboot``; QEMU resets and boots the same kernel):
        returns the new boot id once systemd is up again, with the guest clock set to now.

        The SSH master (ours and Ansible's share it) dies with the old boot: it is closed, and until
        the boot id changes the guest is probed without one, so no master to a shutting-down sshd is
        left behind for the next command to hang on."""
        t = time.monotonic()
        old = self.boot_id()
        self.ssh('systemctl --no-block reboot')
        self._close_masters()
        probe = ['ssh', '-o', 'ControlMaster=no', '-o', 'ControlPath=none'] + self.ssh_args()[1:] + [
            '--', 'cat /proc/sys/kernel/random/boot_id']
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if _ssh_banner(self.port):
                with contextlib.suppress(subprocess.TimeoutExpired):
                    res = subprocess.run(probe, capture_output=True, text=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
                    if res.returncode == 0 and res.stdout.strip() not in ('', old):
                        break
            if time.monotonic() >= deadline:
                raise VMError('the VM did not come back from a reboot in %ds; console:\n%s' % (timeout, self.console_tail()))
            time.sleep(1)
        self._settle()  # the RTC may be the saved state's: the clock is set as after a restore
        self.timings.setdefault('reboot_s', []).append(round(time.monotonic() - t, 1))
        return self.boot_id()

    def _settle(self):
        """After a restore: the guest clock stopped at the save, so set it to now; then let systemd settle."""
        self._wait_ssh(60, banner=False)  # opens the SSH master, so the clock below is set with little delay
        self._wait_running(before='date -u -s @%.3f >/dev/null && ' % time.time())

    def _check_alive(self):
        if self.proc is None or self.proc.poll() is not None:
            raise VMError('QEMU exited with %s:\n%s\nconsole:\n%s' % (
                self.proc and self.proc.returncode, _tail(os.path.join(self.workdir, 'qemu.log')), self.console_tail()))

    def console_tail(self, n=40):
        return _tail(os.path.join(self.workdir, 'console.log'), n) if self.workdir else ''

    def _close_masters(self):
        if self.control_dir and os.path.isdir(self.control_dir):
            for sock in os.listdir(self.control_dir):
                subprocess.run(['ssh', '-o', 'ControlPath=%s' % os.path.join(self.control_dir, sock), '-O', 'exit', 'x'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False, timeout=10)

    def _kill(self):
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()  # by its pid: the emulator is our child
            self.proc.wait()
            self.proc = None

    def stop(self):
        """Kill the VM and remove every per-run file; safe to call twice."""
        self._close_masters()
        self._kill()
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None
        if self._entry_lock is not None:
            self._entry_lock.close()
            self._entry_lock = None

    # -- reaching it -----------------------------------------------------------------
    def ssh_args(self):
        return ['ssh', '-p', str(self.port), '-i', self.client_key, '-o', 'IdentitiesOnly=yes',
                '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
                '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=20', '-o', 'ControlMaster=auto',
                # The path Ansible's runner uses too (control_dir/%C): one master for both.
                '-o', 'ControlPath=%s/%%C' % self.control_dir, '-o', 'ControlPersist=120s', 'root@127.0.0.1']

    def inventory_line(self):
        return ('%s ansible_host=127.0.0.1 ansible_port=%d ansible_user=root ansible_ssh_private_key_file=%s '
                'ansible_python_interpreter=/usr/bin/python3' % (self.name, self.port, self.client_key))


class RealhostRunner(AnsibleRunner):
    """Ansible against the VM: its inventory has the group ``realhost``; each playbook run is timed."""

    def __init__(self, vm, **kwargs):
        super().__init__([vm], **kwargs)
        self.vm = vm
        with open(self.inventory, 'w') as f:
            f.write('[%s]\n%s\n\n[testhosts:children]\n%s\n' % (GROUP, vm.inventory_line(), GROUP))

    def playbook(self, playbook, **kwargs):  # pylint: disable=arguments-differ
        t = time.monotonic()
        res = super().playbook(playbook, **kwargs)
        self.vm.timings['ansible'].append({'run': _label(playbook), 'tasks': len(res.records),
                                           'seconds': round(time.monotonic() - t, 1)})
        return res

    def tasks(self, tasks, hosts=GROUP, **kwargs):
        return super().tasks(tasks, hosts=hosts, **kwargs)

    def module(self, name, args=None, hosts=GROUP, **kwargs):
        return super().module(name, args, hosts=hosts, **kwargs)


def _label(playbook):
    """A short name for a playbook run: the file, or the modules of its tasks."""
    if isinstance(playbook, str):
        return os.path.basename(playbook)
    return ' '.join(next((k for k in task if k != 'name'), '?') for play in playbook for task in play.get('tasks', ()))


def _ssh_banner(port):
    """True when the guest's sshd answers (the host side of the forward accepts before the guest is up)."""
    with contextlib.suppress(OSError), socket.create_connection(('127.0.0.1', port), timeout=2) as s:
        s.settimeout(3)
        return s.recv(8).startswith(b'SSH-')
    return False


def _tail(path, n=40):
    with contextlib.suppress(OSError), open(path, errors='replace') as f:
        return ''.join(f.readlines()[-n:])
    return ''


def _write_json(path, data):
    tmp = '%s.%d.tmp' % (path, os.getpid())
    with open(tmp, 'w') as f:
        json.dump(data, f)
    os.rename(tmp, path)


def _remove_dead_runs(runs):
    """Per-run dirs of runs that died without cleaning up (named <pid>-...)."""
    for entry in os.listdir(runs):
        pid = entry.split('-', 1)[0]
        if pid.isdigit() and not os.path.exists('/proc/%s' % pid):
            shutil.rmtree(os.path.join(runs, entry), ignore_errors=True)
