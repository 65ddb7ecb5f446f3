#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: container_info
short_description: Read containers' state, config, resource usage and last log lines
version_added: 0.1.0
description:
  - Returns the containers of the data-root with their state as the kernel tells it (running or
    exited, pid, exit code, OOM kill, start and finish times, whether a supervisor watches it), the
    effective config, the cgroup's usage and, when asked, the last log lines.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
options:
  name:
    description: Only these containers (names or ids); default every container.
    type: list
    elements: str
  log_lines:
    description: Return the last this many log entries of each container (V(0) for none).
    type: int
    default: 0
'''

EXAMPLES = r'''
- name: How did the job end?
  nsbox.runtime.container_info:
    name: [job]
    log_lines: 20
  register: info

- name: Show it
  ansible.builtin.debug:
    msg: "{{ info.containers[0].state.exit_code }} {{ info.containers[0].logs | map(attribute='log') | join('') }}"
'''

RETURN = r'''
containers:
  description:
    - One entry per container found. C(state.status) is V(created), V(running), V(restarting) (its
      restart policy waits out a back-off) or V(exited); C(state.restart_count) counts the restarts
      by the policy since the last start by the module; C(state.health), for a container with a
      healthcheck while it runs, has C(status) (V(starting), V(healthy), V(unhealthy)),
      C(failing_streak) and C(log) (the last five checks).
  returned: always
  type: list
  elements: dict
  sample:
    - id: 3f1c0b0f9d2e4a6b8c0d1e2f3a4b5c6d7e8f90112233445566778899aabbccdd
      name: job
      image: {name: busybox, digest: 'sha256:5a1e...', id: 'sha256:9b2c...'}
      state: {status: exited, running: false, supervised: false, pid: null, exit_code: 3, oom_killed: false,
              started_at: '2026-11-22T22:31:21.123456789Z', finished_at: '2026-11-22T22:31:21.323456789Z', restart_count: 0}
      config: {args: [sh, -c, 'echo done; exit 3']}
      logs: [{stream: stdout, log: "done\n", time: '2026-11-22T22:31:21.223456789Z'}]
missing:
  description: Names asked for that do not exist.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, fail, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.container import info as container_info


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS, name={'type': 'list', 'elements': 'str'}, log_lines={'type': 'int', 'default': 0}),
        supports_check_mode=True,
    )
    try:
        out = container_info.info(host_config(module), module.params['name'], module.params['log_lines'])
    except NsboxError as exc:
        fail(module, exc, containers=[])
    for c in out['containers']:
        if c['state'].get('running') and c['state'].get('supervised') is False:
            module.warn('container %s runs without its supervisor (it died): its restart policy, healthcheck and log are off until '
                        'nsbox.runtime.container with state started (or nsbox start %s) adopts it' % (c['name'], c['name']))
    module.exit_json(changed=False, **out)


if __name__ == '__main__':
    main()
