#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: containers
short_description: Converge a list of declared containers in one task, dependencies first
version_added: 0.1.0
description:
  - Takes a whole host's containers, as a compose file declares them, and converges each one exactly
    as M(nsbox.runtime.container) does (the same options, the same library, the same idempotence), in
    an order where every container comes after those it names in C(depends_on) and in the declared
    order otherwise.
  - One task for all of them, so Ansible starts one module run per host instead of one per container,
    which is what a converge of many containers spends its time on when nothing changes.
  - Every item is validated before anything is done (unknown options, wrong types, duplicate names,
    a dependency cycle or an undeclared dependency fail the task with nothing changed). A container
    that fails is reported and the others are still converged, except those that depend on it; the
    task then fails, naming each failure.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Each container's prediction, as M(nsbox.runtime.container) makes it.
  diff_mode:
    support: full
    description: Each container's config and status before and after, under its name.
options:
  containers:
    description:
      - The containers, each a dict of the options of M(nsbox.runtime.container) (O(ignore:name) required;
        O(ignore:state), O(ignore:recreate), O(ignore:force_kill), O(ignore:pull), O(ignore:comparisons),
        O(ignore:healthy_wait_timeout) and every container setting). O(data_root) is this task's.
      - An item's C(depends_on) must name containers of this list.
    type: list
    elements: dict
    required: true
  defaults:
    description:
      - Options every container takes unless it sets them itself, for example O(ignore:state) and O(ignore:supervisor).
    type: dict
    default: {}
  labels:
    description:
      - Labels added to every container; a container's own label of the same name wins. Marks the containers
        a play manages (the containers role prunes by such a label).
    type: dict
    default: {}
  prune:
    description:
      - Remove the containers on the host that carry every one of O(labels) but are not in O(containers) (a container
        dropped from the list), before the declared ones are converged, so a name, a published port or a volume it
        held is free for them. Containers without those labels (made by hand, by another play) are never touched.
      - Needs O(labels) (without it every container on the host would be a candidate).
    type: bool
    default: false
  converge:
    description:
      - V(false) only prunes (with O(prune)). O(containers) then only names the containers to keep, which are
        validated but neither created, started nor changed.
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: The host's containers, one task
  nsbox.runtime.containers:
    defaults:
      restart_policy: always
    labels:
      io.example.stack: web
    containers:
      - name: db
        image: docker.io/library/postgres:16
        env: {POSTGRES_PASSWORD: example}
      - name: web
        image: docker.io/library/nginx:1.27
        published_ports: ["8080:80"]
        depends_on: [db]

- name: The same stack, without the worker any more (removed, as it carries the stack's label)
  nsbox.runtime.containers:
    labels:
      io.example.stack: web
    prune: true
    containers: "{{ stack_containers }}"
'''

RETURN = r'''
containers:
  description: Each container's result in the order they were converged (the fields of M(nsbox.runtime.container)'s result).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: db, changed: false, actions: [], container: {name: db, state: {status: running}}}
    - {name: web, changed: true, actions: [started container web], container: {name: web, state: {status: running}}}
    - {name: worker, failed: true, msg: 'failed to create container worker: ...'}
removed:
  description: The containers O(prune) removed (or in check mode would remove).
  returned: always
  type: list
  elements: str
  sample: [worker]
actions:
  description: What was (or in check mode would be) done, each prefixed with its container's name.
  returned: always
  type: list
  elements: str
  sample: ['web: started container web']
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.errors import UnsupportedError

from ..module_utils.common import COMMON_ARGS, ensure_library, host_config
from ..module_utils.container_task import argument_spec, check, ensure
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.container import info as container_info, order


def _validated(module, spec):
    """Every item with the defaults and labels applied, checked against the container module's options."""
    p = module.params
    validator = ArgumentSpecValidator(spec)
    items = []
    for index, raw in enumerate(p['containers']):
        merged = dict(p['defaults'], **raw)
        if p['labels']:
            merged['labels'] = dict(p['labels'], **(merged.get('labels') or {}))
        res = validator.validate(merged)
        if res.error_messages:
            why = ['unsupported options: %s' % e if isinstance(e, UnsupportedError) else str(e) for e in res.errors]
            module.fail_json(msg='containers[%d] (%s): %s' % (index, raw.get('name', 'no name'), '; '.join(why)))
        module.no_log_values.update(res._no_log_values)  # pylint: disable=protected-access
        items.append(res.validated_parameters)
    try:
        return order.depends_order(items)
    except NsboxError as exc:
        module.fail_json(msg=exc.message, error=exc.to_dict())
    return None  # not reached


def _diff(name, diff):
    """A container's diff entries, headed by its name."""
    out = []
    for entry in diff if isinstance(diff, list) else [diff]:
        entry = dict(entry)
        entry.setdefault('before_header', name)
        entry.setdefault('after_header', name)
        out.append(entry)
    return out


def _prune(module, cfg, declared, spec):
    """Remove the labelled containers that are not declared: (their names, actions, diffs, {name: why} of failures)."""
    validator = ArgumentSpecValidator(spec)
    removed, actions, diffs, failed = [], [], [], {}
    stale = [c for c in container_info.labelled(cfg, module.params['labels']) if c['name'] not in declared]
    names = {c['name'] for c in stale}
    try:  # those that depend on others first (only the stale ones count: a declared one stays)
        stale = order.depends_order([{'name': c['name'], 'depends_on': [d for d in c['depends_on'] if d in names]}
                                     for c in stale])[::-1]
    except NsboxError:
        pass  # a cycle among containers made one by one: by name, then
    for name in [c['name'] for c in stale]:
        try:
            out = ensure(cfg, validator.validate({'name': name, 'state': 'absent'}).validated_parameters, module.check_mode)
        except NsboxError as exc:
            failed[name] = 'not removed (prune): %s' % exc.message
            continue
        removed.append(name)
        actions += ['%s: %s' % (name, action) for action in out['actions']]
        diffs += _diff(name, out['diff'])
    return removed, actions, diffs, failed


def main():
    module = AnsibleModule(argument_spec=dict(COMMON_ARGS, containers={'type': 'list', 'elements': 'dict', 'required': True},
                                              defaults={'type': 'dict', 'default': {}}, labels={'type': 'dict', 'default': {}},
                                              prune={'type': 'bool', 'default': False}, converge={'type': 'bool', 'default': True}),
                           supports_check_mode=True)
    if module.params['prune'] and not module.params['labels']:
        module.fail_json(msg='prune needs labels: it removes only the undeclared containers that carry all of them')
    spec = argument_spec()
    items = _validated(module, spec)
    results, actions, diffs, failed, removed = [], [], [], {}, []  # failed: by name, prune's too
    try:
        cfg = host_config(module)
        lib = ensure_library(module)
    except NsboxError as exc:
        module.fail_json(msg=exc.message, error=exc.to_dict(), changed=False, containers=[], actions=[], removed=[])
    refused = []  # every item checked before anything is changed: a refusal found late would leave a partial converge
    for params in items if module.params['converge'] else []:
        try:
            check(cfg, params)
        except NsboxError as exc:
            refused.append('%s: %s' % (params['name'], exc.message))
    if refused:
        module.fail_json(msg='refused, nothing changed: %s' % '; '.join(refused), changed=False, containers=[], actions=[], removed=[])
    if module.params['prune']:
        removed, actions, diffs, failed = _prune(module, cfg, {params['name'] for params in items}, spec)
    candidates = len(removed) + len(failed)
    for params in items if module.params['converge'] else []:
        name = params['name']
        blocked = [d for d in params.get('depends_on') or [] if d in failed]
        if blocked:
            failed[name] = 'not converged: it depends on %s, which failed' % ', '.join(blocked)
            results.append({'name': name, 'failed': True, 'skipped': True, 'msg': failed[name]})
            continue
        try:
            out = ensure(cfg, params, module.check_mode)
        except NsboxError as exc:
            failed[name] = exc.message
            results.append({'name': name, 'failed': True, 'msg': exc.message, 'error': exc.to_dict()})
            continue
        diffs += _diff(name, out.pop('diff'))
        for warning in out.pop('warnings', None) or ():
            module.warn('%s: %s' % (name, warning))
        actions += ['%s: %s' % (name, action) for action in out['actions']]
        results.append(dict(out, name=name))
    result = {'changed': lib['changed'] or bool(removed) or any(r.get('changed') for r in results), 'containers': results,
              'actions': actions, 'removed': removed}
    if module._diff:  # pylint: disable=protected-access
        result['diff'] = diffs
    if failed:
        total = (len(items) if module.params['converge'] else 0) + candidates
        module.fail_json(msg='failed to converge %d of %d containers: %s' % (len(failed), total, '; '.join(
            '%s: %s' % (name, why) for name, why in failed.items())), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
