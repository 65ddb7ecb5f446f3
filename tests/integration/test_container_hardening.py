# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a default container cannot do, seen from inside with the static probe (tests/probe/probe.c):
the system calls Docker's profile refuses fail with its errno, devices are denied by the cgroup,
/proc is masked and read-only; what cap_add + seccomp=unconfined and privileged lift; malicious
images whose symlinks point mounts at the host (CVE-2024-21626 class); the init holding no host fd;
and a host helper of an exec never writable or attachable from inside (CVE-2019-5736 class)."""
from __future__ import annotations

import io
import os
import secrets
import shutil
import tarfile

import pytest

from harness import images, probe as probe_mod
from harness.containers import LAYOUT, NOTHING, V1_ONLY, setup, teardown

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

BASE = {'image': 'busybox', 'command': 'sleep 3600', 'stop_timeout': 0}
DEFAULT_CAPS = '00000000a80425fb'
STATUS = "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/1/status | tr -s '\\t ' ' '"
# Each probe and the errno Docker's default profile gives it (clone3: ENOSYS, so that libc falls back to clone,
# whose namespace flags the profile refuses).
REFUSED = {'keyctl': 'EPERM', 'io_uring_setup': 'EPERM', 'userfaultfd': 'EPERM', 'clone3_ns': 'ENOSYS', 'unshare_user': 'EPERM',
           'bpf': 'EPERM', 'kexec_load': 'EPERM', 'mount': 'EPERM', 'reboot': 'EPERM', 'init_module': 'EPERM'}


@pytest.fixture(scope='module')
def probe():
    try:
        return probe_mod.build()
    except RuntimeError as exc:
        pytest.skip(str(exc))


def evil_archive(path, links, name):
    """A docker archive of the busybox rootfs with ``links`` ({path: symlink target}) in place of what was there."""
    src = tarfile.open(fileobj=io.BytesIO(images.busybox_rootfs_bytes()))
    out = images.TarWriter()
    for member in src.getmembers():
        name_ = member.name.rstrip('/')
        if any(name_ == p or name_.startswith(p + '/') for p in links):
            continue
        if member.isdir():
            out.dir(name_, member.mode)
        elif member.issym():
            out.symlink(name_, member.linkname)
        else:
            out.file(name_, src.extractfile(member).read(), member.mode)
    for link, target in links.items():
        out.symlink(link, target)
    images.write_docker_archive(path, images.Image([images.Layer(out.getvalue())]), 'nsbox/%s:latest' % name)
    return path


# Symlinks that would redirect the container's mounts onto the host, were targets resolved naively.
EVIL_TARGET = '/tmp/nsbox-evil-target'  # a host directory the symlinks point at (the test host's /tmp is this machine's)
EVIL = {'evil-proc': {'proc': '/'}, 'evil-dev': {'dev': EVIL_TARGET}, 'evil-sys': {'sys': '../../../../../..' + EVIL_TARGET},
        'evil-etc': {'etc/hosts': EVIL_TARGET + '/hosts', 'etc/resolv.conf': '../../../../..' + EVIL_TARGET + '/resolv.conf',
                     'data': EVIL_TARGET}}


@pytest.fixture(scope='module')
def hard_host(testhost, ansible, fixtures):
    work = '/tmp/nsbox-evil-images-%s' % secrets.token_hex(4)
    os.mkdir(work)
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    try:
        archives = {name: evil_archive(os.path.join(work, name + '.tar'), links, name) for name, links in EVIL.items()}
        yield setup(testhost, ansible, parent, dict(busybox=fixtures.docker_archive, **archives))
    finally:
        teardown(testhost, parent)
        shutil.rmtree(work, ignore_errors=True)


@pytest.fixture
def box(hard_host, reaper):
    yield hard_host
    left = teardown(hard_host.host, hard_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


def _out(result):
    assert not result.get('failed'), result
    return result['stdout'].strip()


def _probes(name):
    return {'%s %s' % (name, p): (name, ['/probe', p], {}) for p in REFUSED}


def test_a_default_container_refuses_and_privileged_lifts(box, probe):
    host_bounding = box.sh("awk '/^CapBnd/{print $2}' /proc/self/status")
    # the host's disk: a node of it made inside must not open
    disk = next((os.stat(p).st_rdev for p in ('/dev/vda', '/dev/sda', '/dev/nvme0n1', '/dev/xvda') if os.path.exists(p)), os.makedev(8, 0))
    containers = {
        'hard-default': {'volumes': [probe_mod.volume(probe)]},
        'hard-ptrace': {'volumes': [probe_mod.volume(probe)], 'cap_add': ['SYS_PTRACE'], 'security_opt': ['seccomp=unconfined']},
        'hard-priv': {'volumes': [probe_mod.volume(probe)], 'privileged': True},
    }
    mknod_open = 'mknod /tmp/disk b %d %d && /probe open /tmp/disk' % (os.major(disk), os.minor(disk))
    try:
        box.create_many(containers, BASE)
        seen = box.exec_many(dict(
            _probes('hard-default'), **_probes('hard-priv'),
            **{'default status': ('hard-default', ['sh', '-c', STATUS], {}),
               'default ptrace': ('hard-default', ['/probe', 'ptrace'], {}),
               'default unshare -n': ('hard-default', ['unshare', '-n', 'true'], {}),
               'default mount': ('hard-default', ['mount', '-t', 'tmpfs', 'x', '/mnt'], {}),
               'default keyctl': ('hard-default', ['/probe', 'keyctl'], {}),
               'default sysctl': ('hard-default', ['sh', '-c', 'echo 1 > /proc/sys/kernel/sysrq'], {}),
               'default sysrq': ('hard-default', ['sh', '-c', 'echo h > /proc/sysrq-trigger'], {}),
               'default kcore': ('hard-default', ['sh', '-c', 'cat /proc/kcore 2>/dev/null | wc -c'], {}),
               'default interrupts': ('hard-default', ['sh', '-c', 'cat /proc/interrupts | wc -c'], {}),
               'default disk': ('hard-default', ['sh', '-c', mknod_open], {}),
               'default loop': ('hard-default', ['sh', '-c', 'mknod /tmp/loop b 7 0 && /probe open /tmp/loop'], {}),
               'default kmsg': ('hard-default', ['sh', '-c', 'mknod /tmp/kmsg c 1 11 && /probe open /tmp/kmsg'], {}),
               'default null': ('hard-default', ['/probe', 'open', '/dev/null'], {}),
               'default devs': ('hard-default', ['ls', '/dev'], {}),
               'ptrace status': ('hard-ptrace', ['sh', '-c', STATUS], {}),
               'ptrace ptrace': ('hard-ptrace', ['/probe', 'ptrace'], {}),
               'priv status': ('hard-priv', ['sh', '-c', STATUS], {}),
               'priv loop': ('hard-priv', ['sh', '-c', 'mknod /tmp/loop b 7 0 && /probe open /tmp/loop'], {}),
               'priv devs': ('hard-priv', ['ls', '/dev'], {})}))
    finally:
        box.remove_many(containers)
    status = dict(line.split(' ', 1) for line in _out(seen['default status']).splitlines())
    assert status == {'CapInh:': '0' * 16, 'CapPrm:': DEFAULT_CAPS, 'CapEff:': DEFAULT_CAPS, 'CapBnd:': DEFAULT_CAPS,
                      'CapAmb:': '0' * 16, 'NoNewPrivs:': '1', 'Seccomp:': '2'}, status
    for call, errno_name in REFUSED.items():
        assert _out(seen['hard-default %s' % call]) == '%s %s' % (call, errno_name), seen['hard-default %s' % call]
    # Docker's profile allows ptrace on kernels >= 4.8: a process may trace its own child (strace, gdb)
    assert _out(seen['default ptrace']) == 'ptrace ok'
    for label in ('default unshare -n', 'default mount', 'default sysctl', 'default sysrq'):
        assert seen[label].get('rc') not in (0, None), seen[label]
    assert _out(seen['default keyctl']) == 'keyctl EPERM'
    assert _out(seen['default kcore']) == '0'  # masked: /dev/null over it (where the kernel has one)
    assert _out(seen['default interrupts']) == '0'
    # A disk node can be made (c/b *:* m, as Docker) but the cgroup refuses opening it; the host's nodes are not there.
    for label in ('default disk', 'default loop', 'default kmsg'):
        assert _out(seen[label]) == 'open EPERM', seen[label]
    assert _out(seen['default null']) == 'open ok'
    standard = {'fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero'}
    assert set(_out(seen['default devs']).split()) - {'core'} == standard
    ptrace = dict(line.split(' ', 1) for line in _out(seen['ptrace status']).splitlines())
    assert (int(ptrace['CapEff:'], 16), ptrace['Seccomp:']) == (int(DEFAULT_CAPS, 16) | 1 << 19, '0'), ptrace
    assert _out(seen['ptrace ptrace']) == 'ptrace ok'
    priv = dict(line.split(' ', 1) for line in _out(seen['priv status']).splitlines())
    assert (priv['CapEff:'], priv['CapBnd:'], priv['Seccomp:']) == (host_bounding, host_bounding, '0'), priv
    for call in REFUSED:
        got = _out(seen['hard-priv %s' % call])
        assert got.split()[1] != 'EPERM', got  # allowed: ok, or what the kernel says of the bad arguments (ENOSYS: not built in)
    assert _out(seen['priv loop']) == 'open ok'  # (this machine refuses even its root an open of its own disk: a loop device here)
    assert {'fuse', 'loop0', 'kmsg'} <= set(_out(seen['priv devs']).split()) or not os.path.exists('/dev/loop0')


def test_a_passed_device(box, probe):
    """devices: the host node in the container's /dev with its numbers and mode, and only it allowed besides the standard ones."""
    if not os.path.exists('/dev/fuse'):
        pytest.skip('no /dev/fuse on this host')
    try:
        box.create_many({'hard-fuse': {'volumes': [probe_mod.volume(probe)], 'devices': ['/dev/fuse:/dev/sub/fuse:rw']}}, BASE)
        seen = box.execs('hard-fuse', {'ls': (['ls', '-ln', '/dev/sub/fuse'], {}), 'open': (['/probe', 'open', '/dev/sub/fuse'], {}),
                                       'other': (['sh', '-c', 'mknod /tmp/tun c 10 229 && mknod /tmp/l c 7 0 && /probe open /tmp/l'], {})})
    finally:
        box.remove_many(['hard-fuse'])
    fields = _out(seen['ls']).split()
    st = os.stat('/dev/fuse')
    assert fields[0][0] == 'c' and (fields[4], fields[5]) == ('10,', '229'), fields
    assert int(fields[0][1:].replace('-', '0').replace('r', '1').replace('w', '1').replace('x', '1'), 2) == st.st_mode & 0o777
    assert _out(seen['open']) == 'open ok'
    assert _out(seen['other']) == 'open EPERM'


def _host_view(box):
    """What the host has at EVIL_TARGET: its files and contents, and any mount there (the test host's and this machine's)."""
    files = {}
    for dirpath, _dirs, names in os.walk(EVIL_TARGET):
        for name in names:
            with open(os.path.join(dirpath, name)) as f:
                files[os.path.relpath(os.path.join(dirpath, name), EVIL_TARGET)] = f.read()
        files.update({os.path.relpath(os.path.join(dirpath, d), EVIL_TARGET) + '/': '' for d in _dirs})
    with open('/proc/self/mountinfo') as f:
        here = [line for line in f if EVIL_TARGET in line]
    there = box.sh('grep -F %s /proc/self/mountinfo || true' % EVIL_TARGET)
    return files, here, there


def test_malicious_images_cannot_mount_onto_the_host(box):
    """CVE-2024-21626 class: an image whose /proc, /dev or /sys is a symlink is refused (as runc refuses them);
    one whose /etc/hosts, /etc/resolv.conf and a mount's parent point at a host directory runs with those mounts
    confined to its rootfs. Either way the host directory is untouched and nothing stays mounted."""
    os.mkdir(EVIL_TARGET)
    try:
        for name in ('hosts', 'resolv.conf'):
            with open(os.path.join(EVIL_TARGET, name), 'w') as f:
                f.write('the host file %s\n' % name)
        before = _host_view(box)
        assert before[1:] == ([], ''), before
        res = box.ansible.tasks([{'name': n, 'nsbox.runtime.container': dict(BASE, name=n, image=n), 'ignore_errors': True}
                                 for n in ('evil-proc', 'evil-dev', 'evil-sys')])
        for name, link in (('evil-proc', 'proc'), ('evil-dev', 'dev'), ('evil-sys', 'sys')):
            failed = res.task(name)
            assert failed['_status'] in ('failed', 'ignored') and 'the image makes /%s a symlink' % link in failed['msg'], failed
            assert _host_view(box) == before
        args = dict(BASE, name='evil-etc', image='evil-etc', hostname='confined', mounts=[{'type': 'tmpfs', 'target': '/data/x'}],
                    volumes=['/etc:/data/y:ro'])
        assert box.run(**args)['_status'] == 'changed'
        seen = box.execs('evil-etc', {'hosts': (['cat', '/etc/hosts'], {}), 'resolv': (['cat', '/etc/resolv.conf'], {}),
                                      'mounts': (['cat', '/proc/self/mountinfo'], {}), 'fds': (['ls', '/proc/1/fd'], {}),
                                      'write': (['sh', '-c', 'echo changed > /etc/hosts; echo x > /data/x/f'], {})})
        assert 'confined' in _out(seen['hosts']) and 'the host file' not in _out(seen['hosts'])
        assert 'the host file' not in _out(seen['resolv'])
        points = [line.split()[4] for line in _out(seen['mounts']).splitlines()]
        assert {EVIL_TARGET + '/x', EVIL_TARGET + '/y', EVIL_TARGET + '/hosts'} <= set(points), points  # in the container's own tree
        assert _out(seen['fds']).split() == ['0', '1', '2']  # the init holds no host fd (CVE-2024-21626's leaked fd)
        assert _host_view(box) == before
    finally:
        box.remove_many(list(EVIL))
        after = _host_view(box)
        shutil.rmtree(EVIL_TARGET, ignore_errors=True)
    assert after == before


def test_the_init_holds_no_host_fd(box):
    """0, 1 and 2 only, with and without a terminal; and an exec's process the same (CVE-2024-21626: a leaked
    host fd, /proc/self/fd/N as cwd, would reach the host's tree)."""
    try:
        box.create_many({'fd-plain': {}, 'fd-tty': {'tty': True, 'interactive': True}}, BASE)
        seen = box.exec_many({'plain': ('fd-plain', ['ls', '/proc/1/fd'], {}), 'tty': ('fd-tty', ['ls', '/proc/1/fd'], {}),
                              'exec': ('fd-plain', ['ls', '/proc/self/fd'], {}),
                              'cwd': ('fd-plain', ['readlink', '/proc/1/cwd'], {})})
    finally:
        box.remove_many(['fd-plain', 'fd-tty'])
    assert _out(seen['plain']).split() == ['0', '1', '2']
    assert _out(seen['tty']).split() == ['0', '1', '2']
    assert set(_out(seen['exec']).split()) <= {'0', '1', '2', '3'}  # 3: ls's own directory fd
    assert _out(seen['cwd']) == '/'


def _helpers(watch_output):
    """The watcher's lines about host helpers (exe outside the container: the host's python3; or unreadable, not
    dumpable), as dicts."""
    out = []
    for line in watch_output.splitlines():
        parts = line.split()
        if len(parts) == 8 and (parts[1].startswith('/usr/bin/python') or parts[1] == '?'):  # ?: its exe not even readable
            out.append(dict([('pid', parts[0]), ('exe', parts[1])] + [p.split('=', 1) for p in parts[2:]]))
    return out


def test_an_execs_host_helper_from_inside(box, probe):
    """CVE-2019-5736 class. While execs run in a container, a watcher inside (its init) opens the exe of every
    new process for writing, O_PATH (and reopens that for writing, the exploit's way), ptrace-attaches it and
    reads its capabilities. The host's python3 that enters the container for an exec does its work outside
    the container's pid namespace; only its last fork, already the command's user with the command's
    capabilities and seccomp filter, is there for the moment before its exec. So even with CAP_SYS_PTRACE
    the container never reaches a process with more than it has, and never writes the host's binary."""
    ptrace_caps = '%016x' % (int(DEFAULT_CAPS, 16) | 1 << 19)
    containers = {'cve-default': {'volumes': [probe_mod.volume(probe)], 'command': ['/probe', 'watch', '120']},
                  'cve-ptrace': {'volumes': [probe_mod.volume(probe)], 'command': ['/probe', 'watch', '120'], 'cap_add': ['SYS_PTRACE']}}
    try:
        box.create_many(containers, BASE)
        tasks = [{'name': '%s %d' % (name, i), 'nsbox.runtime.container_exec': {'container': name, 'command': ['true']}, 'ignore_errors': True}
                 for i in range(6) for name in containers]
        tasks += [{'name': '%s sleep' % name, 'nsbox.runtime.container_exec': {'container': name, 'command': ['sleep', '1']}, 'ignore_errors': True}
                  for name in containers]
        tasks += [{'name': '%s stop' % name, 'nsbox.runtime.container_exec': {'container': name, 'command': ['touch', '/tmp/watch-stop']},
                   'ignore_errors': True} for name in containers]  # the watcher's end
        res = box.ansible.tasks(tasks)
        ran = {t['name']: res.task(t['name']) for t in tasks}
        seen = {name: box.wait_exited(name, timeout=60) for name in containers}
        logs = {name: _log_text(box, name) for name in containers}
    finally:
        box.remove_many(containers)
    default, ptrace = _helpers(logs['cve-default']), _helpers(logs['cve-ptrace'])
    print('helpers seen without CAP_SYS_PTRACE: %r\nwith it: %r' % (default, ptrace))
    assert all(s['state']['status'] == 'exited' for s in seen.values()), seen
    # every exec ran, in both containers: the watcher's attaches stop each process for a moment and let it go on
    failed = {label: (r.get('msg'), r.get('rc')) for label, r in ran.items() if r['_status'] != 'changed'}
    assert not failed, failed
    for name in containers:  # the watcher saw the commands run (it was watching)
        watched = [int(line.split()[1]) for line in logs[name].splitlines() if line.startswith('watched ')]
        assert watched and watched[0] >= 5, logs[name]
    gone = ('ENOENT', 'ESRCH', 'own')  # ended before the watcher looked, or had exec'd the container's own binary
    default = [h for h in default if h['write'] not in gone]
    ptrace = [h for h in ptrace if h['write'] not in gone]
    for helper in default:  # not dumpable: its exe cannot be opened (an attach that worked came after its exec)
        assert helper['write'] in ('EACCES', 'EPERM') and helper['path'] in ('EACCES', 'EPERM'), helper
        assert helper['capeff'] in ('?', DEFAULT_CAPS) and helper['seccomp'] in ('?', '2'), helper
    for helper in ptrace:
        # the host binary is never written from inside (it is busy: the container's monitor runs it), and what
        # can be attached has the container's own capabilities and filter, nothing more
        assert helper['write'] != 'ok' and helper['reopen'] != 'ok', helper
        assert helper['capeff'] in ('?', ptrace_caps) and helper['seccomp'] in ('?', '2'), helper


def _log_text(box, name):
    info = box.info(name, log_lines=500)
    lines = info.get('logs') or info.get('log') or []
    return '\n'.join(entry.get('log', '').rstrip('\n') if isinstance(entry, dict) else str(entry).rstrip('\n') for entry in lines)
