# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's health: one check (``nsbox healthcheck ID``, a child of the supervisor's monitor)
and the record it keeps, ``<data_root>/containers/<id>/health.json``.

The record is Docker's: ``status`` (starting, healthy, unhealthy), ``failing_streak`` and the
last five results (start, end, exit code, output). Each start of the container begins it afresh
(``starting``); only the check, one at a time, writes it afterwards.
"""
from __future__ import annotations

import os

from ..errors import NsboxError
from ..kernel.fsutil import read_json, write_json
from . import policy
from .execute import ExecTimeout, exec_in
from .store import ContainerStore, now

SCHEMA = 1
TIMEOUT_CODE = -1  # Docker's exit code for a check that ran out of time or could not run


def path_of(container):
    return container.path('health.json')


def read(container):
    """The health record, or None when the container has no healthcheck or never ran."""
    if not container.config.get('healthcheck'):
        return None
    data = read_json(path_of(container), 'the health of container %s' % container.name, SCHEMA)
    if not data:
        return None
    data.pop('schema_version', None)
    return data


def reset(container):
    """At each start: ``starting`` with an empty log (or no record without a healthcheck)."""
    if container.config.get('healthcheck'):
        write_json(path_of(container), {'schema_version': SCHEMA, 'status': 'starting', 'failing_streak': 0, 'log': []}, 0o600)
    else:
        try:
            os.unlink(path_of(container))
        except FileNotFoundError:
            pass


def run_check(cfg, container_id, in_start_period):
    """Run the check once inside the running container and record its result; returns the new record."""
    container = ContainerStore(cfg).find(container_id)
    if container is None or not container.config.get('healthcheck'):
        return None
    check = container.config['healthcheck']
    start = now()
    try:
        out = exec_in(cfg, container.id, policy.health_argv(check['test']), timeout=check['timeout'])
        code, output = out['rc'], out['stdout'] + out['stderr']
    except ExecTimeout:
        code, output = TIMEOUT_CODE, 'Health check exceeded timeout (%gs)' % check['timeout']
    except NsboxError as exc:
        code, output = TIMEOUT_CODE, exc.message
    if not container.status()['running']:
        return None  # ended meanwhile: the next start begins a fresh record
    record = policy.next_health(read(container), code, output, start, now(), in_start_period, check)
    write_json(path_of(container), dict(record, schema_version=SCHEMA), 0o600)
    return record
