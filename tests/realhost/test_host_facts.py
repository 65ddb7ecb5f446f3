# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host module over SSH on a real systemd + cgroup v2 host: its facts match the kernel's word."""
from __future__ import annotations

import json


def test_host_module_reports_cgroup_v2_and_systemd(realhost, realhost_ansible):
    res = realhost_ansible.module('nsbox.runtime.host')
    assert res['_status'] == 'changed', res
    facts = res['ansible_facts']['nsbox']
    assert facts['cgroup']['version'] == 'v2', facts['cgroup']
    assert facts['systemd'] is True
    assert facts['cgroup']['driver'] == 'systemd'  # what 'auto' means on a systemd + v2 host
    assert {'cpu', 'memory', 'pids'} <= set(facts['cgroup']['controllers']), facts['cgroup']
    assert facts['cgroup']['controllers'] == facts['cgroup']['unified_controllers']

    # The same, straight from the kernel: one cgroup2 tree, no v1 hierarchy, systemd as PID 1.
    kernel = realhost.ssh('stat -fc %T /sys/fs/cgroup; readlink /proc/1/exe; grep -c " cgroup " /proc/mounts || true;'
                          ' cat /sys/fs/cgroup/cgroup.controllers').stdout.splitlines()
    assert kernel[:3] == ['cgroup2fs', '/usr/lib/systemd/systemd', '0'], kernel
    assert sorted(kernel[3].split()) == facts['cgroup']['controllers']

    # The library the module installed answers the same on the host, outside Ansible.
    info = json.loads(realhost.ssh('nsbox info --format json').stdout)
    assert info['cgroup']['version'] == 'v2' and info['systemd'] is True
    again = realhost_ansible.module('nsbox.runtime.host')
    assert again['_status'] == 'ok', again


def test_kernel_modules_load_for_real(realhost, realhost_ansible):
    """On a kernel with loadable modules (Debian's cloud kernel): the host module loads br_netfilter with modprobe, lists
    the modules in /etc/modules-load.d/nsbox.conf, then changes nothing; a module no kernel has fails, naming it."""
    assert realhost.ssh('test -e /sys/module/br_netfilter', check=False).returncode == 1  # not loaded at boot
    args = {'kernel_modules': ['overlay', 'br_netfilter'], 'install_library': False,
            'sysctls': {'net.bridge.bridge-nf-call-iptables': 1}}  # exists once br_netfilter is loaded: loaded first
    check = realhost_ansible.module('nsbox.runtime.host', args, check=True)  # its sysctl is not there yet: predicted
    assert check['_status'] == 'changed' and 'set net.bridge.bridge-nf-call-iptables = 1 (was not there yet)' in check['changes'], check
    assert realhost.ssh('test -e /sys/module/br_netfilter', check=False).returncode == 1
    done = realhost_ansible.module('nsbox.runtime.host', args)
    assert done['_status'] == 'changed' and 'load kernel module br_netfilter' in done['changes'], done
    assert done['kernel_modules'] == {'overlay': True, 'br_netfilter': True}
    assert realhost.ssh('test -d /sys/module/br_netfilter && cat /etc/modules-load.d/nsbox.conf'
                        ' /proc/sys/net/bridge/bridge-nf-call-iptables').stdout == (
        '# Written by nsbox.runtime.host\noverlay\nbr_netfilter\n1\n')
    again = realhost_ansible.module('nsbox.runtime.host', args)
    assert again['_status'] == 'ok' and again['changes'] == [], again
    bad = realhost_ansible.module('nsbox.runtime.host', {'kernel_modules': ['nsbox_test_absent'], 'install_library': False})
    assert bad['_status'] == 'failed' and 'failed to load kernel module nsbox_test_absent: modprobe exited 1' in bad['msg'], bad
