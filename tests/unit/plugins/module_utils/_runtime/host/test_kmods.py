# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel modules against a /sys/module, a modules.builtin and a modprobe of a test's own (this machine's kernel
has no loadable modules; the real modprobe runs on the real-host VM: tests/realhost/test_host_facts.py)."""
from __future__ import annotations

import os

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import kmods
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, NsboxError


@pytest.fixture
def kernel(tmp_path):
    """A /sys/module with overlay; modules.builtin with nf-tables; a modprobe that 'loads' by making the sysfs dir."""
    sys_module = tmp_path / 'sys' / 'module'
    (sys_module / 'overlay').mkdir(parents=True)
    builtin = tmp_path / 'modules.builtin'
    builtin.write_text('kernel/net/netfilter/nf-tables.ko\nkernel/fs/ext4/ext4.ko\n')
    modprobe = tmp_path / 'modprobe'
    modprobe.write_text('#!/bin/sh\n[ "$1" = -- ] && shift\ncase "$1" in nosuch) echo "modprobe: FATAL: Module nosuch not found" >&2;'
                        ' exit 1;; esac\nmkdir "%s/$1"\necho "$1" >> "%s/loaded"\n' % (sys_module, tmp_path))
    modprobe.chmod(0o755)
    conf = str(tmp_path / 'modules-load.d' / 'nsbox.conf')
    return {'modprobe': str(modprobe), 'conf': conf, 'loaded': tmp_path / 'loaded',
            'where': {'conf': conf, 'sys_module': str(sys_module), 'builtin_list': str(builtin)}}


def test_load_missing_and_list_them_then_nothing(kernel):
    names = ['overlay', 'br_netfilter', 'nf_tables']
    changes, now = kmods.plan(names, **kernel['where'])
    assert changes == [('load', 'load kernel module br_netfilter'), ('file', 'write %s' % kernel['conf'])]
    assert now == {'overlay': True, 'br_netfilter': False, 'nf_tables': True}  # nf_tables: built in (a dash in the file)
    assert not kernel['loaded'].exists() and not os.path.exists(kernel['conf'])  # plan changed nothing
    done, _now = kmods.apply(names, **kernel['where'], modprobe=kernel['modprobe'])
    assert done == changes and kernel['loaded'].read_text() == 'br_netfilter\n'
    with open(kernel['conf']) as f:
        assert f.read() == '# Written by nsbox.runtime.host\noverlay\nbr_netfilter\nnf_tables\n'
    assert kmods.apply(names, **kernel['where'], modprobe=kernel['modprobe'])[0] == []
    assert kmods.apply([], **kernel['where'])[0] == [('file', 'remove %s' % kernel['conf'])]
    assert not os.path.exists(kernel['conf'])


def test_without_load_only_looks(kernel):
    changes, now = kmods.apply(['overlay', 'br_netfilter'], load=False, modprobe=kernel['modprobe'], **kernel['where'])
    assert changes == [] and now == {'overlay': True, 'br_netfilter': False}
    assert not kernel['loaded'].exists() and not os.path.exists(kernel['conf'])


def test_a_module_that_does_not_load_leaves_the_file_alone(kernel):
    with pytest.raises(NsboxError, match='failed to load kernel module nosuch: modprobe exited 1: modprobe: FATAL: Module nosuch not found'):
        kmods.apply(['br_netfilter', 'nosuch'], **kernel['where'],
                    modprobe=kernel['modprobe'])
    assert not os.path.exists(kernel['conf'])


@pytest.mark.parametrize('name', ['../overlay', 'br netfilter', '', 3])
def test_a_bad_name_changes_nothing(kernel, name):
    with pytest.raises(ConfigError, match='expected a module name'):
        kmods.apply(['br_netfilter', name], **kernel['where'], modprobe=kernel['modprobe'])
    assert not kernel['loaded'].exists() and not os.path.exists(kernel['conf'])


def test_a_file_that_is_not_ours_is_left_alone(kernel):
    os.makedirs(os.path.dirname(kernel['conf']))
    with open(kernel['conf'], 'w') as f:
        f.write('overlay\n')
    assert kmods.apply([], **kernel['where'])[0] == []
    assert os.path.exists(kernel['conf'])
