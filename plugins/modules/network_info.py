#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: network_info
short_description: Read nsbox networks and the containers on them
version_added: 0.1.0
description:
  - The networks named in O(name), or every network of the data-root, with the containers attached now.
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
    description: Networks to read; default every network.
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: Every network
  nsbox.runtime.network_info:
  register: nets
'''

RETURN = r'''
networks:
  description: One entry per network found (as M(nsbox.runtime.network) returns it; C(containers) are ids).
  returned: always
  type: list
  elements: dict
  sample:
    - {name: nsbox0, driver: bridge, bridge: nsbox0, subnet: 10.77.0.0/16, gateway: 10.77.0.1, internal: false, labels: {},
       containers: ['3f1c0b0f9d2e...']}
missing:
  description: Names asked for that do not exist.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, fail, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.network import networks


def main():
    module = AnsibleModule(argument_spec=dict(COMMON_ARGS, name={'type': 'list', 'elements': 'str'}), supports_check_mode=True)
    try:
        out = networks.info(host_config(module), module.params['name'])
    except NsboxError as exc:
        fail(module, exc, networks=[], missing=[])
    module.exit_json(changed=False, **out)


if __name__ == '__main__':
    main()
