# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""launch/process.py for real: busybox containers started with start(), entered with enter().

Each container is started by a forked helper that makes itself a child subreaper (as the
supervisor does), so the container's init becomes its child and its real exit status is seen;
the helper reports over a pipe and ends. pytest's own process never changes (no subreaper bit,
no namespace). Containers mount only in their own mount namespaces: nothing to unmount here;
every process started is killed by its pid if a test fails half-way.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import selectors
import shutil
import signal
import statistics
import subprocess
import tarfile
import tempfile
import time
import traceback

import pytest

from harness.images import busybox_rootfs_bytes

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import namespaces, syscall
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import caps, process
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import NsboxError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='containers need root')

CATATONIT = '/usr/bin/catatonit'
ALL_NEW = {'pid': None, 'uts': None, 'ipc': None, 'net': None, 'cgroup': None}
DEFAULT_MASK = '%016x' % caps.mask(caps.DEFAULT)


@pytest.fixture(scope='module')
def rootfs_tar():
    return busybox_rootfs_bytes()


@pytest.fixture
def rootfs(rootfs_tar):
    path = tempfile.mkdtemp(prefix='nsbox-proc-rootfs-')
    os.chmod(path, 0o755)  # as an image's root: a non-root user must traverse it
    try:
        with tarfile.open(fileobj=io.BytesIO(rootfs_tar)) as tar:
            tar.extractall(path)  # noqa: S202 - our own fixture's tar
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def hostdir():
    path = tempfile.mkdtemp(prefix='nsbox-proc-host-')
    yield path
    shutil.rmtree(path, ignore_errors=True)


def spec_of(rootfs, script, **extra):
    spec = {'rootfs': rootfs, 'args': ['sh', '-c', script], 'env': ['PATH=/bin', 'HOME=/root'], 'namespaces': dict(ALL_NEW),
            'hostname': 'box', 'loopback': True}
    spec.update(extra)
    return spec


def _kill(pid):
    with contextlib.suppress(ProcessLookupError, TypeError):
        os.kill(pid, signal.SIGKILL)


def run_box(spec, during=None, prelude=None, timeout=30):
    """Start ``spec`` from a forked subreaper helper; wait for the container to end.

    Returns {out, pid, ms, cgroup_pid, comm_at_join, during, status} or {error: {type, message, errno}}.
    ``during(pid)`` runs in the helper while the container runs; ``prelude()`` before it becomes
    a subreaper (e.g. a mount namespace of its own); their results must be JSON-able.
    """
    out_r, out_w = os.pipe()
    res_r, res_w = os.pipe()
    helper = os.fork()
    if helper == 0:  # pragma: no cover - the helper
        try:
            os.close(out_r)
            os.close(res_r)
            result = {}
            if prelude:
                result['prelude'] = prelude()
            process.become_subreaper()
            null = os.open(os.devnull, os.O_RDONLY)
            seen = {}

            def join_cgroup(pid):
                seen['cgroup_pid'] = pid
                with open('/proc/%d/comm' % pid) as f:
                    seen['comm_at_join'] = f.read().strip()
            started = time.monotonic()
            try:
                pid = process.start(spec, (null, out_w, out_w), join_cgroup)
            except NsboxError as exc:
                result['error'] = {'type': type(exc).__name__, 'message': str(exc), 'errno': exc.errno, 'path': exc.path}
            else:
                result.update(seen, pid=pid, ms=(time.monotonic() - started) * 1000)
                os.close(out_w)
                os.write(res_w, json.dumps({'pid': pid}).encode() + b'\n')
                if during:
                    try:
                        result['during'] = during(pid)
                    except BaseException:
                        _kill(pid)
                        raise
                result['status'] = process.wait_status(pid)
            os.write(res_w, json.dumps(result).encode() + b'\n')
        except BaseException:  # pylint: disable=broad-except
            with contextlib.suppress(BaseException):
                os.write(res_w, json.dumps({'crash': traceback.format_exc()}).encode() + b'\n')
        finally:
            os._exit(0)  # pylint: disable=protected-access
    os.close(out_w)
    os.close(res_w)
    out, res, pid = [], [], None
    sel = selectors.DefaultSelector()
    sel.register(out_r, selectors.EVENT_READ, out)
    sel.register(res_r, selectors.EVENT_READ, res)
    deadline = time.monotonic() + timeout
    try:
        while sel.get_map():
            left = deadline - time.monotonic()
            events = sel.select(left) if left > 0 else []
            if not events:
                _kill(pid)
                _kill(helper)
                raise AssertionError('the container did not end within %s s' % timeout)
            for key, _mask in events:
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    continue
                key.data.append(data)
                if key.data is res and pid is None and b'\n' in b''.join(res):
                    pid = json.loads(b''.join(res).split(b'\n', maxsplit=1)[0]).get('pid')
    finally:
        sel.close()
        os.close(out_r)
        os.close(res_r)
        os.waitpid(helper, 0)
    lines = [json.loads(line) for line in b''.join(res).split(b'\n') if line]
    result = lines[-1]
    assert 'crash' not in result, result['crash']
    result['out'] = b''.join(out).decode('utf-8', 'replace')
    return result


def status_fields(text):
    return dict(line.split(':', 1) for line in text.splitlines() if ':' in line)


def host_ns():
    return namespaces.proc_namespaces('self')


# -- the process model ---------------------------------------------------------------------------
def test_init_is_pid_1_in_new_namespaces(rootfs):
    script = ('echo self=$$; ps -o pid,comm | tail -n +2 | tr -s " " | tr "\\n" ";"; echo; '
              'for t in mnt uts ipc net pid cgroup; do echo $t=$(readlink /proc/self/ns/$t); done; '
              'echo lo=$(cat /sys/class/net/lo/flags); echo ppid=$(cut -d" " -f4 /proc/1/stat)')
    res = run_box(spec_of(rootfs, script))
    assert res['status'] == 0, res
    lines = res['out'].splitlines()
    out = dict(line.split('=', 1) for line in lines if '=' in line)
    assert out['self'] == '1'
    procs = [p.split() for p in lines[1].split(';') if p.strip()]
    assert procs[0] == ['1', 'sh'] and all(int(pid) < 10 for pid, _comm in procs), procs  # only the container's processes
    assert out['ppid'] == '0'
    mine = host_ns()
    for ns_type in ('mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup'):
        assert namespaces.parse_ns_link(out[ns_type])[1] != mine[ns_type], ns_type
    assert int(out['lo'], 16) & 1, 'lo is up in the new net namespace'
    assert res['cgroup_pid'] == res['pid'] and res['comm_at_join'] != 'sh'  # joined before exec


def test_joined_and_host_namespaces(rootfs):
    holder = subprocess.Popen(['unshare', '--net', '--uts', 'sleep', '1000'])
    try:
        deadline = time.monotonic() + 5
        while namespaces.proc_namespaces(holder.pid)['uts'] == host_ns()['uts'] and time.monotonic() < deadline:
            time.sleep(0.01)
        theirs = namespaces.proc_namespaces(holder.pid)
        ns = {'net': '/proc/%d/ns/net' % holder.pid, 'uts': '/proc/%d/ns/uts' % holder.pid, 'pid': None}
        script = 'for t in mnt uts ipc net pid cgroup; do echo $t=$(readlink /proc/self/ns/$t); done'
        res = run_box(spec_of(rootfs, script, namespaces=ns, hostname=None, loopback=False))
    finally:
        holder.kill()
        holder.wait()
    assert res['status'] == 0, res
    out = {k: namespaces.parse_ns_link(v)[1] for k, v in (line.split('=', 1) for line in res['out'].splitlines())}
    mine = host_ns()
    assert out['net'] == theirs['net'] != mine['net']
    assert out['uts'] == theirs['uts'] != mine['uts']
    assert out['ipc'] == mine['ipc'] and out['cgroup'] == mine['cgroup']  # absent: the host's
    assert out['pid'] != mine['pid'] and out['mnt'] != mine['mnt']  # new


def test_hostname_dev_nodes_links_and_pts(rootfs):
    script = ('hostname; for n in null zero full random urandom tty; do stat -c "%n %F %t:%T %a" /dev/$n; done; '
              'for n in fd stdin stdout stderr ptmx; do echo /dev/$n $(readlink /dev/$n); done; '
              'exec 3<>/dev/ptmx; ls /dev/pts | tr "\\n" " "; echo; stat -c "%a" /dev/shm; '
              'grep -E " /dev(/pts|/shm|/mqueue)? " /proc/self/mountinfo | awk \'{for (i = 7; i <= NF; i++) if ($i == "-") print $5, $(i + 1)}\'')
    res = run_box(spec_of(rootfs, script))
    assert res['status'] == 0, res
    lines = res['out'].splitlines()
    assert lines[0] == 'box'
    nodes = {'null': '1:3', 'zero': '1:5', 'full': '1:7', 'random': '1:8', 'urandom': '1:9', 'tty': '5:0'}
    for line, (name, dev) in zip(lines[1:7], nodes.items()):
        assert line == '/dev/%s character special file %s 666' % (name, dev)
    assert lines[7:12] == ['/dev/fd /proc/self/fd', '/dev/stdin /proc/self/fd/0', '/dev/stdout /proc/self/fd/1',
                           '/dev/stderr /proc/self/fd/2', '/dev/ptmx pts/ptmx']
    assert lines[12].split() == ['0', 'ptmx']  # a private devpts instance: a pty was made in it
    assert lines[13] == '1777'
    assert sorted(lines[14:]) == ['/dev tmpfs', '/dev/mqueue mqueue', '/dev/pts devpts', '/dev/shm tmpfs']


def test_masked_and_readonly_paths(rootfs):
    script = ('for p in /proc/kcore /proc/keys /proc/timer_list; do [ -e $p ] && echo $p $(wc -c < $p); done; '
              'for d in /proc/acpi /sys/firmware; do [ -e $d ] && echo $d $(ls -A $d | wc -l); done; '
              'echo x > /proc/sys/kernel/domainname 2>/dev/null && echo writable || echo refused; '
              'grep " /proc/sys " /proc/self/mountinfo | cut -d" " -f6')
    res = run_box(spec_of(rootfs, script))
    assert res['status'] == 0, res
    lines = res['out'].splitlines()
    masked = [line for line in lines if line.startswith(('/proc/', '/sys/'))]
    expected = [p for p in ('/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/acpi', '/sys/firmware') if os.path.exists(p)]
    assert [line.split()[0] for line in masked] == expected
    assert all(line.split()[1] == '0' for line in masked), masked
    assert lines[-2] == 'refused'
    assert lines[-1].split(',')[0] == 'ro'


def test_old_root_is_gone(rootfs):
    script = 'ls -A / | tr "\\n" " "; echo; cut -d" " -f5 /proc/self/mountinfo | tr "\\n" " "; echo; test -e %s && echo seen || echo gone' % (
        os.path.abspath(__file__))
    res = run_box(spec_of(rootfs, script))
    assert res['status'] == 0, res
    top, targets, here = res['out'].splitlines()
    assert set(top.split()) == set(os.listdir(rootfs))
    assert here == 'gone'
    assert all(t == '/' or t.startswith(('/proc', '/sys', '/dev')) for t in targets.split()), targets


def test_readonly_rootfs_binds_and_tmpfs(rootfs, hostdir):
    rw, ro = os.path.join(hostdir, 'rw'), os.path.join(hostdir, 'ro')
    os.mkdir(rw)
    os.mkdir(ro)
    with open(os.path.join(hostdir, 'file'), 'w') as f:
        f.write('from the host\n')
    mounts = [{'type': 'bind', 'source': rw, 'target': '/data', 'readonly': False, 'options': []},
              {'type': 'bind', 'source': ro, 'target': '/srv/ro', 'readonly': True, 'options': []},
              {'type': 'bind', 'source': os.path.join(hostdir, 'file'), 'target': '/etc/some/file', 'readonly': True, 'options': []},
              {'type': 'tmpfs', 'source': 'tmpfs', 'target': '/scratch', 'readonly': False, 'options': ['size=1m', 'mode=1777']}]
    script = ('touch /x 2>/dev/null && echo root-writable || echo root-ro; '
              'echo hi > /data/f && echo data-ok; touch /srv/ro/f 2>/dev/null && echo ro-writable || echo ro-refused; '
              'cat /etc/some/file; touch /scratch/f && echo scratch-ok; stat -c %a /scratch; '
              'grep " /scratch " /proc/self/mountinfo | cut -d" " -f6,9-')
    res = run_box(spec_of(rootfs, script, readonly_rootfs=True, mounts=mounts))
    assert res['status'] == 0, res
    lines = res['out'].splitlines()
    assert lines[:7] == ['root-ro', 'data-ok', 'ro-refused', 'from the host', 'scratch-ok', '1777', lines[6]]
    assert lines[6].startswith('rw,nosuid,nodev,noexec') and 'size=1024k' in lines[6], lines[6]
    with open(os.path.join(rw, 'f')) as f:
        assert f.read() == 'hi\n'
    assert os.listdir(ro) == []
    assert os.path.isfile(os.path.join(rootfs, 'etc/some/file'))  # the file target was made to match


def test_symlink_planted_targets_stay_in_the_rootfs(rootfs, hostdir):
    victim = os.path.join(hostdir, 'victim')
    os.mkdir(victim)
    os.symlink('/', os.path.join(rootfs, 'evil'))
    os.symlink('../../../../../../../..', os.path.join(rootfs, 'etc', 'up'))
    os.symlink(victim, os.path.join(rootfs, 'abs'))
    mounts = [{'type': 'tmpfs', 'source': 'tmpfs', 'target': '/abs/t1', 'readonly': False, 'options': []},
              {'type': 'tmpfs', 'source': 'tmpfs', 'target': '/etc/up' + victim + '/t2', 'readonly': False, 'options': []},
              {'type': 'bind', 'source': hostdir, 'target': '/evil' + victim + '/t3', 'readonly': True, 'options': []}]
    res = run_box(spec_of(rootfs, 'ls -A %s | tr "\\n" " "' % victim, mounts=mounts))
    assert res['status'] == 0, res
    assert os.listdir(victim) == []  # nothing was made on the host
    assert sorted(res['out'].split()) == ['t1', 't2', 't3']
    assert sorted(os.listdir(os.path.join(rootfs, victim.lstrip('/')))) == ['t1', 't2', 't3']  # made inside


def test_user_groups_capabilities_no_new_privs(rootfs):
    script = 'grep -E "^(Uid|Gid|Groups|Cap...|NoNewPrivs):" /proc/self/status'
    res = run_box(spec_of(rootfs, script, user={'uid': 1000, 'gid': 1001, 'additional_gids': [10, 20]}, no_new_privs=True))
    assert res['status'] == 0, res
    status = {k: v.split() for k, v in status_fields(res['out']).items()}
    assert status['Uid'] == ['1000'] * 4 and status['Gid'] == ['1001'] * 4 and status['Groups'] == ['10', '20']
    assert status['CapEff'] == status['CapPrm'] == status['CapInh'] == status['CapAmb'] == ['0' * 16]
    assert status['CapBnd'] == [DEFAULT_MASK]
    assert status['NoNewPrivs'] == ['1']


def test_root_gets_default_or_given_capabilities(rootfs):
    script = 'grep -E "^(Cap...|NoNewPrivs):" /proc/self/status'
    res = run_box(spec_of(rootfs, script))
    status = {k: v.strip() for k, v in status_fields(res['out']).items()}
    assert status['CapEff'] == status['CapPrm'] == status['CapBnd'] == DEFAULT_MASK == '00000000a80425fb'
    assert status['CapInh'] == status['CapAmb'] == '0' * 16 and status['NoNewPrivs'] == '0'
    res = run_box(spec_of(rootfs, script, capabilities=['net_admin', 'CAP_CHOWN']))
    status = {k: v.strip() for k, v in status_fields(res['out']).items()}
    assert status['CapEff'] == status['CapBnd'] == '%016x' % (1 << 12 | 1 << 0)


def test_cwd_is_created_and_env_is_exact(rootfs):
    res = run_box(spec_of(rootfs, 'pwd; env | sort | tr "\\n" " "', cwd='/work/deep/dir', env=['PATH=/bin', 'A=1', 'A=2']))
    assert res['status'] == 0, res
    cwd, env = res['out'].splitlines()
    assert cwd == '/work/deep/dir' and os.path.isdir(os.path.join(rootfs, 'work/deep/dir'))
    assert env.split() == ['A=2', 'PATH=/bin', 'PWD=/work/deep/dir', 'SHLVL=1']


# -- exit status and errors ----------------------------------------------------------------------
def test_exit_code(rootfs):
    assert run_box(spec_of(rootfs, 'exit 3'))['status'] == 3


def test_killed_by_sigterm_reports_143(rootfs):
    # The init of a pid namespace ignores signals it has no handler for: SIGTERM needs the host's
    # pid namespace, or an init that forwards it (below).
    spec = spec_of(rootfs, 'exec sleep 1000', namespaces={'uts': None}, loopback=False)
    res = run_box(spec, during=lambda pid: os.kill(pid, signal.SIGTERM))
    assert res['status'] == 143


def test_init_forwards_sigterm_and_sigkill_is_137(rootfs):
    if not os.path.isfile(CATATONIT):
        pytest.skip('no catatonit')
    spec = spec_of(rootfs, '', init=CATATONIT)
    spec['args'] = ['/dev/init', '--', 'sleep', '1000']

    def term(pid):
        time.sleep(0.2)  # catatonit installs its handlers, then execs... the child
        os.kill(pid, signal.SIGTERM)
    assert run_box(spec, during=term)['status'] == 143
    res = run_box(spec_of(rootfs, 'sleep 1000'), during=lambda pid: os.kill(pid, signal.SIGKILL))
    assert res['status'] == 137


@pytest.mark.parametrize('command, cause', [
    ('nosuchcommand', 'failed to find the command nosuchcommand: executable file not found in $PATH (/bin)'),
    ('/no/such/binary', 'failed to exec /no/such/binary: No such file or directory (/no/such/binary)'),
])
def test_bad_command_is_a_typed_error(rootfs, command, cause):
    spec = spec_of(rootfs, '')
    spec['args'] = [command]
    res = run_box(spec)
    assert res['error']['type'] == 'ProcessError'
    assert res['error']['message'] == cause
    assert res['error']['path'] == command


def test_join_cgroup_failure_leaves_nothing(rootfs):
    seen = {}

    def refuse(pid):
        seen['pid'] = pid
        raise RuntimeError('no cgroup today')
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the helper
        code = 1
        try:
            process.become_subreaper()
            try:
                process.start(spec_of(rootfs, 'sleep 1000'), (0, 1, 2), refuse)
            except RuntimeError:
                code = 0 if namespaces.process_stamp(seen['pid']) is None else 2
        finally:
            os._exit(code)  # pylint: disable=protected-access
    assert process.wait_status(pid) == 0  # raised, and the container's process is gone (killed, reaped)


# -- enter ---------------------------------------------------------------------------------------
def test_enter_sees_the_container(rootfs):
    with open(os.path.join(rootfs, 'marker'), 'w') as f:
        f.write('inside\n')

    def exec_in(pid):
        out = {}
        for name, script, user in (
                ('look', 'hostname; echo $$; cat /proc/1/cmdline | tr "\\0" " "; echo; cat /marker; id -u; id -G; pwd; exit 5',
                 {'uid': 1000, 'gid': 1000, 'additional_gids': [7]}),
                ('term', 'kill -TERM $$', None), ('kill', 'kill -KILL $$', None)):
            r, w = os.pipe()
            spec = {'args': ['sh', '-c', script], 'env': ['PATH=/bin'], 'cwd': '/tmp', 'user': user}
            joined = []
            child = process.enter(pid, spec, (w, w, w), joined.append)
            os.close(w)
            with os.fdopen(r) as f:
                text = f.read()
            out[name] = {'rc': process.wait_status(child), 'out': text, 'joined': joined}
        try:
            process.enter(pid, {'args': ['nosuch']}, (0, 1, 2), lambda p: None)
        except process.ProcessError as exc:
            out['error'] = str(exc)
        try:
            process.enter(pid, {'args': ['true']}, (0, 1, 2), lambda p: None, start_time=namespaces.process_stamp(pid)[1] + 1)
        except process.ProcessError as exc:
            out['reused'] = str(exc)
        os.kill(pid, signal.SIGKILL)
        return out
    res = run_box(spec_of(rootfs, 'exec sleep 1000', hostname='entered'), during=exec_in)
    assert res['status'] == 137
    look = res['during']['look']
    assert look['rc'] == 5
    hostname, pid, cmdline, marker, uid, gids, cwd = look['out'].splitlines()
    assert hostname == 'entered' and int(pid) > 1 and cmdline.split() == ['sleep', '1000'] and marker == 'inside'
    assert (uid, gids, cwd) == ('1000', '1000 7', '/tmp')
    assert len(look['joined']) == 1
    assert res['during']['term']['rc'] == 143  # A ends as its child did
    assert res['during']['kill']['rc'] == 137  # SIGKILL too (an OOM kill: 137, never 127)
    assert res['during']['error'].startswith('failed to find the command nosuch')
    assert res['during']['reused'] == 'failed to enter process %d: it is no longer running' % res['pid']


# -- propagation ---------------------------------------------------------------------------------
def test_nothing_propagates_back_from_a_shared_root(rootfs):
    def shared_ns():
        syscall.unshare(syscall.CLONE_NEWNS)
        syscall.mount(None, '/', None, syscall.MS_SHARED | syscall.MS_REC)
        with open('/proc/self/mountinfo') as f:
            return f.read()

    def look(pid):
        with open('/proc/self/mountinfo') as f:
            mine = f.read()
        with open('/proc/%d/mountinfo' % pid) as f:
            theirs = f.read()
        os.kill(pid, signal.SIGKILL)
        return {'mine': mine, 'theirs': theirs}
    res = run_box(spec_of(rootfs, 'exec sleep 1000'), prelude=shared_ns, during=look)
    assert res['status'] == 137
    assert any(line.split()[4] == '/' and 'shared:' in line for line in res['prelude'].splitlines())  # / is shared there
    assert res['during']['mine'] == res['prelude']  # not one mount came back
    assert 'devpts' in res['during']['theirs'] and ' /proc/sys ' in res['during']['theirs']


# -- cost ----------------------------------------------------------------------------------------
def test_start_time(rootfs):
    times = [run_box(spec_of(rootfs, 'true'))['ms'] for _run in range(10)]
    print('process.start (fork -> exec), ms: median %.1f, max %.1f' % (statistics.median(times), max(times)))
    assert statistics.median(times) < 500
