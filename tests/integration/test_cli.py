# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``nsbox`` host command for real, over SSH: containers made with the Ansible modules are
listed, logged (also followed to their end), inspected, measured, exec'd into, stopped, started
and removed with the command a person types on the host; exit codes are what scripts rely on."""
from __future__ import annotations

import json
import secrets
import shlex
import time

import pytest

from harness.containers import LAYOUT, NOTHING, V1_ONLY, setup, teardown

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

SLEEP = {'command': ['sleep', '3600'], 'stop_timeout': 1}


@pytest.fixture(scope='module')
def cli_host(testhost, ansible, fixtures):
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive})
    teardown(testhost, parent)


@pytest.fixture
def box(cli_host, reaper):
    yield cli_host
    left = teardown(cli_host.host, cli_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


def nsbox(box, *args, timeout=60):
    """``nsbox ARGS`` on the test host: the CompletedProcess (stdout and stderr apart, any exit code)."""
    return box.host.ssh('nsbox ' + ' '.join(shlex.quote(a) for a in args), check=False, timeout=timeout)


def ok(box, *args):
    res = nsbox(box, *args)
    assert res.returncode == 0, (args, res.returncode, res.stdout, res.stderr)
    return res.stdout


def ps(box, *args):
    return {r['name']: r for r in json.loads(ok(box, 'ps', '--format', 'json', *args))}


def _until(box, accept, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        rows = ps(box, '-a')
        if accept(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.3)


def test_ps_images_logs_inspect_stats_exec_and_the_lifecycle(box):
    talk = 'echo a; sleep 1; echo b >&2; sleep 1; echo c'
    res = box.ansible.tasks([
        {'nsbox.runtime.container': dict(SLEEP, name='web', image='busybox', memory='64m', volumes=['clivol:/data'])},
        {'nsbox.runtime.container': {'name': 'job', 'image': 'busybox', 'command': ['sh', '-c', 'echo out1; echo err1 >&2; sleep 0.3; echo out2; exit 3']}},
        {'nsbox.runtime.container': {'name': 'talk', 'image': 'busybox', 'command': ['sh', '-c', talk], 'state': 'present'}},
    ])
    assert res.rc == 0, res
    try:
        rows = _until(box, lambda r: r['job']['status'] == 'exited')
        # ps: only what runs; -a all, with Docker's status texts.
        lines = ok(box, 'ps').splitlines()
        assert lines[0].split() == ['NAME', 'IMAGE', 'STATUS', 'PORTS', 'PID']
        assert len(lines) == 2 and lines[1].split()[:3] == ['web', 'busybox', 'Up'], lines
        assert lines[1].split()[-1] == str(rows['web']['pid'])
        assert rows['job']['exit_code'] == 3 and rows['job']['status_text'].startswith('Exited (3) ')
        assert rows['talk']['status'] == 'created' and rows['talk']['status_text'] == 'Created'
        assert rows['web']['running'] and rows['web']['ports'] == []
        table = ok(box, 'ps', '-a').splitlines()
        assert sorted(line.split()[0] for line in table[1:]) == ['job', 'talk', 'web']
        status_col = table[0].index('STATUS')
        assert all(line[status_col - 3:status_col] == '   ' for line in table[1:]), table  # the columns line up
        # images
        lines = ok(box, 'images').splitlines()
        assert lines[0].split() == ['REPOSITORY:TAG', 'DIGEST', 'SIZE'] and any('busybox' in line for line in lines[1:]), lines
        assert any('busybox' in r['reference'] and r['digest'].startswith('sha256:') for r in json.loads(ok(box, 'images', '--format', 'json')))
        # logs: the streams apart, as they came; --tail
        res = nsbox(box, 'logs', 'job')
        assert (res.returncode, res.stdout, res.stderr) == (0, 'out1\nout2\n', 'err1\n')
        res = nsbox(box, 'logs', '--tail', '1', 'job')
        assert (res.returncode, res.stdout, res.stderr) == (0, 'out2\n', '')
        # start (a created container) and logs -f, which ends when the container does
        began = time.monotonic()
        res = box.host.ssh('nsbox start talk && nsbox logs -f talk', check=False, timeout=60)
        assert res.returncode == 0 and res.stdout == 'talk\na\nc\n' and res.stderr == 'b\n', res
        assert time.monotonic() - began >= 1.5
        assert ps(box, '-a')['talk']['status_text'].startswith('Exited (0) ')
        # inspect
        found = json.loads(ok(box, 'inspect', 'web', 'job'))
        assert [c['name'] for c in found] == ['web', 'job'] and found[0]['state']['running'] and found[1]['state']['exit_code'] == 3
        res = nsbox(box, 'inspect', 'nosuch')
        assert res.returncode == 1 and json.loads(res.stdout) == [] and res.stderr == 'nsbox: no such container: nosuch\n', res
        # stats of the running ones
        lines = ok(box, 'stats', '--no-stream').splitlines()
        assert lines[0].split() == ['NAME', 'CPU', '%', 'MEM', 'USAGE', '/', 'LIMIT', 'PIDS'] and len(lines) == 2, lines
        cells = lines[1].split()
        assert cells[0] == 'web' and cells[1].endswith('%') and cells[3:5] == ['/', '64MiB'] and cells[5] == '1', lines
        stats = json.loads(ok(box, 'stats', '--no-stream', '--format', 'json'))
        assert stats[0]['name'] == 'web' and stats[0]['memory_limit'] == 64 * 1024 * 1024 and stats[0]['memory_usage'] > 0
        # exec: the streams and the exit code of the command
        res = nsbox(box, 'exec', 'web', 'sh', '-c', 'echo hi; echo oops >&2; exit 3')
        assert (res.returncode, res.stdout, res.stderr) == (3, 'hi\n', 'oops\n')
        res = nsbox(box, 'exec', 'job', 'true')
        assert res.returncode == 125 and res.stderr.startswith('nsbox: failed to exec in container job: it is not running'), res
        # volume ls, network ls (this host has no networks of its own)
        lines = ok(box, 'volume', 'ls').splitlines()
        assert lines[0].split() == ['NAME', 'DRIVER', 'CONTAINERS'] and ['clivol', 'local', 'web'] in [line.split() for line in lines]
        assert [v['Name'] for v in json.loads(ok(box, 'volume', 'ls', '--format', 'json'))] == ['clivol']
        assert ok(box, 'network', 'ls').splitlines()[0].split() == ['NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'CONTAINERS']
        # stop, start, rm
        assert ok(box, 'stop', 'web') == 'web\n'
        assert 'web' not in ps(box) and ps(box, '-a')['web']['status'] == 'exited'
        assert ok(box, 'start', 'web') == 'web\n'
        assert ps(box)['web']['running']
        res = nsbox(box, 'rm', 'web')
        assert res.returncode == 1 and 'it is running (stop it first, or give -f)' in res.stderr, res
        res = nsbox(box, 'rm', '-f', 'web', 'nosuch', 'job', 'talk')
        assert res.returncode == 1 and res.stdout == 'web\njob\ntalk\n', res
        assert res.stderr == 'nsbox: failed to remove container nosuch: it does not exist\n', res
        assert ps(box, '-a') == {}
        # usage errors exit 2
        assert nsbox(box, 'ps', '--format', 'yaml').returncode == 2
        assert nsbox(box, 'logs').returncode == 2
    finally:
        box.ansible.tasks([{'nsbox.runtime.container': {'name': n, 'state': 'absent'}} for n in ('web', 'job', 'talk')]
                          + [{'nsbox.runtime.volume': {'name': 'clivol', 'state': 'absent'}}])
