#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: cgroup
short_description: Manage a cgroup with resource limits (cgroup v1, v2 and hybrid hosts)
version_added: 0.1.0
description:
  - Creates, updates and removes a cgroup under the runtime's cgroup parent, with limits given in
    Docker's names and units (V(512m) of O(memory), V(1.5) O(cpus)).
  - Limits are read back from the kernel and only those that differ are written. Changing a limit of a
    cgroup that holds processes updates it in place; the processes stay.
  - On hybrid hosts (v1 controllers plus a cgroup2 tree) every controller is v1, as runc does it, and
    the cgroup2 tree is joined too. On cgroup v2, controllers are enabled down the path through
    C(cgroup.subtree_control); device rules become an eBPF cgroup-device program.
  - O(state=absent) kills every process in the cgroup (and its children) and removes it.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Reads the cgroup's files and predicts every write; nothing is created, written or killed.
  diff_mode:
    support: full
    description: Shows each setting that changes (before and after), and processes moved in.
options:
  name:
    description: The cgroup's path below O(parent), e.g. V(web) or V(pods/web).
    type: str
    required: true
  parent:
    description:
      - The parent cgroup. Default from the host configuration's C(cgroup_parent), else V(/nsbox)
        (cgroupfs driver) or V(nsbox.slice) (systemd driver).
    type: str
  state:
    description: Whether the cgroup exists.
    type: str
    choices: [present, absent]
    default: present
  memory:
    description: Memory limit (V(512m), V(1g), bytes). V(-1) lifts it. At least V(6m).
    type: str
  memory_reservation:
    description: Soft limit (v1 C(memory.soft_limit_in_bytes), v2 C(memory.low)).
    type: str
  memory_swap:
    description: Memory plus swap, as Docker's C(--memory-swap); V(-1) for unlimited swap. Needs O(memory).
    type: str
  cpu_shares:
    description: Relative CPU weight (2-262144, default 1024); converted to C(cpu.weight) on v2 as runc does.
    type: int
  cpus:
    description: CPUs the cgroup may use (V(0.5), V(1.5)), as a CFS quota of O(cpu_period).
    type: float
  cpu_period:
    description: CFS period in microseconds (1000-1000000, default 100000).
    type: int
  cpuset_cpus:
    description: CPUs allowed, e.g. V(0-1,3).
    type: str
  cpuset_mems:
    description: Memory nodes allowed, e.g. V(0).
    type: str
  pids_limit:
    description: Maximum number of processes; V(-1) or V(0) for no limit.
    type: int
  blkio_weight:
    description: Relative block I/O weight (10-1000); C(io.weight) on v2. Needs an I/O scheduler that has weights.
    type: int
  device_read_bps:
    description: Read rate limits per block device.
    type: list
    elements: dict
    suboptions:
      path:
        description: A block device path (or V(MAJOR:MINOR)).
        type: str
        required: true
      rate:
        description: Bytes per second (V(10m)).
        type: str
        required: true
  device_write_bps:
    description: Write rate limits per block device, as O(device_read_bps).
    type: list
    elements: dict
    suboptions:
      path:
        description: A block device path (or V(MAJOR:MINOR)).
        type: str
        required: true
      rate:
        description: Bytes per second.
        type: str
        required: true
  device_read_iops:
    description: Read operations per second per block device.
    type: list
    elements: dict
    suboptions:
      path:
        description: A block device path (or V(MAJOR:MINOR)).
        type: str
        required: true
      rate:
        description: Operations per second.
        type: int
        required: true
  device_write_iops:
    description: Write operations per second per block device.
    type: list
    elements: dict
    suboptions:
      path:
        description: A block device path (or V(MAJOR:MINOR)).
        type: str
        required: true
      rate:
        description: Operations per second.
        type: int
        required: true
  devices:
    description:
      - Device access allowed to the cgroup, in Docker's C(--device-cgroup-rule) form (V(c 1:3 rwm), V(b 8:* r));
        everything else is denied. Leave out to not manage devices.
    type: list
    elements: str
  frozen:
    description: Freeze (true) or thaw (false) every process in the cgroup.
    type: bool
  procs:
    description: Process IDs to move into the cgroup (those already in it are left alone).
    type: list
    elements: int
'''

EXAMPLES = r'''
- name: A cgroup for a batch job, 512 MiB and one and a half CPUs
  nsbox.runtime.cgroup:
    name: batch
    memory: 512m
    cpus: 1.5
    pids_limit: 200

- name: Only /dev/null and /dev/zero
  nsbox.runtime.cgroup:
    name: sandbox
    devices: ['c 1:3 rwm', 'c 1:5 rwm']

- name: Kill everything in it and remove it
  nsbox.runtime.cgroup:
    name: batch
    state: absent
'''

RETURN = r'''
cgroup:
  description: The cgroup after the task.
  returned: always
  type: dict
  sample:
    path: /nsbox/batch
    driver: cgroupfs
    version: hybrid
    exists: true
    dirs: [/sys/fs/cgroup/memory/nsbox/batch, /sys/fs/cgroup/unified/nsbox/batch]
    resources: {memory: 536870912, cpus: 1.5, cpu_period: 100000, pids_limit: 200}
    procs: [4242]
    stats: {pids: 1, memory: {usage: 1048576, peak: 2097152, oom_kills: 0}, cpu: {usage_usec: 1200, nr_throttled: 0}}
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: ['created cgroup /nsbox/batch (hybrid)', 'set memory: None -> 536870912']
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, finish, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.named import cgroup


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS, name={'type': 'str', 'required': True}, parent={'type': 'str'},
                           state={'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
                           procs={'type': 'list', 'elements': 'int'}, **cgroup.LIMITS),
        supports_check_mode=True,
    )
    p = module.params
    result = {'changed': False, 'actions': [], 'cgroup': None}
    try:
        cfg = host_config(module)
        lib = ensure_library(module)
        out = cgroup.ensure(cfg, p['name'], options={k: p[k] for k in cgroup.LIMITS}, procs=p['procs'], state=p['state'],
                            parent=p['parent'], check_mode=module.check_mode)
    except NsboxError as exc:
        fail(module, exc, **result)
    finish(module, result, out, lib)


if __name__ == '__main__':
    main()
