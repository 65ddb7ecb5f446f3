# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policy and healthcheck for real, over SSH: the supervisor restarts a failing container
with back-off, gives up after the retries, survives its own death (adoption), never undoes a stop;
a healthcheck turns a container healthy and unhealthy, ``state: healthy`` waits for it, and a
check that hangs is killed at its timeout."""
from __future__ import annotations

import datetime
import os
import secrets
import signal
import time

import pytest

from harness.containers import DATA_ROOT, LAYOUT, NOTHING, V1_ONLY, setup, supervisors, teardown

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)


@pytest.fixture(scope='module')
def restart_host(testhost, ansible, fixtures):
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive})
    teardown(testhost, parent)


@pytest.fixture
def box(restart_host, reaper):
    yield restart_host
    left = teardown(restart_host.host, restart_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


def _until(box, name, accept, timeout=30, log_lines=0):
    deadline = time.monotonic() + timeout
    while True:
        info = box.info(name, log_lines=log_lines)
        if accept(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.3)


def _time(stamp):
    return datetime.datetime.strptime(stamp[:26], '%Y-%m-%dT%H:%M:%S.%f')


def test_on_failure_restarts_with_backoff_then_stays_exited(box):
    res = box.run(name='crash', image='busybox', command=['sh', '-c', 'echo run; exit 3'], restart_policy='on-failure', restart_retries=3)
    assert res['_status'] == 'changed', res
    info = _until(box, 'crash', lambda i: i['state']['status'] == 'exited' and i['state']['restart_count'] == 3, log_lines=20)
    st = info['state']
    assert (st['status'], st['exit_code'], st['restart_count']) == ('exited', 3, 3), st
    runs = [_time(e['time']) for e in info['logs'] if e['log'] == 'run\n']
    assert len(runs) == 4, info['logs']  # the first run and three restarts, then no more
    gaps = [(b - a).total_seconds() for a, b in zip(runs, runs[1:])]
    assert all(gap >= want for gap, want in zip(gaps, (0.1, 0.2, 0.4))), gaps  # back-off: 100ms, doubled
    # each restart recorded (issue 20 item 9): when, the exit code, OOM, the back-off
    assert [(r['count'], r['exit_code'], r['oom_killed']) for r in st['restarts']] == [(1, 3, False), (2, 3, False), (3, 3, False)], st
    assert [r['backoff'] for r in st['restarts']] == sorted(r['backoff'] for r in st['restarts']) and st['restarts'][0]['time']
    time.sleep(1)
    again = box.info('crash')['state']
    assert again['restart_count'] == 3 and again['status'] == 'exited' and supervisors(box.host) == []
    # A start by the user counts afresh.
    res = box.run(name='crash', image='busybox', command=['sh', '-c', 'echo run; exit 3'], restart_policy='on-failure:1')
    assert res['actions'] == ['updated restart_policy of container crash', 'started container crash'], res
    info = _until(box, 'crash', lambda i: i['state']['status'] == 'exited' and i['state']['restart_count'] == 1)
    assert info['state']['restart_count'] == 1
    assert box.run(name='crash', state='absent')['_status'] == 'changed'


def test_always_survives_the_supervisors_death_and_a_stop_wins(box):
    args = dict(name='svc', image='busybox', command='sleep 3600', restart_policy='always', stop_timeout=0)
    first = box.run(**args)['container']['state']
    sups = supervisors(box.host)
    assert len(sups) == 1
    os.kill(sups[0], signal.SIGKILL)  # the container runs on without it
    info = _until(box, 'svc', lambda i: not i['state']['supervised'])
    assert info['state']['running'] and info['state']['pid'] == first['pid']
    # Seen (issue 20 item 4: ps said only 'Up'): in ps, with how to adopt it, and as container_info's warning.
    ps = box.host.ssh('nsbox ps', check=False)
    assert '(unsupervised)' in ps.stdout and 'nsbox start svc adopts it' in ps.stderr, (ps.stdout, ps.stderr)
    seen = box.ansible.module('nsbox.runtime.container_info', {'name': ['svc']})
    assert any('runs without its supervisor' in w for w in seen.get('warnings') or []), seen
    res = box.run(**args)
    assert res['actions'] == ['adopted running container svc (its supervisor had died)'], res
    os.kill(first['pid'], signal.SIGKILL)  # the adopting supervisor restarts it (exit code unknown to it)
    info = _until(box, 'svc', lambda i: i['state']['running'] and i['state']['pid'] != first['pid'])
    assert info['state']['running'] and info['state']['restart_count'] == 1, info['state']
    os.kill(info['state']['pid'], signal.SIGKILL)  # and again, by the supervisor that restarted it
    info = _until(box, 'svc', lambda i: i['state']['running'] and i['state']['restart_count'] == 2)
    assert info['state']['running'] and info['state']['restart_count'] == 2, info['state']
    res = box.run(state='stopped', **args)
    assert res['_status'] == 'changed' and res['container']['state']['status'] == 'exited', res
    time.sleep(0.5)
    assert box.info('svc')['state']['status'] == 'exited' and supervisors(box.host) == []
    assert box.run(name='svc', state='absent')['_status'] == 'changed'


def test_an_interrupted_stop_does_not_turn_the_policy_off(box):
    """A stop records stop_requested first; a run killed right after that left it set on a running container, a later
    state: started said ok, and the next crash ended the container for good (issue 19, item 4)."""
    args = dict(name='intr', image='busybox', command='sleep 3600', restart_policy='always', stop_timeout=0)
    first = box.run(**args)['container']
    # The moment a stop's run is SIGKILLed: the stop recorded, nothing signalled yet.
    state_json = '%s/containers/%s/state.json' % (DATA_ROOT, first['id'])
    box.sh("python3 -c 'import json, sys; p = sys.argv[1]; s = json.load(open(p)); s[\"stop_requested\"] = True; "
           "open(p + \".t\", \"w\").write(json.dumps(s)); __import__(\"os\").rename(p + \".t\", p)' %s" % state_json)
    res = box.run(**args)
    assert res['_status'] == 'changed', res
    assert res['actions'] == ['resumed the restart policy of container intr (a stop of it had been interrupted)'], res
    assert box.run(**args)['_status'] == 'ok'
    os.kill(first['state']['pid'], signal.SIGKILL)  # a crash: restarted, as its policy says
    info = _until(box, 'intr', lambda i: i['state']['running'] and i['state']['pid'] != first['state']['pid'])
    assert info['state']['running'] and info['state']['restart_count'] == 1, info['state']
    assert box.run(name='intr', state='absent')['_status'] == 'changed'


def test_a_stop_ends_a_crash_loop(box):
    args = dict(name='loop', image='busybox', command=['sh', '-c', 'exit 1'], restart_policy='unless-stopped')
    assert box.run(**args)['_status'] == 'changed'
    info = _until(box, 'loop', lambda i: i['state']['restart_count'] >= 3)
    assert info['state']['restart_count'] >= 3
    res = box.run(state='stopped', **args)
    assert res['_status'] in ('changed', 'ok') and res['container']['state']['status'] == 'exited', res
    count = res['container']['state']['restart_count']
    time.sleep(1)
    assert box.info('loop')['state']['restart_count'] == count and supervisors(box.host) == []
    assert box.run(name='loop', state='absent')['_status'] == 'changed'


def test_healthcheck_for_real(box):
    hc = {'test': 'if [ -f /tmp/hang ]; then sleep 30; fi; test -f /tmp/ok', 'interval': '200ms', 'timeout': '1s', 'retries': 2}
    # 8 s: two failed checks 200 ms apart must fit even on a loaded machine (each is a process of its own)
    args = dict(name='hc', image='busybox', command='sleep 3600', healthcheck=hc, stop_timeout=0, healthy_wait_timeout=8)
    try:
        _healthcheck_for_real(box, args)
    finally:
        box.run(name='hc', state='absent')


def _healthcheck_for_real(box, args):
    res = box.run(state='healthy', **args)
    assert res['_status'] == 'failed' and 'to be healthy' in res['msg'] and 'still unhealthy' in res['msg'], res
    info = box.info('hc')
    health = info['state']['health']
    assert info['state']['running'] and health['status'] == 'unhealthy' and health['failing_streak'] >= 2, health
    assert health['log'][-1]['exit_code'] == 1
    box.exec('hc', 'touch /tmp/ok')
    res = box.run(state='healthy', **args)
    assert res['_status'] == 'ok' and res['container']['state']['health']['status'] == 'healthy', res
    box.exec('hc', 'rm /tmp/ok')
    info = _until(box, 'hc', lambda i: i['state']['health']['status'] == 'unhealthy')
    assert info['state']['health']['status'] == 'unhealthy', info['state']
    # A check that hangs is ended at its timeout (exit code -1, as Docker), its process killed.
    box.exec('hc', 'touch /tmp/ok /tmp/hang')
    info = _until(box, 'hc', lambda i: any(e['exit_code'] == -1 for e in i['state']['health']['log']), timeout=20)
    entry = [e for e in info['state']['health']['log'] if e['exit_code'] == -1][-1]
    assert 'exceeded timeout' in entry['output'], entry
    box.exec('hc', 'rm /tmp/hang')
    info = _until(box, 'hc', lambda i: i['state']['health']['status'] == 'healthy')
    assert info['state']['health']['status'] == 'healthy'
    ps = box.exec('hc', 'ps -o args')['stdout']
    assert 'sleep 30' not in ps, ps
    # A container without a healthcheck cannot be waited for: refused, nothing made.
    res = box.run(name='nohc', image='busybox', command='sleep 3600', state='healthy')
    assert res['_status'] == 'failed' and 'has no healthcheck' in res['msg'], res
    assert box.info('nohc') is None
