#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: image_info
short_description: List the images in the nsbox image store
version_added: 0.1.0
description:
  - Returns the images stored under the data-root, with their references, digests, layers,
    size, creation time and config.
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
    description: Only these references (as Docker reads them); default every image.
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: List every image
  nsbox.runtime.image_info:
  register: images

- name: Look at one
  nsbox.runtime.image_info:
    name: [busybox]
'''

RETURN = r'''
images:
  description: The images, sorted by manifest digest.
  returned: always
  type: list
  elements: dict
  sample:
    - id: sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741
      digest: sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7
      references: [docker.io/library/busybox:latest]
      layers: [sha256:a307d6ecc6205a3e1c3ef1d2e6a2a1de7c6c2d7e2d1c5d6a9c3a6f7e6b5c4d3e]
      size: 2152262
      created: '2023-07-18T23:19:33.655005962Z'
      platform: linux/amd64
      config: {Cmd: [sh]}
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, fail, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.image import images


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS, name={'type': 'list', 'elements': 'str'}),
        supports_check_mode=True,
    )
    try:
        found = images.list_images(host_config(module), module.params['name'])
    except NsboxError as exc:
        fail(module, exc, images=[])
    module.exit_json(changed=False, images=found)


if __name__ == '__main__':
    main()
