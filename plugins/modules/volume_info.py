#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: volume_info
short_description: Read named volumes and the containers that use them
version_added: 0.1.0
description:
  - One volume by O(name) (whether it exists, its Docker-inspect-like fields, the containers using it),
    or every volume of the data-root.
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
    description: The volume to read; default every volume.
    type: str
'''

EXAMPLES = r'''
- name: Is pgdata there, and who uses it?
  nsbox.runtime.volume_info:
    name: pgdata
  register: pg

- name: Every volume
  nsbox.runtime.volume_info:
  register: all_volumes
'''

RETURN = r'''
exists:
  description: Whether the volume O(name) exists.
  returned: when O(name) is given
  type: bool
  sample: true
volume:
  description: The volume as Docker's C(volume inspect) shows it, plus C(UsedBy) (container names); none when it does not exist.
  returned: when O(name) is given
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
containers:
  description: The names of the containers (in any state) that mount the volume O(name).
  returned: when O(name) is given
  type: list
  elements: str
  sample: [db]
volumes:
  description: Every volume, sorted by name, each as RV(volume).
  returned: when O(name) is not given
  type: list
  elements: dict
  sample:
    - {Name: pgdata, Driver: local, Mountpoint: /var/lib/nsbox/volumes/pgdata/_data, Labels: {}, Options: {}, Scope: local,
       CreatedAt: '2026-11-23T04:10:00Z', UsedBy: []}
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, fail, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.usage import References
from ..module_utils._runtime.volume import volumes


def main():
    module = AnsibleModule(argument_spec=dict(COMMON_ARGS, name={'type': 'str'}), supports_check_mode=True)
    try:
        cfg = host_config(module)
        out = volumes.info(cfg, module.params['name'], refs=References(cfg))
    except NsboxError as exc:
        fail(module, exc)
    module.exit_json(changed=False, **out)


if __name__ == '__main__':
    main()
