#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: namespace
short_description: Create, persist and remove named Linux namespaces
version_added: 0.1.0
description:
  - Creates a set of Linux namespaces (any of mnt, uts, ipc, net, pid, user, cgroup, time) and
    persists each one as a bind mount of C(/proc/<pid>/ns/<type>) on a file in
    C(<state_dir>/ns/<name>/), as C(ip netns add) does, so they live on without a process
    in them and can be joined later (C(nsenter --net=<file>)).
  - C(<state_dir>/ns) is made a mount point with private propagation, which a persisted mount
    namespace requires.
  - A pid namespace ends with its pid 1, so a persisted one gets a holder process, a tiny
    pause process that is pid 1 inside it and reaps orphans there. It is recorded with its
    pid, start time and boot id, so a dead holder (or a reused pid) is seen and replaced.
  - The namespaces are created in a forked child; the module's own process never changes
    namespace. Idempotent by reading back what is persisted and alive (mount table, inodes,
    the holder's process, the user namespace's maps).
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Reads the persisted namespaces and predicts the changes; creates, mounts and kills nothing.
  diff_mode:
    support: full
    description: Shows the types and their inodes (and the user namespace's maps) before and after.
options:
  name:
    description: The name of the set; its files are C(<state_dir>/ns/<name>/<type>). Letters, digits, C(_.-), at most 63.
    type: str
    required: true
  types:
    description:
      - The namespace types the set has. Required with O(state=present).
      - Types that exist and are alive are kept as they are (same inode); types not listed are removed.
      - A user namespace owns the namespaces created with it. Types added to a set that has a
        user namespace are created inside it; a user namespace cannot be added to a set that
        already has other types.
    type: list
    elements: str
    choices: [mnt, uts, ipc, net, pid, user, cgroup, time]
  state:
    description: V(present) creates what is missing; V(absent) unmounts and deletes every file of the set and ends its holder.
    type: str
    choices: [present, absent]
    default: present
  uid_map:
    description:
      - The uid map of a new user namespace (needs V(user) in O(types)); ranges may not overlap.
      - A map is written once, when the user namespace is made; a different map for an existing
        one fails (remove the set first). Omitted, the map is neither written nor checked.
    type: list
    elements: dict
    suboptions:
      container_id:
        description: First id inside the namespace.
        type: int
        required: true
      host_id:
        description: The id it maps to on the host.
        type: int
        required: true
      size:
        description: How many consecutive ids.
        type: int
        required: true
  gid_map:
    description: The gid map of a new user namespace, as O(uid_map).
    type: list
    elements: dict
    suboptions:
      container_id:
        description: First id inside the namespace.
        type: int
        required: true
      host_id:
        description: The id it maps to on the host.
        type: int
        required: true
      size:
        description: How many consecutive ids.
        type: int
        required: true
  loopback_up:
    description:
      - Bring the loopback interface of the net namespace up (needs V(net) in O(types)).
      - V(false) leaves it as it is (a new net namespace's C(lo) is down).
    type: bool
    default: false
requirements:
  - pyroute2 (Debian C(python3-pyroute2)) on the managed host, for O(loopback_up) only.
notes:
  - Namespaces persisted in C(/run) are gone after a reboot, as are the holders.
'''

EXAMPLES = r'''
- name: A network namespace with its loopback up
  nsbox.runtime.namespace:
    name: sandbox
    types: [net, uts, ipc]
    loopback_up: true

- name: A user namespace mapping 65536 ids, with a pid namespace inside it
  nsbox.runtime.namespace:
    name: rootless
    types: [user, pid, mnt]
    uid_map: [{container_id: 0, host_id: 100000, size: 65536}]
    gid_map: [{container_id: 0, host_id: 100000, size: 65536}]

- name: Gone, with its holder process
  nsbox.runtime.namespace:
    name: sandbox
    state: absent
'''

RETURN = r'''
namespace:
  description: The set after the task (in check mode, as predicted; a new type's inode is C((new))).
  returned: always
  type: dict
  sample:
    name: sandbox
    path: /run/nsbox/ns/sandbox
    exists: true
    types:
      net: {path: /run/nsbox/ns/sandbox/net, inode: 4026532290, loopback_up: true}
      pid: {path: /run/nsbox/ns/sandbox/pid, inode: 4026532288}
    holder: {pid: 4242, start_time: 2249221}
    uid_map: [{container_id: 0, host_id: 100000, size: 65536}]
    gid_map: [{container_id: 0, host_id: 100000, size: 65536}]
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: ['created namespaces net, pid of sandbox with a holder process (pid 1 of its pid namespace)']
'''

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, finish, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.kernel import idmap, namespaces
from ..module_utils._runtime.named import namespace

_MAP = {'type': 'list', 'elements': 'dict', 'options': {k: {'type': 'int', 'required': True} for k in idmap.MAP_FIELDS}}


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS, name={'type': 'str', 'required': True},
                           types={'type': 'list', 'elements': 'str', 'choices': list(namespaces.TYPES)},
                           state={'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
                           uid_map=_MAP, gid_map=_MAP, loopback_up={'type': 'bool', 'default': False}),
        required_if=[('state', 'present', ['types'])],
        supports_check_mode=True,
    )
    p = module.params
    result = {'changed': False, 'actions': [], 'namespace': None}
    if p['state'] == 'present' and p['loopback_up'] and not namespaces.have_pyroute2():
        module.fail_json(msg=missing_required_lib('pyroute2', reason='to bring up lo (loopback_up)'), **result)
    try:
        namespaces.validate_name(p['name'])
        if p['state'] == 'present':  # every option checked before anything is written, the library included
            namespace.check_options(p['types'], p['uid_map'], p['gid_map'], p['loopback_up'])
        cfg = host_config(module)
        lib = ensure_library(module)
        out = namespace.ensure(cfg, p['name'], types=p['types'], state=p['state'], uid_map=p['uid_map'],
                               gid_map=p['gid_map'], loopback_up=p['loopback_up'], check_mode=module.check_mode)
    except NsboxError as exc:
        fail(module, exc, **result)
    finish(module, result, out, lib)


if __name__ == '__main__':
    main()
