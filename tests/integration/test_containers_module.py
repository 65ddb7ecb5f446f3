# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nsbox.runtime.containers over SSH, for real: a list of containers converged in one task, dependencies
first, idempotent, in check mode and with a diff; bad input changes nothing; one failure does not stop the
others (but stops what depends on it)."""
from __future__ import annotations

import json
import secrets

import pytest

from harness.containers import LAYOUT, NOTHING, V1_ONLY, setup, teardown

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

DEFAULTS = {'image': 'busybox', 'command': 'sleep 3600', 'stop_timeout': 0, 'supervisor': 'auto'}  # auto: depends_on is allowed (systemd where it is PID 1)
STACK = [{'name': 'st-web', 'depends_on': ['st-db'], 'env': {'ROLE': 'web'}, 'labels': {'tier': 'front'}},
         {'name': 'st-db', 'env': {'ROLE': 'db'}},
         {'name': 'st-tool', 'command': 'sleep 1000'}]


@pytest.fixture(scope='module')
def stack_host(testhost, ansible, fixtures):
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive})
    teardown(testhost, parent)


@pytest.fixture
def box(stack_host, reaper):
    yield stack_host
    left = teardown(stack_host.host, stack_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


def _converge(box, containers, check=False, diff=False, **args):
    res = box.ansible.tasks([{'name': 'stack', 'nsbox.runtime.containers': dict({'containers': containers, 'defaults': DEFAULTS}, **args),
                              'ignore_errors': True}], check=check, diff=diff)
    return res.task('stack')


def _remove(box, names):
    res = box.ansible.module('nsbox.runtime.containers', {'containers': [{'name': n, 'state': 'absent', 'force_kill': True} for n in names]})
    assert res['_status'] in ('changed', 'ok'), res


def test_one_task_converges_a_stack_dependencies_first_and_then_nothing(box):
    try:
        first = _converge(box, STACK, labels={'io.example.stack': 'st', 'tier': 'base'})
        assert first['_status'] == 'changed', first
        assert [r['name'] for r in first['containers']] == ['st-db', 'st-web', 'st-tool']  # db before web, declared order otherwise
        assert first['actions'][:2] == ['st-db: created container st-db from busybox', 'st-db: started container st-db']
        infos = box.infos(['st-web', 'st-db', 'st-tool'])
        assert all(i['state']['status'] == 'running' for i in infos.values()), infos
        labels = {n: {k: v for k, v in i['config']['labels'].items() if k in ('io.example.stack', 'tier')} for n, i in infos.items()}
        assert labels['st-web'] == {'io.example.stack': 'st', 'tier': 'front'}  # its own label wins
        assert labels['st-db'] == {'io.example.stack': 'st', 'tier': 'base'}
        assert infos['st-tool']['config']['args'] == ['sleep', '1000']  # its own command, not the default
        again = _converge(box, STACK, labels={'io.example.stack': 'st', 'tier': 'base'})
        assert again['_status'] == 'ok' and again['actions'] == [] and not any(r['changed'] for r in again['containers']), again
        # Check mode with one change: only that container is reported, with its diff under its name; nothing changes.
        changed = [dict(c, env={'ROLE': 'web2'}) if c['name'] == 'st-web' else c for c in STACK]
        pids = {n: i['state']['pid'] for n, i in infos.items()}
        check = _converge(box, changed, check=True, diff=True, labels={'io.example.stack': 'st', 'tier': 'base'})
        assert check['_status'] == 'changed' and [r['name'] for r in check['containers'] if r['changed']] == ['st-web'], check
        assert {d['before_header'] for d in check['diff']} == {'st-db', 'st-web', 'st-tool'}
        assert {n: i['state']['pid'] for n, i in box.infos(list(pids)).items()} == pids
    finally:
        _remove(box, ['st-web', 'st-db', 'st-tool'])
    assert box.infos(['st-web', 'st-db', 'st-tool']) == {}


@pytest.mark.parametrize('containers, message', [
    ([{'name': 'bad-a', 'nosuch_option': 1}], 'containers[1] (bad-a): unsupported options: nosuch_option. Supported parameters include: annotations'),
    ([{'name': 'bad-a', 'stop_timeout': 'soon'}], 'containers[1] (bad-a): '),
    ([{'name': 'bad-a'}, {'name': 'bad-a'}], "'bad-a' is declared twice"),
    ([{'name': 'bad-a', 'depends_on': ['bad-b']}, {'name': 'bad-b', 'depends_on': ['bad-a']}], 'cycle: bad-a -> bad-b -> bad-a'),
    ([{'name': 'bad-a', 'depends_on': ['elsewhere']}], "'bad-a' depends on 'elsewhere', which is not declared"),
    ([{'image': 'busybox'}], 'containers[1] (no name): missing required arguments: name'),
])
def test_bad_input_fails_before_anything_is_done(box, containers, message):
    res = _converge(box, [{'name': 'bad-ok'}] + containers)
    assert res['_status'] in ('failed', 'ignored') and message in res['msg'], res
    assert box.infos(['bad-ok', 'bad-a', 'bad-b']) == {}  # not even the valid one was made


def test_a_failure_stops_what_depends_on_it_only(box):
    stack = [{'name': 'f-broken', 'image': 'nosuch-image', 'pull': 'never'}, {'name': 'f-needs', 'depends_on': ['f-broken']},
             {'name': 'f-fine'}]
    try:
        res = _converge(box, stack)
        assert res['_status'] in ('failed', 'ignored'), res
        assert res['msg'].startswith('failed to converge 2 of 3 containers: f-broken: failed to ') and \
            'f-needs: not converged: it depends on f-broken, which failed' in res['msg'], res
        by_name = {r['name']: r for r in res['containers']}
        assert by_name['f-fine']['changed'] and by_name['f-needs'].get('skipped') and by_name['f-broken']['failed']
        assert set(box.infos(['f-broken', 'f-needs', 'f-fine'])) == {'f-fine'}
    finally:
        _remove(box, ['f-fine'])


def test_prune_removes_only_undeclared_labelled_containers_first(box):
    """A stack loses a container: prune removes it (and only it: a container without the stack's label stays), in the
    same run, before the declared ones are converged, so the name and port it held are free; check mode predicts it."""
    stack = {'io.example.stack': 'pr'}
    first = [{'name': 'pr-db'}, {'name': 'pr-web', 'depends_on': ['pr-db']}, {'name': 'pr-keep'}]
    try:
        assert _converge(box, first, labels=stack)['_status'] == 'changed'
        assert _converge(box, [{'name': 'pr-other'}])['_status'] == 'changed'  # no stack label: made another way
        refused = _converge(box, [{'name': 'pr-keep'}], prune=True)
        assert refused['_status'] in ('failed', 'ignored') and refused['msg'].startswith('prune needs labels'), refused
        check = _converge(box, [{'name': 'pr-keep'}], labels=stack, prune=True, check=True, diff=True)
        assert check['_status'] == 'changed' and check['removed'] == ['pr-web', 'pr-db'], check  # dependent first
        assert set(box.infos(['pr-db', 'pr-web', 'pr-keep', 'pr-other'])) == {'pr-db', 'pr-web', 'pr-keep', 'pr-other'}
        # Only the prune step (the role's playbooks/prune.yml): pr-keep is declared, not converged (its new env waits).
        only = _converge(box, [{'name': 'pr-keep', 'env': {'NEW': '1'}}], labels=stack, prune=True, converge=False)
        assert only['_status'] == 'changed' and only['removed'] == ['pr-web', 'pr-db'] and only['containers'] == [], only
        infos = box.infos(['pr-db', 'pr-web', 'pr-keep', 'pr-other'])
        assert set(infos) == {'pr-keep', 'pr-other'} and 'NEW=1' not in infos['pr-keep']['config']['env'], infos
        # Prune and converge in one run.
        again = _converge(box, [{'name': 'pr-keep'}, {'name': 'pr-web', 'command': 'sleep 999'}], labels=stack, prune=True)
        assert again['_status'] == 'changed' and again['removed'] == [], again
        assert _converge(box, [{'name': 'pr-web', 'command': 'sleep 999'}], labels=stack, prune=True)['removed'] == ['pr-keep']
        assert set(box.infos(['pr-web', 'pr-keep', 'pr-other'])) == {'pr-web', 'pr-other'}
    finally:
        _remove(box, ['pr-db', 'pr-web', 'pr-keep', 'pr-other'])


def test_the_documented_ad_hoc_stack_runs_under_the_nsbox_supervisor(box):
    """Issue 20 item 1: depends_on was refused under the default supervisor (the module's own example failed, and ad hoc
    ended in 'An exception occurred ... (traceback unavailable)'); a refusal of a later item left a partial converge."""
    stack = [{'name': 't-db', 'image': 'busybox', 'command': 'sleep 300', 'stop_timeout': 0},
             {'name': 't-app', 'image': 'busybox', 'command': 'sleep 300', 'depends_on': ['t-db'], 'stop_timeout': 0}]
    try:
        res = box.ansible.adhoc('nsbox.runtime.containers', json.dumps({'containers': stack}))
        assert res.returncode == 0 and 'CHANGED' in res.stdout and 'exception' not in res.stdout.lower(), (res.stdout, res.stderr)
        infos = box.infos(['t-db', 't-app'])
        assert infos['t-app']['config']['depends_on'] == ['t-db'] and all(i['state']['running'] for i in infos.values())
        # A refusal found for the second item changes nothing for the first either (a new env would recreate t-db).
        bad = [dict(stack[0], env={'A': 'changed'}), dict(stack[1], enabled=False)]
        res = box.ansible.module('nsbox.runtime.containers', {'containers': bad})
        assert res['_status'] == 'failed' and res['msg'].startswith('refused, nothing changed: t-app: failed to use enabled'), res
        assert box.info('t-db')['id'] == infos['t-db']['id']
    finally:
        _remove(box, ['t-app', 't-db'])
