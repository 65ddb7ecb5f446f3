# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Docker-style sizes and CPU amounts."""
from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel.units import UNLIMITED, format_size, parse_cpus, parse_size


@pytest.mark.parametrize('text, size', [
    ('512m', 512 << 20), ('1g', 1 << 30), ('1G', 1 << 30), ('1gb', 1 << 30), ('2GiB', 2 << 30), ('1024', 1024),
    ('1.5g', 3 << 29), ('64k', 64 << 10), (' 8m ', 8 << 20), (4096, 4096), ('0', 0), ('1t', 1 << 40),
])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize('text', ['', 'lots', '1x', '-5', '1.5.5m', 'm', '1 g b', True, None, '1e9', '0x10'])
def test_bad_sizes(text):
    with pytest.raises(ConfigError, match='failed to parse size'):
        parse_size(text)


def test_unlimited_only_where_allowed():
    assert parse_size('-1', allow_unlimited=True) == UNLIMITED == parse_size('max', allow_unlimited=True) == parse_size(-1, allow_unlimited=True)
    with pytest.raises(ConfigError):
        parse_size('-1')


@pytest.mark.parametrize('value, cpus', [('1.5', 1.5), (2, 2.0), ('0.01', 0.01), (0.5, 0.5)])
def test_cpus(value, cpus):
    assert parse_cpus(value) == cpus


@pytest.mark.parametrize('value', ['0', 0, '-1', 'half', '', None, True, 'nan', 2000])
def test_bad_cpus(value):
    with pytest.raises(ConfigError, match='failed to parse cpus'):
        parse_cpus(value)


@given(st.integers(min_value=0, max_value=1 << 40))
def test_format_roundtrip(size):
    assert parse_size(format_size(size)) == size


@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(), st.none(), st.booleans()))
def test_random_input_parses_or_fails_cleanly(value):
    for parse in (lambda v: parse_size(v, allow_unlimited=True), parse_cpus):
        try:
            result = parse(value)
        except ConfigError as exc:
            assert exc.message.startswith('failed to parse')
        else:
            assert isinstance(result, (int, float))
