#!/usr/bin/python
# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

DOCUMENTATION = r'''
module: host
short_description: Set a host up for nsbox containers and report what it offers
version_added: 0.1.0
description:
  - Converges the nsbox host configuration C(/etc/nsbox/config.json), the data-root and
    state directories with their layout and modes, and the runtime library installed on
    the host (C(/usr/local/lib/nsbox/current) and the C(/usr/local/bin/nsbox) command).
  - Returns facts about the host in C(ansible_facts.nsbox) - kernel, cgroup version, driver
    and controllers, overlay and idmapped-mount support, systemd as PID 1, and which
    storage drivers work on the data-root's filesystem.
  - Options left unset keep the value already in the host configuration (or the default
    when there is none); the module never resets what it was not asked to manage.
author: nsbox.runtime developers (@nsbox)
extends_documentation_fragment:
  - nsbox.runtime.common
attributes:
  check_mode:
    support: full
    description: Reports every change it would make and writes nothing.
  diff_mode:
    support: full
    description: Shows the host configuration and the library version before and after.
  facts:
    support: full
    description: Sets C(ansible_facts.nsbox).
options:
  state_dir:
    description: Runtime state (pids, supervisor state, persisted namespaces); default C(/run/nsbox).
    type: path
  storage_driver:
    description:
      - V(overlay) needs a data-root on ext4, xfs, btrfs or tmpfs (not on an overlay).
      - V(vfs) copies each image's layers per container and works anywhere.
      - The driver of a data-root that already holds layers or containers cannot change.
    type: str
    choices: [overlay, vfs]
  cgroup_driver:
    description:
      - V(auto) picks V(systemd) on hosts with systemd as PID 1 and cgroup v2, else V(cgroupfs).
    type: str
    choices: [auto, cgroupfs, systemd]
  cgroup_parent:
    description: The parent of container cgroups; default C(/nsbox) (cgroupfs) or C(nsbox.slice) (systemd).
    type: str
  default_network:
    description: The network containers join unless told otherwise.
    type: dict
    suboptions:
      name:
        description: Bridge name (at most 15 characters); default V(nsbox0).
        type: str
      subnet:
        description: Its subnet; default V(10.77.0.0/16).
        type: str
  default_network_mode:
    description:
      - The C(network_mode) of containers that give none (nor C(networks)). V(bridge) (default, as Docker)
        puts them on O(default_network); V(none) gives them a network namespace with only C(lo).
    type: str
    choices: [bridge, none, host]
  log_driver:
    description: Where container output goes by default.
    type: str
    choices: [json-file, journald]
  registries:
    description: Registry settings used by image pulls.
    type: dict
    suboptions:
      mirrors:
        description: Registry host to a list of mirror hosts, tried in order.
        type: dict
      insecure:
        description: Registry hosts reached over plain HTTP.
        type: list
        elements: str
      ca_files:
        description: Registry host to a CA bundle file on the managed host.
        type: dict
  proxies:
    description:
      - Proxies for registry traffic (HTTPS goes through a C(CONNECT) tunnel).
      - When none is set here, pulls use the C(http_proxy), C(https_proxy) and C(no_proxy) environment variables of the module's process.
    type: dict
    suboptions:
      http_proxy:
        description: Proxy URL for HTTP.
        type: str
      https_proxy:
        description: Proxy URL for HTTPS.
        type: str
      no_proxy:
        description:
          - Hosts reached without a proxy, separated by commas, as curl and Go read them.
          - V(*) for all; a name also covers its subdomains (a leading dot is the same); V(name:port) only that port;
            an IP address or a CIDR network such as V(10.0.0.0/8).
          - Matched against the registry host, or the mirror host a pull goes to.
        type: str
  install_library:
    description: Install or refresh the runtime library and the C(nsbox) command on the host.
    type: bool
    default: true
  data_root_migrate:
    description:
      - When O(data_root) names another directory than the configured data-root and the configured one holds images,
        layers, containers or volumes, move it there (a rename on one filesystem, else a copy that keeps xattrs, hard
        links and device nodes, then removal of the old one) and point the configuration at it.
      - Without it such a change is refused, so no data is left behind out of reach. The move is refused too while a
        container of the old data-root runs, or when the new directory exists and is not empty.
      - The role M(nsbox.runtime.host) (variable C(nsbox_data_root_migrate)) stops the containers, moves and starts them again.
    type: bool
    default: false
  kernel_modules:
    description:
      - Kernel modules the host needs, for example V(overlay) for the overlay driver and V(br_netfilter) for bridge
        networking. Each one the kernel has neither loaded nor built in is loaded with C(modprobe), and all are listed
        in C(/etc/modules-load.d/nsbox.conf) so they are loaded at boot; every name is checked before anything changes,
        and a module that does not load fails the task with modprobe's message.
      - An empty list removes that file (when nsbox wrote it); leaving the option out leaves kernel modules alone.
    type: list
    elements: str
  kernel_modules_load:
    description:
      - V(false) only looks (a host in a container or in namespaces, where modprobe cannot work) - each missing module
        is a warning, nothing is loaded or written.
    type: bool
    default: true
  sysctls:
    description:
      - Kernel parameters the host needs, for example V(net.ipv4.ip_forward=1) for bridge networking. They are written to
        C(/etc/sysctl.d/90-nsbox.conf) (kept across reboots) and set live where the running value differs; every
        name is checked under C(/proc/sys) before anything changes.
      - An empty dict removes that file (when nsbox wrote it); leaving the option out leaves sysctls alone.
      - Kernel modules of O(kernel_modules) are loaded first, so their parameters (V(net.bridge.bridge-nf-call-iptables)
        of V(br_netfilter)) can be set in the same task; check mode predicts those while the module is not loaded yet.
    type: dict
'''

EXAMPLES = r'''
- name: Set the host up with the defaults
  nsbox.runtime.host:

- name: Keep nsbox data on a dedicated disk, with the vfs driver
  nsbox.runtime.host:
    data_root: /srv/nsbox
    storage_driver: vfs

- name: Use a registry mirror and an insecure in-house registry
  nsbox.runtime.host:
    registries:
      mirrors:
        docker.io: [mirror.example.com]
      insecure: [registry.lan:5000]

- name: Load what bridge networking needs, now and at every boot
  nsbox.runtime.host:
    kernel_modules: [overlay, br_netfilter]
    sysctls:
      net.ipv4.ip_forward: 1

- name: Move the data-root (with its images and stopped containers) to a bigger disk
  nsbox.runtime.host:
    data_root: /srv/nsbox
    data_root_migrate: true
'''

RETURN = r'''
config:
  description: The host configuration after the task.
  returned: always
  type: dict
  sample: {"data_root": "/var/lib/nsbox", "state_dir": "/run/nsbox", "storage_driver": "overlay"}
config_path:
  description: Where the host configuration lives.
  returned: always
  type: str
  sample: /etc/nsbox/config.json
changes:
  description: What was (or in check mode would be) changed, one line each.
  returned: always
  type: list
  elements: str
  sample: ["create /var/lib/nsbox (mode 0711)", "write /etc/nsbox/config.json"]
library:
  description: The runtime library on the host.
  returned: when O(install_library=true)
  type: dict
  sample: {"version": "0.1.0", "sha256": "2179...", "path": "/usr/local/lib/nsbox/0.1.0-217971cfd62d",
           "current": "/usr/local/lib/nsbox/current", "bin": "/usr/local/bin/nsbox", "python": "/usr/bin/python3"}
kernel_modules:
  description: Whether each of O(kernel_modules) is in the kernel after the task (loaded or built in).
  returned: when O(kernel_modules) is given
  type: dict
  sample: {"overlay": true, "br_netfilter": true}
ansible_facts:
  description: Facts about the host.
  returned: always
  type: complex
  contains:
    nsbox:
      description: Kernel, cgroup, storage and systemd facts (the same as C(nsbox info --format json)).
      returned: always
      type: dict
      sample: {"cgroup": {"version": "v2", "driver": "systemd", "controllers": ["cpu", "io", "memory", "pids"]},
               "systemd": true, "overlay": true, "storage": {"backing_fs": "ext4", "drivers": ["overlay", "vfs"]}}
'''

import json

from ansible.module_utils.basic import AnsibleModule

from ..module_utils.common import COMMON_ARGS, ensure_library, fail, host_config
from ..module_utils._runtime.host import hostinfo, kmods, sysctls
from ..module_utils._runtime.errors import NsboxError
from ..module_utils._runtime.host.hostsetup import HostSetup

CONFIG_OPTIONS = ('state_dir', 'storage_driver', 'cgroup_driver', 'cgroup_parent', 'default_network', 'default_network_mode',
                  'log_driver', 'registries', 'proxies')


ARGUMENT_SPEC = dict(
    COMMON_ARGS,
    state_dir={'type': 'path'},
    storage_driver={'type': 'str', 'choices': ['overlay', 'vfs']},
    cgroup_driver={'type': 'str', 'choices': ['auto', 'cgroupfs', 'systemd']},
    cgroup_parent={'type': 'str'},
    default_network={'type': 'dict', 'options': {'name': {'type': 'str'}, 'subnet': {'type': 'str'}}},
    default_network_mode={'type': 'str', 'choices': ['bridge', 'none', 'host']},
    log_driver={'type': 'str', 'choices': ['json-file', 'journald']},
    registries={'type': 'dict', 'options': {'mirrors': {'type': 'dict'},
                                            'insecure': {'type': 'list', 'elements': 'str'},
                                            'ca_files': {'type': 'dict'}}},
    proxies={'type': 'dict', 'options': {'http_proxy': {'type': 'str'}, 'https_proxy': {'type': 'str'},
                                         'no_proxy': {'type': 'str'}}},
    install_library={'type': 'bool', 'default': True},
    data_root_migrate={'type': 'bool', 'default': False},
    kernel_modules={'type': 'list', 'elements': 'str'},
    kernel_modules_load={'type': 'bool', 'default': True},
    sysctls={'type': 'dict'},
)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    result = {'changed': False, 'changes': []}
    wanted_sysctls, sysctls_before = module.params['sysctls'], None
    wanted_kmods, load_kmods, kmods_before = module.params['kernel_modules'], module.params['kernel_modules_load'], None
    try:
        desired = host_config(module, **{k: module.params[k] for k in CONFIG_OPTIONS})
        setup = HostSetup(desired, move_data_root=module.params['data_root_migrate'])
        before = setup.current.to_file() if setup.current.exists else {}
        pending = False  # check mode, with kernel modules to load: their sysctls are predicted, not refused as unknown
        if wanted_kmods is not None:  # before the sysctls: a module's own (net.bridge.*) exist once it is loaded
            done, kmods_before = (kmods.plan if module.check_mode else kmods.apply)(wanted_kmods, load_kmods)
            result['changes'] += [desc for _kind, desc in done]
            pending = module.check_mode and any(kind == 'load' for kind, _desc in done)
            result['kernel_modules'] = dict(kmods_before, **({name: True for name in wanted_kmods} if load_kmods else {}))
            for name in ([] if load_kmods else [n for n in wanted_kmods if not kmods_before[n]]):
                module.warn('kernel module %s is not loaded, and kernel_modules_load is false' % name)
        if wanted_sysctls is not None:  # every name checked before the configuration is written
            sysctls.check(wanted_sysctls, absent_ok=pending)
        changes = setup.plan() if module.check_mode else setup.apply()
        result['changes'] += [desc for _kind, desc in changes]
        result.update(config=desired.data, config_path=setup.path)
        if wanted_sysctls is not None:
            done, sysctls_before = (sysctls.plan(wanted_sysctls, absent_ok=pending) if module.check_mode
                                    else sysctls.apply(wanted_sysctls))
            result['changes'] += [desc for _kind, desc in done]
        result['changed'] = bool(result['changes'])
        lib_before = lib_after = None
        if module.params['install_library']:
            lib = ensure_library(module)
            result['changes'] += lib.pop('changes')
            result['changed'] |= lib.pop('changed')
            result['library'] = lib
            lib_before, lib_after = lib.pop('before'), lib['path']
        facts = hostinfo.gather(desired)
    except NsboxError as exc:
        fail(module, exc, **result)
    if module._diff:  # pylint: disable=protected-access
        result['diff'] = {
            'before_header': setup.path, 'after_header': setup.path,
            'before': json.dumps(dict({'config': before, 'library': lib_before},
                                      **({'sysctls': sysctls_before} if wanted_sysctls is not None else {}),
                                      **({'kernel_modules': kmods_before} if wanted_kmods is not None else {})),
                                 indent=2, sort_keys=True) + '\n',
            'after': json.dumps(dict({'config': desired.to_file(), 'library': lib_after},
                                     **({'sysctls': sysctls.wanted(wanted_sysctls)}
                                        if wanted_sysctls is not None else {}),
                                     **({'kernel_modules': result['kernel_modules']} if wanted_kmods is not None else {})),
                                indent=2, sort_keys=True) + '\n',
        }
    result['ansible_facts'] = {'nsbox': facts}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
