# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Restart policy and healthcheck: their parsing and the rules the supervisor follows.

Pure functions only (no I/O): the supervisor's monitor imports this after a container ended.

Restart policy as Docker's: ``no``; ``on-failure[:N]`` (a non-zero or unknown exit code, at most N
restarts when N > 0); ``always``; ``unless-stopped`` (as always, but a container that was stopped
stays stopped when the host comes back). A stop asked for (the module's ``state: stopped``, a
remove) is never undone by the policy. Between a failure and its restart the supervisor waits:
100 ms, doubled each time, at most one minute; back to 100 ms once a run lasted 10 s.
"""
from __future__ import annotations

import math
import re

from ..errors import ConfigError

RESTART_NAMES = ('no', 'on-failure', 'always', 'unless-stopped')
NO_RESTART = {'name': 'no', 'max_retries': 0}
BACKOFF_FIRST = 0.1
BACKOFF_MAX = 60.0
BACKOFF_RESET_AFTER = 10.0  # a run this long (seconds) starts the back-off afresh
# Docker's defaults (seconds; retries a count) for what a healthcheck leaves out.
HEALTH_DEFAULTS = {'interval': 30.0, 'timeout': 30.0, 'start_period': 0.0, 'retries': 3}
HEALTH_KEYS = ('test', 'interval', 'timeout', 'start_period', 'retries')
HEALTH_LOG_ENTRIES = 5
HEALTH_OUTPUT_MAX = 4096
_DURATION_RE = re.compile(r'(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)')
_UNIT_SECONDS = {'ns': 1e-9, 'us': 1e-6, 'µs': 1e-6, 'ms': 1e-3, 's': 1.0, 'm': 60.0, 'h': 3600.0}


def parse_restart(policy, retries=None):
    """``restart_policy`` (``on-failure:3`` allowed) and ``restart_retries`` -> {'name', 'max_retries'}."""
    if policy is None:
        if retries:
            raise ConfigError('use', 'restart_retries', 'it counts the restarts of restart_policy on-failure: give that too')
        return dict(NO_RESTART)
    text = str(policy).strip()
    name, sep, count = text.partition(':')
    if name not in RESTART_NAMES:
        raise ConfigError('use', 'restart_policy %r' % (policy,), 'expected one of %s (on-failure:N with a count)' % ', '.join(RESTART_NAMES))
    max_retries = 0
    if sep:
        if name != 'on-failure' or not count.isdigit():
            raise ConfigError('use', 'restart_policy %r' % (policy,), 'only on-failure takes a count, as on-failure:3')
        max_retries = int(count)
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ConfigError('use', 'restart_retries %r' % (retries,), 'expected a whole number, 0 or more (0: no limit)')
        if retries and name != 'on-failure':
            raise ConfigError('use', 'restart_retries', 'a maximum count goes with restart_policy on-failure only, not %s' % name)
        if sep and retries != max_retries:
            raise ConfigError('use', 'restart_retries', 'restart_policy %s says %d already' % (text, max_retries))
        max_retries = retries
    return {'name': name, 'max_retries': max_retries}


def should_restart(policy, exit_code, restart_count, stop_requested):
    """Whether the supervisor starts the container again after it ended with ``exit_code`` (None: unknown)."""
    policy = policy or NO_RESTART
    if stop_requested or policy['name'] == 'no':
        return False
    if policy['name'] == 'on-failure':
        if exit_code == 0:
            return False
        return not policy.get('max_retries') or restart_count < policy['max_retries']
    return True


def backoff(previous_delay, ran_seconds):
    """The wait before the next restart, given the last one (None: none yet) and how long the run lasted."""
    if previous_delay is None or ran_seconds >= BACKOFF_RESET_AFTER:
        return BACKOFF_FIRST
    return min(previous_delay * 2, BACKOFF_MAX)


def systemd_restart(policy):
    """The unit directives for a restart policy (DESIGN D2: under systemd, systemd restarts).

    ``on-failure:N`` restarts at most N times: StartLimitBurst counts starts, so N + 1 over an
    interval long enough to hold them. ``unless-stopped`` is ``always`` to systemd: a stop through
    systemctl is never undone, and whether the unit starts at boot is its enablement.
    """
    policy = policy or NO_RESTART
    if policy['name'] == 'no':
        return {'Restart': 'no'}
    out = {'Restart': 'on-failure' if policy['name'] == 'on-failure' else 'always', 'RestartSec': '100ms',
           'RestartSteps': '10', 'RestartMaxDelaySec': '60s'}
    if policy['name'] == 'on-failure' and policy.get('max_retries'):
        out.update(StartLimitBurst=str(policy['max_retries'] + 1), StartLimitIntervalSec='infinity')
    return out


# -- healthcheck --------------------------------------------------------------------------------
def parse_duration(value, what):
    """Seconds from ``30s``, ``1m30s``, ``500ms`` (Go's durations, as Docker reads them) or a number of seconds."""
    if isinstance(value, bool):
        raise ConfigError('use', what, 'expected a duration such as 30s, 1m30s or 500ms, not %r' % (value,))
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        text = str(value).strip()
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _DURATION_RE.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise ConfigError('use', what, 'expected a duration such as 30s, 1m30s or 500ms, not %r' % (value,)) from None
    if math.isnan(seconds) or seconds < 0 or seconds > 86400 * 365:
        raise ConfigError('use', what, 'expected a duration of 0 or more, not %r' % (value,))
    return round(seconds, 6)


def _test(value):
    """Docker's forms: a string (run by /bin/sh -c), [CMD, args...], [CMD-SHELL, command], [NONE]."""
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError('use', 'healthcheck test', 'give the command to run')
        return ['CMD-SHELL', value]
    if not isinstance(value, (list, tuple)) or not value or not all(isinstance(a, (str, int, float)) and not isinstance(a, bool) for a in value):
        raise ConfigError('use', 'healthcheck test', 'expected a command string or a list such as [CMD, curl, -f, http://localhost/], not %r' % (value,))
    value = [str(a) for a in value]
    kind = value[0].upper()
    if kind == 'NONE':
        if len(value) != 1:
            raise ConfigError('use', 'healthcheck test', '[NONE] takes nothing after it')
        return ['NONE']
    if kind == 'CMD' and len(value) > 1:
        return ['CMD'] + value[1:]
    if kind == 'CMD-SHELL' and len(value) == 2 and value[1].strip():
        return ['CMD-SHELL', value[1]]
    raise ConfigError('use', 'healthcheck test', 'a list starts with CMD (then the command and its arguments), CMD-SHELL '
                                                 '(then one shell command) or NONE, not %r' % (value,))


def parse_healthcheck(value):
    """The ``healthcheck`` option -> its stored form ({test, interval, timeout, start_period, retries}; None: disabled)."""
    if not isinstance(value, dict):
        raise ConfigError('use', 'healthcheck', 'expected a dict with test and, optionally, interval, timeout, start_period, retries')
    unknown = set(value) - set(HEALTH_KEYS)
    if unknown:
        raise ConfigError('use', 'healthcheck', 'unknown keys %s (known: %s)' % (', '.join(sorted(unknown)), ', '.join(HEALTH_KEYS)))
    if value.get('test') is None:
        raise ConfigError('use', 'healthcheck', 'give test: the command, or [NONE] to disable the image\'s healthcheck')
    test = _test(value['test'])
    if test == ['NONE']:
        return None
    out = {'test': test}
    for key in ('interval', 'timeout', 'start_period'):
        given = value.get(key)
        out[key] = HEALTH_DEFAULTS[key] if given is None else parse_duration(given, 'healthcheck %s' % key)
    for key in ('interval', 'timeout'):
        if out[key] < 0.001:
            raise ConfigError('use', 'healthcheck %s' % key, 'at least 1ms, not %r' % (value.get(key),))
    retries = value.get('retries')
    if retries is None:
        retries = HEALTH_DEFAULTS['retries']
    if isinstance(retries, bool) or not str(retries).isdigit() or int(retries) < 1:
        raise ConfigError('use', 'healthcheck retries', 'expected a whole number of at least 1, not %r' % (retries,))
    out['retries'] = int(retries)
    return out


def healthcheck_from_image(image_config):
    """The image config's ``Healthcheck`` (durations in nanoseconds, 0 = default) -> the stored form, or None."""
    hc = (image_config or {}).get('Healthcheck') or {}
    test = hc.get('Test') or []
    if not test or str(test[0]).upper() == 'NONE':
        return None
    try:
        parsed = _test(list(test))
    except ConfigError:
        return None
    out = {'test': parsed}
    for key, src in (('interval', 'Interval'), ('timeout', 'Timeout'), ('start_period', 'StartPeriod')):
        ns = hc.get(src) or 0
        out[key] = round(ns / 1e9, 6) if ns else HEALTH_DEFAULTS[key]
    out['retries'] = int(hc.get('Retries') or HEALTH_DEFAULTS['retries'])
    return out


def health_argv(test):
    """The command a stored test runs (CMD-SHELL through the container's /bin/sh, as Docker)."""
    return ['/bin/sh', '-c', test[1]] if test[0] == 'CMD-SHELL' else list(test[1:])


def next_health(health, exit_code, output, start, end, in_start_period, check):
    """The health record after one check ({status, failing_streak, log}); Docker's rules.

    A success makes it healthy. A failure during the start period does not count (the status
    stays ``starting``); after it, ``retries`` failures in a row make it unhealthy.
    """
    health = dict(health or {'status': 'starting', 'failing_streak': 0, 'log': []})
    entry = {'start': start, 'end': end, 'exit_code': exit_code, 'output': output[:HEALTH_OUTPUT_MAX]}
    health['log'] = (list(health.get('log') or []) + [entry])[-HEALTH_LOG_ENTRIES:]
    if exit_code == 0:
        health['status'] = 'healthy'
        health['failing_streak'] = 0
    elif in_start_period and health.get('status') != 'healthy':
        pass  # start period: failures do not count yet
    else:
        health['failing_streak'] = int(health.get('failing_streak') or 0) + 1
        if health['failing_streak'] >= check['retries']:
            health['status'] = 'unhealthy'
    return health
