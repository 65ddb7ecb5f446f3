# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``nsbox run-unit`` under a test process that plays systemd's part.

The test owns a notify socket (as systemd does for a Type=notify unit), is a child subreaper
(as systemd's service manager is), runs ``nsbox run-unit NAME`` and reads READY=1 and MAINPID:
the runner itself has ended by then, the container's init is the only process left and is in
the container's cgroup and namespaces. ``nsbox unit-stopped`` (ExecStopPost=) then records the
end from $EXIT_CODE/$EXIT_STATUS and removes the cgroup and the rootfs mount. The real systemd
test comes with the roles, in the realhost lane.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

import pytest

from harness import images
from harness.containers import FIXTURE_CACHE, LAYOUT, library_host
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import runner, converge
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import mountinfo

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or LAYOUT is None or LAYOUT.mode == 'v2', reason='root on a v1/hybrid host')
COLLECTIONS = os.path.dirname(os.path.dirname(os.path.dirname(sys.modules['ansible_collections.nsbox.runtime'].__path__[0])))


@pytest.fixture
def unit_env(tmp_path, reaper):
    with library_host(images.FixtureImages(FIXTURE_CACHE).build(), reaper) as (cfg, _base, data):
        config_path = tmp_path / 'config.json'
        config_path.write_text(json.dumps(dict(data, schema_version=1)))
        sock_path = str(tmp_path / 'notify')
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(sock_path)
        try:
            yield cfg, dict(os.environ, NSBOX_CONFIG=str(config_path), NOTIFY_SOCKET=sock_path, PYTHONPATH=COLLECTIONS), sock
        finally:
            sock.close()


def nsbox(env, *args, extra_env=None):
    """The host CLI; its output to files, as a unit's goes to the journal (the container keeps the fds)."""
    code = 'from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cli.main import main; main()'
    with tempfile.TemporaryFile('w+') as out, tempfile.TemporaryFile('w+') as err:
        # The host's python3, as the installed command runs (its libseccomp binding, which a venv lacks).
        proc = subprocess.run(['/usr/bin/python3', '-c', code] + list(args), env=dict(env, **(extra_env or {})),
                              stdout=out, stderr=err, stdin=subprocess.DEVNULL, timeout=60, check=False)
        out.seek(0)
        err.seek(0)
        proc.stdout, proc.stderr = out.read(), err.read()
    return proc


def test_run_unit_reports_the_init_as_mainpid_and_ends(unit_env):
    cfg, env, sock = unit_env
    converge.ensure(cfg, 'unitweb', {'image': 'busybox', 'command': 'sleep 1000'}, state='present')
    proc = nsbox(env, 'run-unit', 'unitweb')
    assert proc.returncode == 0, proc.stderr
    sock.settimeout(5)
    message = sock.recv(4096).decode()
    fields = dict(line.split('=', 1) for line in message.split('\n') if line)
    assert fields['READY'] == '1'
    pid = int(fields['MAINPID'])
    # The runner has ended; the init is ours now (subreaper), in the container's cgroup and namespaces.
    assert open('/proc/%d/stat' % pid).read().split()[3] == str(os.getpid())
    assert open('/proc/%d/cmdline' % pid).read() == 'sleep\x001000\x00'
    assert os.stat('/proc/%d/ns/pid' % pid).st_ino != os.stat('/proc/self/ns/pid').st_ino
    store = converge.open_store(cfg)
    c = store.find('unitweb')
    assert c.status()['running'] and c.status()['pid'] == pid
    assert any(c.id in line for line in open('/proc/%d/cgroup' % pid))
    # systemd stops the unit: SIGTERM (sleep as pid 1 ignores it), then SIGKILL; then ExecStopPost=.
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    proc = nsbox(env, 'unit-stopped', 'unitweb', extra_env={'EXIT_CODE': 'killed', 'EXIT_STATUS': 'KILL', 'SERVICE_RESULT': 'signal'})
    assert proc.returncode == 0, proc.stderr
    st = store.find('unitweb').status()
    assert st['status'] == 'exited' and st['exit_code'] == 137 and not st['oom_killed']
    assert not any(m.mount_point == c.rootfs for m in mountinfo.read('/proc/self/mountinfo'))
    assert not converge.assemble.cgroup_of(cfg, c).exists()


def test_run_unit_needs_systemd_and_an_existing_container(unit_env):
    cfg, env, _sock = unit_env
    proc = nsbox(env, 'run-unit', 'ghost')
    assert proc.returncode == 1 and 'it does not exist' in proc.stderr
    converge.ensure(cfg, 'unitweb', {'image': 'busybox', 'command': 'true'}, state='present')
    no_socket = {k: v for k, v in env.items() if k != 'NOTIFY_SOCKET'}
    with pytest.raises(Exception, match='NOTIFY_SOCKET is not set'):
        runner.notify('READY=1', no_socket)


@pytest.mark.parametrize('env, code', [
    ({'EXIT_CODE': 'exited', 'EXIT_STATUS': '3'}, 3),
    ({'EXIT_CODE': 'killed', 'EXIT_STATUS': 'TERM'}, 143),
    ({'EXIT_CODE': 'dumped', 'EXIT_STATUS': 'SEGV'}, 139),
    ({}, None),
])
def test_exit_status_from_systemd(env, code):
    assert runner._code_from_systemd(env) == code  # pylint: disable=protected-access
