#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: image
short_description: Pull, load, import and remove container images in the nsbox image store
version_added: 0.1.0
description:
  - Manages images in the content-addressed store under the data-root. Every blob is checked
    against its digest and size, every layer against its C(diff_id), and each layer is
    unpacked once, shared by all images that use it.
  - Idempotent by content. Pulling a tag that still points at the digest already stored
    changes nothing and costs one manifest request. In check mode the module still reads
    that manifest (read-only), so it predicts a change exactly.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Reads the registry or archive, writes nothing.
  diff_mode:
    support: full
    description: Shows the reference's manifest digest before and after.
options:
  name:
    description:
      - The image reference, as Docker reads it. C(busybox) means C(docker.io/library/busybox:latest);
        C(registry:5000/team/app:1.2) and C(repo@sha256:...) work as usual.
      - With O(source=load), also picks the image in an archive holding several (by tag or
        C(org.opencontainers.image.ref.name)); it may be left out when the archive names one image.
    type: str
  state:
    description: V(present) makes sure the image is stored; V(absent) removes the reference.
    type: str
    choices: [present, absent]
    default: present
  source:
    description:
      - V(pull) from a registry (OCI distribution / registry v2).
      - V(load) from O(path) on the managed host, a docker-archive (classic or Docker 25+
        OCI-in-docker), an oci-archive or an OCI layout directory.
      - V(import) a plain rootfs tarball (optionally gzip) from O(path) as a one-layer image
        whose config comes from O(config).
    type: str
    choices: [pull, load, import]
    default: pull
  path:
    description: The archive, layout or tarball on the managed host, for O(source=load) and O(source=import).
    type: path
  platform:
    description: The platform to pick from a multi-platform image, C(os/arch[/variant]); default this host's.
    type: str
  config:
    description: Image config for O(source=import).
    type: dict
    suboptions:
      cmd:
        description: Default command.
        type: list
        elements: str
      entrypoint:
        description: Entrypoint.
        type: list
        elements: str
      env:
        description: Environment, C(NAME=value) strings.
        type: list
        elements: str
      workdir:
        description: Working directory.
        type: str
      user:
        description: User, C(uid[:gid]) or a name.
        type: str
  auth:
    description: Registry credentials, for basic auth or the Bearer token flow.
    type: dict
    suboptions:
      username:
        description: User name.
        type: str
        required: true
      password:
        description: Password or token.
        type: str
        required: true
  validate_certs:
    description: Verify the registry's TLS certificate.
    type: bool
    default: true
  insecure:
    description:
      - Reach the registry over plain HTTP. Default from the host configuration's C(registries.insecure).
    type: bool
  ca_path:
    description: A CA bundle on the managed host for the registry's certificate.
    type: path
  client_cert:
    description: A client certificate (PEM) on the managed host, for registries that want one.
    type: path
  client_key:
    description: The key of O(client_cert), if not in the same file.
    type: path
  prune:
    description: With O(state=absent), also delete blobs and layers that no image uses any more.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Pull busybox from Docker Hub
  nsbox.runtime.image:
    name: busybox:1.36

- name: Pull from a private registry over plain HTTP, with credentials
  nsbox.runtime.image:
    name: registry.lan:5000/team/app:2.1
    insecure: true
    auth:
      username: deploy
      password: "{{ vault_registry_password }}"

- name: Pull the arm64 image of a multi-platform tag
  nsbox.runtime.image:
    name: registry.lan:5000/team/app:2.1
    platform: linux/arm64

- name: Load an image saved with docker save, podman save or skopeo copy
  nsbox.runtime.image:
    name: localhost/app:1.0
    source: load
    path: /tmp/app.tar

- name: Import a root filesystem tarball as an image
  nsbox.runtime.image:
    name: localhost/rootfs:1
    source: import
    path: /tmp/rootfs.tar.gz
    config:
      cmd: [/bin/sh]
      env: [PATH=/usr/bin:/bin]

- name: Remove an image and free its space
  nsbox.runtime.image:
    name: busybox:1.36
    state: absent
    prune: true
'''

RETURN = r'''
image:
  description: The image after the task (none after O(state=absent)).
  returned: always
  type: dict
  sample:
    id: sha256:3f57d9401f8d42f986df300f0c69192fc41da28ccc8d797829467780db3dd741
    digest: sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7
    references: [docker.io/library/busybox:1.36]
    layers: [sha256:a307d6ecc6205a3e1c3ef1d2e6a2a1de7c6c2d7e2d1c5d6a9c3a6f7e6b5c4d3e]
    size: 2152262
    created: '2023-07-18T23:19:33.655005962Z'
    platform: linux/amd64
    config: {Cmd: [sh], Env: [PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin]}
actions:
  description: What was (or in check mode would be) done.
  returned: always
  type: list
  elements: str
  sample: [fetched 1 and unpacked 1 of 1 layers from registry docker.io, tagged docker.io/library/busybox:1.36 -> sha256:9ae9...]
'''

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, finish, host_config
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.image import images
from ..module_utils._runtime.usage import References

CONFIG_KEYS = {'cmd': 'Cmd', 'entrypoint': 'Entrypoint', 'env': 'Env', 'workdir': 'WorkingDir', 'user': 'User'}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            COMMON_ARGS,
            name={'type': 'str'},
            state={'type': 'str', 'default': 'present', 'choices': ['present', 'absent']},
            source={'type': 'str', 'default': 'pull', 'choices': ['pull', 'load', 'import']},
            path={'type': 'path'},
            platform={'type': 'str'},
            config={'type': 'dict', 'options': {
                'cmd': {'type': 'list', 'elements': 'str'}, 'entrypoint': {'type': 'list', 'elements': 'str'},
                'env': {'type': 'list', 'elements': 'str'}, 'workdir': {'type': 'str'}, 'user': {'type': 'str'}}},
            auth={'type': 'dict', 'options': {'username': {'type': 'str', 'required': True},
                                              'password': {'type': 'str', 'required': True, 'no_log': True}}},
            validate_certs={'type': 'bool', 'default': True},
            insecure={'type': 'bool'},
            ca_path={'type': 'path'},
            client_cert={'type': 'path'},
            client_key={'type': 'path'},
            prune={'type': 'bool', 'default': False},
        ),
        required_if=[('source', 'load', ['path']), ('source', 'import', ['path', 'name']),
                     ('state', 'absent', ['name']), ('source', 'pull', ['name'])],
        supports_check_mode=True,
    )
    p = module.params
    result = {'changed': False, 'actions': [], 'image': None}
    try:
        cfg = host_config(module)
        lib = ensure_library(module)
        check = module.check_mode
        if p['state'] == 'absent':
            out = images.remove(cfg, p['name'], prune=p['prune'], check_mode=check, refs=References(cfg))
        elif p['source'] == 'pull':
            out = images.pull(cfg, p['name'], platform=p['platform'], auth=p['auth'], insecure=p['insecure'],
                              validate_certs=p['validate_certs'], ca_path=p['ca_path'], client_cert=p['client_cert'],
                              client_key=p['client_key'], check_mode=check)
        elif p['source'] == 'load':
            out = images.load(cfg, p['path'], name=p['name'], platform=p['platform'], check_mode=check)
        else:
            conf = {CONFIG_KEYS[k]: v for k, v in (p['config'] or {}).items() if v is not None}
            out = images.import_rootfs(cfg, p['path'], p['name'], config=conf, platform=p['platform'], check_mode=check)
    except NsboxError as exc:
        fail(module, exc, **result)
    out.pop('requests', None)
    finish(module, result, out, lib)


if __name__ == '__main__':
    main()
