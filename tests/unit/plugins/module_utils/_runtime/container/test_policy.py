# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policy and healthcheck rules (pure logic; the real thing is in tests/integration/test_container_restart.py)."""
from __future__ import annotations

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import monitor, options, policy
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}


@pytest.mark.parametrize('policy_, retries, expected', [
    (None, None, {'name': 'no', 'max_retries': 0}),
    ('always', None, {'name': 'always', 'max_retries': 0}),
    ('unless-stopped', 0, {'name': 'unless-stopped', 'max_retries': 0}),
    ('on-failure', None, {'name': 'on-failure', 'max_retries': 0}),
    ('on-failure:3', None, {'name': 'on-failure', 'max_retries': 3}),
    ('on-failure', 5, {'name': 'on-failure', 'max_retries': 5}),
    ('on-failure:5', 5, {'name': 'on-failure', 'max_retries': 5}),
])
def test_restart_policy_forms(policy_, retries, expected):
    assert policy.parse_restart(policy_, retries) == expected


@pytest.mark.parametrize('policy_, retries, words', [
    ('sometimes', None, 'expected one of'),
    ('always:3', None, 'only on-failure takes a count'),
    ('on-failure:x', None, 'only on-failure takes a count'),
    ('always', 2, 'on-failure only'),
    (None, 2, 'give that too'),
    ('on-failure:3', 4, 'says 3 already'),
    ('on-failure', -1, '0 or more'),
])
def test_restart_policy_errors(policy_, retries, words):
    with pytest.raises(ConfigError) as err:
        policy.parse_restart(policy_, retries)
    assert words in str(err.value)


def test_who_restarts():
    on_failure = {'name': 'on-failure', 'max_retries': 2}
    assert not policy.should_restart(None, 1, 0, False)
    assert not policy.should_restart({'name': 'no', 'max_retries': 0}, 1, 0, False)
    assert policy.should_restart(on_failure, 1, 0, False) and policy.should_restart(on_failure, 1, 1, False)
    assert not policy.should_restart(on_failure, 1, 2, False)  # the third restart is one too many
    assert not policy.should_restart(on_failure, 0, 0, False)
    assert policy.should_restart(on_failure, None, 0, False)  # an unknown code is a failure
    assert policy.should_restart({'name': 'on-failure', 'max_retries': 0}, 137, 1000, False)
    for name in ('always', 'unless-stopped'):
        assert policy.should_restart({'name': name, 'max_retries': 0}, 0, 99, False)
        assert not policy.should_restart({'name': name, 'max_retries': 0}, 1, 0, True)  # a stop wins


def test_backoff_doubles_to_a_minute_and_resets_after_a_long_run():
    delays, delay = [], None
    for _step in range(12):
        delay = policy.backoff(delay, 0.5)
        delays.append(delay)
    assert delays[:4] == [0.1, 0.2, 0.4, 0.8] and delays[-1] == 60.0 and max(delays) == 60.0
    assert policy.backoff(60.0, 10.0) == 0.1


def test_systemd_mapping():
    assert policy.systemd_restart(None) == {'Restart': 'no'}
    unit = policy.systemd_restart({'name': 'on-failure', 'max_retries': 3})
    assert unit['Restart'] == 'on-failure' and unit['StartLimitBurst'] == '4'
    assert policy.systemd_restart({'name': 'unless-stopped', 'max_retries': 0})['Restart'] == 'always'


@pytest.mark.parametrize('text, seconds', [('30s', 30.0), ('1m30s', 90.0), ('500ms', 0.5), ('1h', 3600.0), (2, 2.0), ('1.5', 1.5),
                                           ('1m0.5s', 60.5)])
def test_durations(text, seconds):
    assert policy.parse_duration(text, 'x') == seconds


@pytest.mark.parametrize('text', ['', 'soon', '5 s', '-1s', '1x', True, '1s2', 's'])
def test_bad_durations(text):
    with pytest.raises(ConfigError):
        policy.parse_duration(text, 'x')


def test_healthcheck_forms_and_defaults():
    hc = policy.parse_healthcheck({'test': 'curl -f localhost'})
    assert hc == {'test': ['CMD-SHELL', 'curl -f localhost'], 'interval': 30.0, 'timeout': 30.0, 'start_period': 0.0, 'retries': 3}
    hc = policy.parse_healthcheck({'test': ['CMD', 'true'], 'interval': '1s', 'timeout': '500ms', 'retries': 1, 'start_period': '2s'})
    assert hc == {'test': ['CMD', 'true'], 'interval': 1.0, 'timeout': 0.5, 'start_period': 2.0, 'retries': 1}
    assert policy.parse_healthcheck({'test': ['NONE']}) is None
    assert policy.health_argv(['CMD-SHELL', 'a && b']) == ['/bin/sh', '-c', 'a && b']
    assert policy.health_argv(['CMD', 'true', 'x']) == ['true', 'x']


@pytest.mark.parametrize('value, words', [
    ({}, 'give test'), ({'test': []}, 'expected a command'), ({'test': ['CMD']}, 'a list starts with'),
    ({'test': ['NONE', 'x']}, 'takes nothing'), ({'test': 'true', 'retries': 0}, 'at least 1'),
    ({'test': 'true', 'interval': '0s'}, 'at least 1ms'), ({'test': 'true', 'every': '1s'}, 'unknown keys'),
    ({'test': ['CMD-SHELL', 'a', 'b']}, 'a list starts with'),
])
def test_healthcheck_errors(value, words):
    with pytest.raises(ConfigError) as err:
        policy.parse_healthcheck(value)
    assert words in str(err.value)


def test_image_healthcheck_is_the_default_and_none_disables_it():
    ic = {'Cmd': ['sh'], 'Healthcheck': {'Test': ['CMD-SHELL', 'true'], 'Interval': 5 * 10 ** 9, 'Retries': 2}}
    cfg = options.resolve('web', options.check({}), IMAGE, ic)
    assert cfg['healthcheck'] == {'test': ['CMD-SHELL', 'true'], 'interval': 5.0, 'timeout': 30.0, 'start_period': 0.0, 'retries': 2}
    assert options.resolve('web', options.check({'healthcheck': {'test': ['NONE']}}), IMAGE, ic)['healthcheck'] is None
    assert options.resolve('web', options.check({}), IMAGE, {'Cmd': ['sh']})['healthcheck'] is None


def test_restart_options_share_one_stored_field():
    a = options.resolve('web', options.check({'restart_policy': 'on-failure', 'restart_retries': 3}), IMAGE, {'Cmd': ['sh']})
    b = options.resolve('web', options.check({'restart_policy': 'on-failure:3'}), IMAGE, {'Cmd': ['sh']})
    assert a['restart_policy'] == b['restart_policy'] == {'name': 'on-failure', 'max_retries': 3}
    c = options.resolve('web', options.check({'restart_policy': 'always'}), IMAGE, {'Cmd': ['sh']})
    assert options.differences(a, c) == {'restart_policy': 'stored'}
    old = dict(a)
    del old['restart_policy'], old['healthcheck']  # stored before these existed: no difference, no recreate
    assert options.differences(old, options.resolve('web', options.check({}), IMAGE, {'Cmd': ['sh']})) == {}


def test_health_record_follows_dockers_rules():
    check = {'retries': 2, 'start_period': 5.0}
    h = policy.next_health(None, 1, 'no', 't0', 't1', True, check)
    assert h['status'] == 'starting' and h['failing_streak'] == 0  # in the start period: not counted
    h = policy.next_health(h, 0, 'ok', 't0', 't1', True, check)
    assert h['status'] == 'healthy' and len(h['log']) == 2
    h = policy.next_health(h, 1, 'x' * 5000, 't0', 't1', True, check)
    assert h['status'] == 'healthy' and h['failing_streak'] == 1 and len(h['log'][-1]['output']) == policy.HEALTH_OUTPUT_MAX
    h = policy.next_health(h, -1, 'timeout', 't0', 't1', False, check)
    assert h['status'] == 'unhealthy' and h['failing_streak'] == 2
    for _step in range(6):
        h = policy.next_health(h, 1, '', 't0', 't1', False, check)
    assert len(h['log']) == policy.HEALTH_LOG_ENTRIES
    assert policy.next_health(h, 0, '', 't0', 't1', False, check)['failing_streak'] == 0


def test_health_timer_one_check_at_a_time_interval_after_the_end():
    clock = [100.0]
    spawned = []
    timer = monitor.HealthTimer({'interval': 2.0, 'start_period': 3.0, 'timeout': 1.0}, lambda sp: spawned.append(sp) or 4242 + len(spawned),
                                clock=lambda: clock[0])
    timer.reap = lambda flags=0: None  # no real children here
    timer.tick()
    assert spawned == []
    clock[0] = 102.0
    timer.tick()
    assert spawned == [True] and timer.child == 4243
    clock[0] = 104.5
    timer.tick()
    assert spawned == [True]  # the first still runs
    assert timer.reaped(4243) and timer.due == 106.5
    clock[0] = 106.5
    timer.tick()
    assert spawned == [True, False]  # past the start period
