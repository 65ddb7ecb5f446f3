#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: rootfs_overlay
short_description: Mount an image's layers (or given directories) as an overlay root filesystem
version_added: 0.1.0
description:
  - Assembles an overlayfs from the layers of an image in the store (or explicit lower directories),
    an upper and a work directory, and mounts it at O(target).
  - Idempotent by reading C(/proc/self/mountinfo). Images with many layers fit the kernel's one-page
    limit on mount options through the store's short layer links, as Docker does.
  - With the C(vfs) storage driver the image's tree is copied into O(upper_dir) once and bind-mounted.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Reads the mount table and the store; mounts, unmounts and deletes nothing.
  diff_mode:
    support: full
    description: Shows whether the target is mounted, and with which layers, before and after.
options:
  target:
    description: Where the root filesystem is mounted (created if missing).
    type: path
    required: true
  image:
    description: An image in the store, by reference (V(busybox), V(registry/repo:tag)) or manifest digest.
    type: str
  lower_dirs:
    description: Explicit lower directories, top-most first, instead of O(image) (overlay driver only).
    type: list
    elements: path
  upper_dir:
    description: The writable layer. Required unless O(readonly).
    type: path
  work_dir:
    description: overlayfs's work directory, on the same filesystem as O(upper_dir). Required unless O(readonly).
    type: path
  readonly:
    description: Mount the lower layers only, read-only (no O(upper_dir)). Not with the vfs driver.
    type: bool
    default: false
  state:
    description:
      - V(mounted) mounts; V(unmounted) unmounts and keeps the writable layer;
        V(absent) unmounts and deletes O(upper_dir) and O(work_dir) (and O(target) when empty).
    type: str
    choices: [mounted, unmounted, absent]
    default: mounted
'''

EXAMPLES = r'''
- name: A writable root filesystem from busybox
  nsbox.runtime.rootfs_overlay:
    image: busybox
    target: /srv/box/rootfs
    upper_dir: /srv/box/upper
    work_dir: /srv/box/work

- name: Gone, with its writable layer
  nsbox.runtime.rootfs_overlay:
    target: /srv/box/rootfs
    upper_dir: /srv/box/upper
    work_dir: /srv/box/work
    state: absent
'''

RETURN = r'''
rootfs:
  description: The root filesystem after the task.
  returned: always
  type: dict
  sample:
    target: /srv/box/rootfs
    driver: overlay
    image: sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7
    lowers: [l/5c1a0e3bd3b0b1a8c1b9b1d2e3f4]
    upper: /srv/box/upper
    work: /srv/box/work
    readonly: false
    mounted: true
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: ['mounted overlay of 3 layers on /srv/box/rootfs']
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, finish, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.image import rootfs


def main():
    module = AnsibleModule(
        argument_spec=dict(COMMON_ARGS, target={'type': 'path', 'required': True}, image={'type': 'str'},
                           lower_dirs={'type': 'list', 'elements': 'path'}, upper_dir={'type': 'path'}, work_dir={'type': 'path'},
                           readonly={'type': 'bool', 'default': False},
                           state={'type': 'str', 'default': 'mounted', 'choices': ['mounted', 'unmounted', 'absent']}),
        mutually_exclusive=[('image', 'lower_dirs'), ('readonly', 'upper_dir'), ('readonly', 'work_dir')],
        required_if=[('state', 'mounted', ['image', 'lower_dirs'], True)],
        required_together=[('upper_dir', 'work_dir')],
        supports_check_mode=True,
    )
    p = module.params
    result = {'changed': False, 'actions': [], 'rootfs': None}
    try:
        cfg = host_config(module)
        lib = ensure_library(module)
        out = rootfs.ensure(cfg, p['target'], image=p['image'], lower_dirs=p['lower_dirs'], upper=p['upper_dir'], work=p['work_dir'],
                            readonly=p['readonly'], state=p['state'], check_mode=module.check_mode)
    except NsboxError as exc:
        fail(module, exc, **result)
    finish(module, result, out, lib)


if __name__ == '__main__':
    main()
