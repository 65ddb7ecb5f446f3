# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capability names, numbers, Docker's defaults and parsing (no root needed)."""
from __future__ import annotations

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import caps
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError


def test_table_is_the_kernel_abi():
    assert len(caps.NAMES) == 41 and len(set(caps.NAMES)) == 41
    assert caps.NUMBERS['CAP_CHOWN'] == 0 and caps.NUMBERS['CAP_SETPCAP'] == 8 and caps.NUMBERS['CAP_SYS_ADMIN'] == 21
    assert caps.NUMBERS['CAP_AUDIT_READ'] == 37 and caps.NUMBERS['CAP_BPF'] == 39 and caps.NUMBERS['CAP_CHECKPOINT_RESTORE'] == 40


def test_docker_defaults():
    assert len(caps.DEFAULT) == 14
    # What `docker run busybox grep Cap /proc/self/status` shows as CapEff/CapBnd for root.
    assert caps.mask(caps.DEFAULT) == 0xa80425fb
    assert set(caps.names_of(0xa80425fb)) == set(caps.DEFAULT)


@pytest.mark.parametrize('given, expected', [
    (['chown'], ('CAP_CHOWN',)),
    (['CAP_NET_ADMIN', 'cap_chown', ' Kill '], ('CAP_CHOWN', 'CAP_KILL', 'CAP_NET_ADMIN')),
    ('sys_admin', ('CAP_SYS_ADMIN',)),
    ([], ()),
    (['chown', 'CHOWN'], ('CAP_CHOWN',)),
])
def test_parse(given, expected):
    assert caps.parse(given, kernel_last=40) == expected


def test_all_is_what_the_kernel_knows():
    assert caps.parse(['ALL'], kernel_last=40) == caps.NAMES
    assert caps.parse(['all', 'chown'], kernel_last=37) == caps.NAMES[:38]


@pytest.mark.parametrize('bad, match', [
    (['CAP_FLY'], "unknown capability"),
    ([7], 'a capability is a name'),
    (['bpf'], 'the running kernel does not know it'),
])
def test_parse_errors(bad, match):
    with pytest.raises(ConfigError, match=match):
        caps.parse(bad, kernel_last=38)


def test_last_cap_reads_the_kernel(tmp_path):
    path = tmp_path / 'cap_last_cap'
    path.write_text('38\n')
    assert caps.last_cap(str(path)) == 38
    path.write_text('63\n')  # a newer kernel: the table's end
    assert caps.last_cap(str(path)) == 40
    assert caps.last_cap(str(tmp_path / 'missing')) == 40


def test_names_of_beyond_the_table():
    assert caps.names_of(1 << 41 | 1) == ('CAP_CHOWN', 'CAP_41')
