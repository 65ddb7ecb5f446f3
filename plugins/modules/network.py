#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: network
short_description: Create and remove bridge networks for containers (no daemon)
version_added: 0.1.0
description:
  - A network is a Linux bridge that holds the gateway address, with NAT to the outside (unless
    O(internal)) and forwarding rules in nsbox's own nftables table C(inet nsbox); no other table is
    ever touched. Links and addresses go through netlink (pyroute2), rules through libnftables' JSON API.
  - Containers join it with M(nsbox.runtime.container)'s O(nsbox.runtime.container#module:networks) or
    O(nsbox.runtime.container#module:network_mode); containers on the same network find each other by
    name (their C(/etc/hosts)). The default network (C(nsbox0), C(10.77.0.0/16), see the host config) is
    made on first use.
  - C(net.ipv4.ip_forward) is set to 1 when a non-internal network needs it (its value before is recorded
    in C(<data_root>/networks/.host-sysctls.json)).
  - Where another table's forward chain drops by default (firewalld, ufw, Docker's iptables rules), the
    result carries a warning (a packet must be accepted by every table, so allow the nsbox bridges there).
  - A network with containers on it is never removed or changed; the error names them.
requirements:
  - python3-pyroute2 and python3-nftables on the managed host (the host role installs them).
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Predicts creation, changes and removal; writes nothing.
  diff_mode:
    support: full
    description: The network's definition before and after.
options:
  name:
    description: The network's name (the default network's is its bridge's name).
    type: str
    required: true
  state:
    description: V(present) or V(absent).
    type: str
    choices: [present, absent]
    default: present
  driver:
    description: Only V(bridge).
    type: str
    choices: [bridge]
    default: bridge
  subnet:
    description:
      - IPv4 subnet such as V(10.78.0.0/24); required but for the default network. It may not overlap
        another network or a route of the host.
    type: str
  gateway:
    description: The bridge's address in O(subnet); default its first host address.
    type: str
  internal:
    description: No NAT and no forwarding in or out of the bridge; containers on it reach each other only.
    type: bool
    default: false
  labels:
    description: Metadata; a change is stored, nothing is recreated.
    type: dict
'''

EXAMPLES = r'''
- name: A network for the backend
  nsbox.runtime.network:
    name: backend
    subnet: 10.78.0.0/24

- name: An internal one (no way out)
  nsbox.runtime.network:
    name: db
    subnet: 10.79.0.0/24
    internal: true

- name: Remove it
  nsbox.runtime.network:
    name: backend
    state: absent
'''

RETURN = r'''
network:
  description: The network after the task (none after O(state=absent)).
  returned: success
  type: dict
  sample:
    name: backend
    id: 6f0c7d2b9a1e4c3f...
    driver: bridge
    bridge: nsbr-4f1a2b3c4d
    subnet: 10.78.0.0/24
    gateway: 10.78.0.1
    internal: false
    labels: {}
    containers: []
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: ['created network backend (10.78.0.0/24)', 'created bridge nsbr-4f1a2b3c4d', 'updated nftables table inet nsbox']
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, finish, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.network import networks


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS, name={'type': 'str', 'required': True},
                           state={'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
                           driver={'type': 'str', 'default': 'bridge', 'choices': ['bridge']},
                           subnet={'type': 'str'}, gateway={'type': 'str'}, internal={'type': 'bool', 'default': False},
                           labels={'type': 'dict'}),
        supports_check_mode=True,
    )
    p = module.params
    result = {'changed': False, 'actions': [], 'network': None}
    try:
        cfg = host_config(module)
        lib = ensure_library(module)
        out = networks.ensure(cfg, p['name'], subnet=p['subnet'], gateway=p['gateway'], internal=p['internal'], labels=p['labels'],
                              driver=p['driver'], state=p['state'], check_mode=module.check_mode)
    except NsboxError as exc:
        fail(module, exc, **result)
    for warning in out.pop('warnings', []):
        module.warn(warning)
    finish(module, result, out, lib)


if __name__ == '__main__':
    main()
