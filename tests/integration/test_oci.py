# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OCI runtime command line (nsbox-oci) driven as podman and containerd drive runc: hand-made bundles
on the busybox test rootfs, real namespaces, cgroups and processes; podman end to end with nsbox-oci as
its runtime. The CLI is the installed wrapper (a private install in the test's own directory)."""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from harness import oci as ocih
from harness.images import FixtureImages
from harness.podman import PrivatePodman

CGROUP_PARENT = '/nsbox-test-oci-%d' % os.getpid()


@pytest.fixture(scope='module')
def installed():
    """nsbox-oci installed into a private directory, and the busybox rootfs every bundle uses (read-only)."""
    if os.geteuid() != 0:
        pytest.skip('the OCI runtime runs as root')
    work = tempfile.mkdtemp(prefix='nsbox-oci-test-')
    try:
        yield {'work': work, 'oci': ocih.install_private(work), 'rootfs': ocih.busybox_rootfs(os.path.join(work, 'rootfs'))}
    finally:
        ocih.remove_cgroups(CGROUP_PARENT)
        shutil.rmtree(work, ignore_errors=True)


class Oci:
    """One test's runtime root and bundles."""

    def __init__(self, installed, tmp_path):
        self.bin, self.rootfs = installed['oci'], installed['rootfs']
        self.dir = str(tmp_path)
        self.root = os.path.join(self.dir, 'state')

    def __call__(self, *args, check=True, **kwargs):
        """Run nsbox-oci; stdout and stderr through files unless given: create passes its stdio to the
        container's init, so a pipe would stay open (and communicate() wait) as long as the container runs."""
        files = {}
        for name in ('stdout', 'stderr'):
            if name not in kwargs:
                files[name] = kwargs[name] = tempfile.TemporaryFile(dir=self.dir)  # pylint: disable=consider-using-with
        kwargs.setdefault('stdin', subprocess.DEVNULL)
        try:
            res = subprocess.run([self.bin, '--root', self.root] + list(args), timeout=60, check=False, **kwargs)
            for name, f in files.items():
                f.seek(0)
                setattr(res, name, f.read().decode('utf-8', 'replace'))
        finally:
            for f in files.values():
                f.close()
        if check and res.returncode != 0:
            raise AssertionError('nsbox-oci %s exited %d: %s' % (' '.join(args), res.returncode, res.stderr))
        return res

    def state(self, cid):
        return json.loads(self('state', cid).stdout)

    def wait_status(self, cid, status, timeout=10):
        deadline = time.monotonic() + timeout
        while self.state(cid)['status'] != status:
            assert time.monotonic() < deadline, 'container %s never became %s: %r' % (cid, status, self.state(cid))
            time.sleep(0.02)

    def bundle(self, name, args, **edit):
        """A bundle as `runc spec` writes it (minus the terminal), args and edits (a__b: config[a][b]) applied."""
        path = os.path.join(self.dir, name)
        config = ocih.config(self.rootfs, args, '%s/%s' % (CGROUP_PARENT, name), 'box-' + name)
        for key, value in edit.items():
            node = config
            *parents, last = key.split('__')
            for part in parents:
                node = node.setdefault(part, {})
            node[last] = value
        return ocih.write_bundle(path, config)

    def cleanup(self):
        if os.path.isdir(self.root):
            for cid in os.listdir(self.root):
                self('delete', '--force', cid, check=False)
            assert os.listdir(self.root) == [], 'state left under the runtime root'


@pytest.fixture
def oci(installed, tmp_path, reaper):
    box = Oci(installed, tmp_path)
    yield box
    box.cleanup()
    reaper.check()


def _cmdline(pid):
    with open('/proc/%d/cmdline' % pid, 'rb') as f:
        return f.read().split(b'\0')


def _wait_for(pred, timeout=10, what='condition'):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, 'timed out waiting for %s' % what
        time.sleep(0.02)


def _cgroup_dir(controller, name):
    return os.path.join('/sys/fs/cgroup', controller, CGROUP_PARENT.lstrip('/'), name)


def test_lifecycle_created_running_stopped_deleted(oci):
    bundle = oci.bundle('life', ['sh', '-c', 'echo hello from $(hostname); exec sleep 100'])
    out_path = os.path.join(oci.dir, 'out')
    pid_file = os.path.join(oci.dir, 'pid')
    with open(out_path, 'w') as out:
        oci('create', '--bundle', bundle, '--pid-file', pid_file, 'life', stdout=out)  # its stdout becomes the init's
    state = oci.state('life')
    with open(pid_file) as f:
        pid = int(f.read())
    assert state['status'] == 'created' and state['pid'] == pid and state['id'] == 'life' and state['bundle'] == bundle
    assert state['ociVersion'].startswith('1.')
    # Created: the init waits at its barrier, in its namespaces and cgroup, but has not exec'd the command.
    assert b'sleep' not in _cmdline(pid) and b'sh' not in _cmdline(pid)[0]
    assert os.readlink('/proc/%d/ns/pid' % pid) != os.readlink('/proc/self/ns/pid')
    with open('/proc/%d/cgroup' % pid) as f:
        assert '%s/life' % CGROUP_PARENT in f.read()
    with open(os.path.join(_cgroup_dir('memory', 'life'), 'memory.limit_in_bytes')) as f:
        assert int(f.read()) == 64 << 20
    with open(os.path.join(_cgroup_dir('pids', 'life'), 'pids.max')) as f:
        assert f.read().strip() == '100'
    assert open(out_path).read() == ''
    assert oci('start', 'life', check=False).returncode == 0
    assert oci.state('life')['status'] == 'running'
    _wait_for(lambda: _cmdline(pid)[0] == b'sleep', what='the exec of the command')
    _wait_for(lambda: open(out_path).read() == 'hello from box-life\n', what='the output')
    assert 'running' in oci('start', 'life', check=False).stderr  # a second start is refused
    oci('kill', 'life', 'KILL')
    oci.wait_status('life', 'stopped')
    assert oci.state('life')['pid'] == 0
    oci('delete', 'life')
    res = oci('state', 'life', check=False)
    assert res.returncode == 1 and 'does not exist' in res.stderr
    assert not os.path.exists(_cgroup_dir('memory', 'life'))
    assert not os.path.exists(_cgroup_dir('unified', 'life'))


def test_kill_signals_delete_rules_and_kill_all(oci):
    bundle = oci.bundle('sig', ['sh', '-c', 'trap "echo got-usr1" USR1; sleep 100 & while true; do wait; done'])
    out_path = os.path.join(oci.dir, 'out')
    with open(out_path, 'w') as out:
        oci('create', '--bundle', bundle, 'sig', stdout=out)
    oci('start', 'sig')
    time.sleep(0.3)
    oci('kill', 'sig', '10')  # by number: SIGUSR1
    _wait_for(lambda: 'got-usr1' in open(out_path).read(), what='the trap')
    res = oci('delete', 'sig', check=False)
    assert res.returncode == 1 and 'running' in res.stderr  # running: --force needed
    assert oci('kill', 'sig', 'NOSUCH', check=False).returncode == 1
    procs = os.path.join(_cgroup_dir('pids', 'sig'), 'cgroup.procs')
    assert len(open(procs).read().split()) == 2
    oci('kill', '--all', 'sig', 'SIGKILL')
    oci.wait_status('sig', 'stopped')
    _wait_for(lambda: open(procs).read().split() == [], what='every process of the container to end')
    oci('delete', 'sig')
    # A created container is deleted without --force (its init is killed at the barrier).
    oci('create', '--bundle', bundle, 'sig2')
    pid = oci.state('sig2')['pid']
    oci('delete', 'sig2')
    _wait_for(lambda: not os.path.exists('/proc/%d' % pid) or open('/proc/%d/stat' % pid).read().split(') ')[1][0] == 'Z', what='the init to die')
    assert oci('delete', '--force', 'never-made').returncode == 0


def test_hooks_run_in_order_with_the_state_on_stdin(oci):
    logs = os.path.join(oci.dir, 'hooklog')
    os.mkdir(logs)

    def hook(kind, where):
        return {'path': '/bin/sh', 'args': ['sh', '-c', 'cat > %s/%s.json; echo %s >> %s/order' % (where, kind, kind, where)]}
    hooks = {kind: [hook(kind, logs)] for kind in ('createRuntime', 'createContainer', 'poststart', 'poststop')}
    hooks['startContainer'] = [hook('startContainer', '/hooks')]  # in the container: its own sh, the bind below
    bundle = oci.bundle('hooks', ['sleep', '100'], hooks=hooks)
    with open(os.path.join(bundle, 'config.json')) as f:
        config = json.load(f)
    config['mounts'].append({'destination': '/hooks', 'type': 'bind', 'source': logs, 'options': ['rbind', 'rw']})
    with open(os.path.join(bundle, 'config.json'), 'w') as f:
        json.dump(config, f)
    oci('create', '--bundle', bundle, 'hooks')
    with open(os.path.join(logs, 'order')) as f:
        assert f.read().split() == ['createRuntime', 'createContainer']
    oci('start', 'hooks')
    oci('kill', 'hooks', 'KILL')
    oci.wait_status('hooks', 'stopped')
    oci('delete', 'hooks')
    with open(os.path.join(logs, 'order')) as f:
        assert f.read().split() == ['createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop']
    seen = {}
    for kind in ('createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'):
        with open(os.path.join(logs, kind + '.json')) as f:
            seen[kind] = json.load(f)
        assert seen[kind]['id'] == 'hooks' and seen[kind]['bundle'] == bundle
    assert [seen[k]['status'] for k in ('createRuntime', 'startContainer', 'poststart', 'poststop')] == ['created', 'created', 'running', 'stopped']
    assert seen['createRuntime']['pid'] > 0


def test_failing_hook_fails_create_and_leaves_nothing(oci):
    bundle = oci.bundle('badhook', ['sleep', '100'], hooks={'createRuntime': [{'path': '/bin/sh', 'args': ['sh', '-c', 'echo no >&2; exit 3']}]})
    res = oci('create', '--bundle', bundle, 'badhook', check=False)
    assert res.returncode == 1 and 'createRuntime hook /bin/sh' in res.stderr and 'exit code 3' in res.stderr
    assert os.listdir(oci.root) == []
    assert not os.path.exists(_cgroup_dir('memory', 'badhook'))


def test_exec_into_a_running_container(oci):
    bundle = oci.bundle('ex', ['sleep', '100'])
    oci('create', '--bundle', bundle, 'ex')
    assert 'running' in oci('exec', 'ex', 'true', check=False).stderr  # created, not running yet
    oci('start', 'ex')
    proc_file = os.path.join(oci.dir, 'process.json')
    with open(proc_file, 'w') as f:
        json.dump({'args': ['sh', '-c', 'echo $FOO $(hostname) $$; exit 7'], 'env': ['FOO=bar', 'PATH=/bin'], 'cwd': '/tmp',
                   'user': {'uid': 0, 'gid': 0}, 'terminal': False}, f)
    res = oci('exec', '--process', proc_file, 'ex', check=False)
    assert res.returncode == 7
    env_value, host, pid = res.stdout.split()
    assert (env_value, host) == ('bar', 'box-ex') and int(pid) > 1  # in the container's pid namespace
    assert oci('exec', 'ex', 'cat', '/proc/1/cmdline').stdout.startswith('sleep')
    pid_file = os.path.join(oci.dir, 'exec.pid')
    oci('exec', '--detach', '--pid-file', pid_file, '--process', proc_file, 'ex')
    with open(pid_file) as f:
        assert int(f.read()) > 0
    oci('delete', '--force', 'ex')


def test_pause_and_resume(oci):
    bundle = oci.bundle('frz', ['sleep', '100'])
    oci('create', '--bundle', bundle, 'frz')
    oci('start', 'frz')
    assert oci('resume', 'frz', check=False).returncode == 1  # not paused
    oci('pause', 'frz')
    assert oci.state('frz')['status'] == 'paused'
    with open(os.path.join(_cgroup_dir('freezer', 'frz'), 'freezer.state')) as f:
        assert f.read().strip() == 'FROZEN'
    assert oci('delete', 'frz', check=False).returncode == 1
    oci('resume', 'frz')
    assert oci.state('frz')['status'] == 'running'
    oci('delete', '--force', 'frz')


def _with_console(oci, args):
    """Run nsbox-oci ``args`` + ``--console-socket S`` with S a real unix socket; returns (exit code, the pty master received)."""
    sock_path = os.path.join(oci.dir, 'console.sock')
    if os.path.exists(sock_path):
        os.unlink(sock_path)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    try:
        with tempfile.TemporaryFile(dir=oci.dir) as err:
            argv = [oci.bin, '--root', oci.root] + args[:1] + ['--console-socket', sock_path] + args[1:]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)  # pylint: disable=consider-using-with
            server.settimeout(30)
            conn, _addr = server.accept()
            _msg, fds, _flags, _addr = socket.recv_fds(conn, 1024, 1)
            conn.close()
            code = proc.wait(30)
            err.seek(0)
            assert len(fds) == 1, err.read()
    finally:
        server.close()
    return code, fds[0]


def _read_until(fd, want, timeout=10):
    seen = b''
    deadline = time.monotonic() + timeout
    while want not in seen and time.monotonic() < deadline:
        try:
            seen += os.read(fd, 1024)
        except OSError:  # EIO: the last slave closed
            break
    return seen


def test_console_socket_receives_the_pty_master(oci):
    bundle = oci.bundle('tty', ['sh', '-c', 'tty; [ -t 1 ] && echo x > /dev/tty && echo on-a-tty; read line; echo got:$line'],
                        process__terminal=True)
    code, master = _with_console(oci, ['create', '--bundle', bundle, 'tty'])
    assert code == 0
    try:
        oci('start', 'tty')
        os.write(master, b'typed\n')
        seen = _read_until(master, b'got:typed')
        assert b'on-a-tty' in seen and b'got:typed' in seen, seen  # /dev/tty: the pty is its controlling terminal
        assert b'/dev/pts/0' in seen  # from the container's own devpts, as runc makes it
    finally:
        os.close(master)
    oci.wait_status('tty', 'stopped')
    oci('delete', 'tty')
    # exec with a terminal: the same, for a process run in a running container.
    oci('create', '--bundle', oci.bundle('ttyexec', ['sleep', '100']), 'ttyexec')
    oci('start', 'ttyexec')
    proc_file = os.path.join(oci.dir, 'tty-process.json')
    with open(proc_file, 'w') as f:
        json.dump({'args': ['sh', '-c', 'echo x > /dev/tty && echo exec-on-a-$(tty)'], 'env': ['PATH=/bin'], 'cwd': '/', 'terminal': True,
                   'user': {'uid': 0, 'gid': 0}}, f)
    code, master = _with_console(oci, ['exec', '--process', proc_file, 'ttyexec'])
    try:
        assert code == 0 and b'exec-on-a-/dev/pts/0' in _read_until(master, b'exec-on-a-/dev/pts/0')  # the container's first pty
    finally:
        os.close(master)
    oci('delete', '--force', 'ttyexec')


def test_bad_bundles_fail_clearly_and_leave_nothing(oci):
    empty = os.path.join(oci.dir, 'empty')
    os.mkdir(empty)
    log = os.path.join(oci.dir, 'log.json')
    res = oci('--log', log, '--log-format', 'json', 'create', '--bundle', empty, 'b1', check=False)
    assert res.returncode == 1 and 'failed to read the bundle config %s/config.json' % empty in res.stderr
    with open(log) as f:
        entry = json.loads(f.readline())
    assert entry['level'] == 'error' and 'config.json' in entry['msg']
    bundle = oci.bundle('userns', ['true'], linux__uidMappings=[{'containerID': 0, 'hostID': 100000, 'size': 65536}])
    res = oci('create', '--bundle', bundle, 'b2', check=False)
    assert res.returncode == 1 and 'user namespaces are not supported' in res.stderr
    bundle = oci.bundle('nocmd', ['/no/such/command'])
    res = oci('create', '--bundle', bundle, 'b3', check=False)
    assert res.returncode == 1 and '/no/such/command' in res.stderr
    assert not os.path.exists(_cgroup_dir('memory', 'nocmd'))
    bundle = oci.bundle('badmount', ['true'])
    with open(os.path.join(bundle, 'config.json')) as f:
        config = json.load(f)
    config['mounts'].append({'destination': '/x', 'type': 'nfs', 'source': 'server:/x'})
    with open(os.path.join(bundle, 'config.json'), 'w') as f:
        json.dump(config, f)
    res = oci('create', '--bundle', bundle, 'b4', check=False)
    assert res.returncode == 1 and 'nfs at /x' in res.stderr
    assert oci('create', '--bundle', bundle, 'bad/id', check=False).returncode == 1
    assert os.listdir(oci.root) == [] if os.path.isdir(oci.root) else True


def test_run_features_version(oci):
    bundle = oci.bundle('run', ['sh', '-c', 'exit 5'])
    assert oci('run', '--bundle', bundle, 'run', check=False).returncode == 5
    assert os.listdir(oci.root) == []
    features = json.loads(oci('features').stdout)
    assert features['ociVersionMin'] == '1.0.0' and 'createRuntime' in features['hooks']
    assert 'CAP_SYS_ADMIN' in features['linux']['capabilities'] and features['linux']['seccomp']['enabled']
    assert oci('--version').stdout.startswith('nsbox-oci version ')


@pytest.fixture(scope='module')
def podman(installed):
    if not shutil.which('podman'):
        pytest.skip('podman is not installed')
    images = FixtureImages('/var/tmp/nsbox-fixture-images').build()
    home = os.path.join(installed['work'], 'podman')
    pm = PrivatePodman(home)
    pm('load', '-i', images.docker_archive)
    yield pm
    pm.reset()
    ocih.remove_cgroups(CGROUP_PARENT + '-podman')


def test_podman_with_nsbox_as_its_runtime(installed, podman, reaper):
    flags = ['--runtime', installed['oci'], '--cgroup-manager=cgroupfs', '--events-backend=file']
    run = ['--network', 'none', '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=32768:32768', '--cgroup-parent', CGROUP_PARENT + '-podman']
    image = 'localhost/nsbox/busybox:latest'
    assert podman(*flags, 'run', '--rm', *run, image, 'echo', 'hi').strip() == 'hi'
    cid = podman(*flags, 'run', '-d', '--name', 'bg', *run, image, 'sh', '-c', 'trap "exit 0" TERM; sleep 100 & wait').strip()
    assert len(cid) == 64
    assert podman(*flags, 'exec', 'bg', 'sh', '-c', 'echo in-$(cat /proc/1/cmdline | tr "\\0" " ")').strip().startswith('in-sh -c')
    assert 'Up' in podman(*flags, 'ps', '--filter', 'name=bg', '--format', '{{.Status}}')
    podman(*flags, 'stop', '-t', '5', 'bg')
    assert podman(*flags, 'inspect', 'bg', '--format', '{{.State.Status}} {{.State.ExitCode}}').split() == ['exited', '0']
    podman(*flags, 'rm', 'bg')
    assert podman(*flags, 'ps', '-a', '--format', '{{.Names}}').strip() == ''
    reaper.check()
