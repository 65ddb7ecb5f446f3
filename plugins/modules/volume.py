#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: volume
short_description: Create and remove named volumes (no daemon)
version_added: 0.1.0
description:
  - Named volumes as Docker's C(local) driver keeps them, under the data-root
    (C(<data_root>/volumes/<name>/_data), with the volume's record in C(volume.json) beside it).
    Containers mount them with M(nsbox.runtime.container)'s O(nsbox.runtime.container#module:mounts)
    (C(type=volume)) or O(nsbox.runtime.container#module:volumes) (V(NAME:/path)).
  - A volume that a container uses, whatever that container's state, is never removed or recreated
    (as Docker refuses it); the error names the containers. Removing a container keeps its volumes.
  - Creation and removal are atomic (a volume is made whole beside the others and renamed into
    place, removed by a rename out of sight first); what an interrupted run left is cleaned up by the next.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Predicts creation, label updates, recreation and removal (and the refusal of an in-use volume); writes nothing.
  diff_mode:
    support: full
    description: Whether the volume exists, its driver and labels, before and after.
options:
  name:
    description: The volume's name, 2-255 characters of V([a-zA-Z0-9_.-]) starting with a letter or digit (Docker's rule).
    type: str
    required: true
  state:
    description: V(present) the volume exists; V(absent) it is removed with its data (refused while a container uses it).
    type: str
    choices: [present, absent]
    default: present
  driver:
    description: The volume driver; this version has Docker's V(local) driver only (a directory under the data-root).
    type: str
    choices: [local]
    default: local
  driver_options:
    description:
      - Options of the driver. The C(local) driver's C(type), C(device) and C(o) (e.g. a tmpfs volume) are not supported in
        this version; giving any fails the task with nothing changed, rather than ignoring them.
    type: dict
  labels:
    description:
      - The volume's labels, the exact set. Not given, an existing volume's labels stay as they are.
      - Different labels are updated in place (the data stays; Docker cannot do this, the record here can),
        unless O(recreate=options-changed).
    type: dict
  recreate:
    description:
      - V(never) (default) never recreates; different labels are updated in place.
      - V(options-changed) recreates the volume (its data is lost) when its labels or driver differ, as
        community.docker's docker_volume does.
      - V(always) recreates it on every run (its data is lost).
      - A volume in use by a container is never recreated (the task fails).
    type: str
    choices: [never, options-changed, always]
    default: never
'''

EXAMPLES = r'''
- name: A volume for a database
  nsbox.runtime.volume:
    name: pgdata
    labels:
      app: db

- name: A container using it (first use copies the image's content at /var/lib/postgresql/data in)
  nsbox.runtime.container:
    name: db
    image: registry.lan:5000/postgres:16
    volumes:
      - pgdata:/var/lib/postgresql/data

- name: Remove it (fails while a container uses it)
  nsbox.runtime.volume:
    name: pgdata
    state: absent
'''

RETURN = r'''
volume:
  description: The volume after the task, as Docker's C(volume inspect) shows it, plus C(UsedBy) (none after O(state=absent)).
  returned: success
  type: dict
  sample:
    Name: pgdata
    Driver: local
    Mountpoint: /var/lib/nsbox/volumes/pgdata/_data
    Labels: {app: db}
    Options: {}
    Scope: local
    CreatedAt: '2026-11-23T04:10:00Z'
    UsedBy: [db]
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: ['created volume pgdata']
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, finish, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.usage import References
from ..module_utils._runtime.volume import volumes


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS, name={'type': 'str', 'required': True},
                           state={'type': 'str', 'default': 'present', 'choices': list(volumes.STATES)},
                           driver={'type': 'str', 'default': 'local', 'choices': ['local']},
                           driver_options={'type': 'dict'}, labels={'type': 'dict'},
                           recreate={'type': 'str', 'default': 'never', 'choices': list(volumes.RECREATE)}),
        supports_check_mode=True,
    )
    p = module.params
    result = {'changed': False, 'actions': [], 'volume': None}
    try:
        cfg = host_config(module)
        lib = ensure_library(module)
        out = volumes.ensure(cfg, p['name'], state=p['state'], driver=p['driver'], labels=p['labels'],
                             driver_options=p['driver_options'], recreate=p['recreate'], check_mode=module.check_mode, refs=References(cfg))
    except NsboxError as exc:
        fail(module, exc, **result)
    finish(module, result, out, lib)


if __name__ == '__main__':
    main()
