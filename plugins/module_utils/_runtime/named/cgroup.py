# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge one cgroup: the ``cgroup`` module's logic, and the host CLI's."""
from __future__ import annotations

import os

from ..errors import NsboxError
from ..cgroups.factory import for_config
from ..cgroups.layout import Layout
from ..errors import CgroupError
from ..cgroups.resources import TABLE, Resources, display

# The module's limit options: the resource table's rows (names and Ansible types written there once).
LIMITS = {row.name: row.argspec for row in TABLE}


def _describe(manager, resources):
    out = {'path': manager.path, 'driver': manager.driver, 'version': manager.version, 'dirs': manager.dirs(),
           'exists': manager.exists()}
    if out['exists']:
        out['resources'] = {k: display(k, v) for k, v in manager.read(resources).items() if v is not None}
        out['procs'] = manager.procs()
        out['stats'] = manager.stats()
    return out


def ensure(cfg, name, options=None, procs=None, state='present', parent=None, check_mode=False):
    """Make cgroup ``name`` exist with ``options`` (Docker-style limits) and ``procs`` in it, or be gone.

    Returns {'changed', 'actions', 'cgroup', 'diff'}. Options are parsed before anything is
    touched; a cgroup this call created is removed again if a later step fails.
    """
    resources = Resources.from_options(options)
    pids = [_pid(p) for p in procs or []]
    manager = for_config(cfg, name, parent, Layout.detect())
    existed = manager.exists()
    actions = []
    if state == 'absent':
        before = _describe(manager, resources) if existed else None
        if existed:
            actions.append('killed %d processes and removed cgroup %s' % (len(manager.procs()), manager.path))
            if not check_mode:
                manager.remove()
        return {'changed': existed, 'actions': actions, 'cgroup': _describe(manager, resources),
                'diff': {'before': {'path': manager.path, 'exists': existed, 'procs': (before or {}).get('procs', [])},
                         'after': {'path': manager.path, 'exists': False, 'procs': []}}}
    changes = manager.plan(resources)
    moving = [p for p in pids if not existed or p not in manager.procs()]
    if not existed:
        actions.append('created cgroup %s (%s)' % (manager.path, manager.version))
    actions += ['set %s: %s -> %s' % (k, display(k, b) if b is not None else None, display(k, a)) for k, (b, a) in sorted(changes.items())]
    actions += ['moved process %d in' % p for p in moving]
    if not check_mode and (actions or not existed):
        try:
            manager.apply(resources, changes)  # the plan above: the files are not read again
            manager.add_procs(moving)
        except NsboxError:
            if not existed:
                _undo(manager)
            raise
    after = _describe(manager, resources) if not check_mode else None
    before_values = {k: display(k, b) for k, (b, _a) in changes.items() if b is not None}
    after_values = {k: display(k, a) for k, (_b, a) in changes.items()}
    return {'changed': bool(actions), 'actions': actions,
            'cgroup': after or dict(path=manager.path, driver=manager.driver, version=manager.version, exists=existed),
            'diff': {'before': dict(before_values, path=manager.path, exists=existed),
                     'after': dict(after_values, path=manager.path, exists=True, procs_added=moving)}}


def _pid(value):
    try:
        pid = int(value)
    except (TypeError, ValueError):
        pid = 0
    if pid <= 0:
        raise CgroupError('use', 'procs', 'expected process IDs, not %r' % (value,))
    if not os.path.exists('/proc/%d' % pid):
        raise CgroupError('move', 'process %d' % pid, 'no such process')
    return pid


def _undo(manager):
    try:
        manager.remove()
    except NsboxError:
        pass
