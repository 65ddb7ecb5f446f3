#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: container_exec
short_description: Run a command inside a running container
version_added: 0.1.0
description:
  - Runs a command in every namespace and the cgroup of a running container, as its user with its
    capabilities (unless O(user) says otherwise), and returns its exit code and output.
  - Like M(ansible.builtin.command), it reports V(changed) when it ran the command; use C(changed_when), or
    O(creates) and O(removes), which skip the command (V(changed=false)) as M(ansible.builtin.command)'s do.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: none
    description: A command cannot be predicted; the task is skipped in check mode.
  diff_mode:
    support: none
    description: No diff.
options:
  container:
    description: The container's name or id.
    type: str
    required: true
  command:
    description: The command (a string split as a shell would, or a list).
    type: raw
    required: true
  stdin:
    description: Text given on the command's standard input.
    type: str
  env:
    description: Extra environment variables, over the container's.
    type: dict
  user:
    description: V(name), V(uid), V(name:group) or V(uid:gid); default the container's user.
    type: str
  workdir:
    description: The working directory; default the container's.
    type: str
  timeout:
    description: Seconds before the command's output is given up on (V(0) waits forever).
    type: int
    default: 0
  creates:
    description: A path in the container; when it exists, the command is not run (V(changed=false)).
    type: str
  removes:
    description: A path in the container; when it does not exist, the command is not run (V(changed=false)).
    type: str
'''

EXAMPLES = r'''
- name: What does the container see?
  nsbox.runtime.container_exec:
    container: web
    command: cat /etc/hostname
  register: out
  changed_when: false

- name: Initialise the database once
  nsbox.runtime.container_exec:
    container: db
    command: /usr/local/bin/init-db
    creates: /var/lib/db/.initialised
'''

RETURN = r'''
rc:
  description: The command's exit code (128 + the signal if a signal ended it).
  returned: success
  type: int
  sample: 0
stdout:
  description: Its standard output.
  returned: success
  type: str
stderr:
  description: Its standard error.
  returned: success
  type: str
stdout_lines:
  description: Its standard output in lines.
  returned: success
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.container import execute


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS, container={'type': 'str', 'required': True}, command={'type': 'raw', 'required': True},
                           stdin={'type': 'str'}, env={'type': 'dict'}, user={'type': 'str'}, workdir={'type': 'str'},
                           timeout={'type': 'int', 'default': 0}, creates={'type': 'str'}, removes={'type': 'str'}),
        supports_check_mode=False,
    )
    p = module.params
    try:
        cfg = host_config(module)
        ensure_library(module)
        for option, skip_when in (('creates', True), ('removes', False)):
            if p[option] is not None and execute.exists_in(cfg, p['container'], p[option]) == skip_when:
                module.exit_json(changed=False, rc=0, stdout='skipped, since %s %s' % (p[option], 'exists' if skip_when else 'does not exist'),
                                 stderr='', stdout_lines=[])
        out = execute.exec_in(cfg, p['container'], p['command'], stdin=p['stdin'], env=p['env'], user=p['user'],
                              workdir=p['workdir'], timeout=p['timeout'] or None)
    except NsboxError as exc:
        fail(module, exc)
    if out['rc'] != 0:  # a failed task, as ansible.builtin.command's, with the code and the output
        module.fail_json(msg='non-zero return code', changed=True, stdout_lines=out['stdout'].splitlines(), **out)
    module.exit_json(changed=True, stdout_lines=out['stdout'].splitlines(), **out)


if __name__ == '__main__':
    main()
