# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nsbox.runtime.plugins.filter.depends_order import depends_order


def names(containers):
    return [c['name'] for c in depends_order(containers)]


def test_dependencies_come_first_and_declared_order_is_kept_otherwise():
    declared = [{'name': 'web', 'depends_on': ['db', 'cache']}, {'name': 'cache'}, {'name': 'db'}, {'name': 'tool'}]
    assert names(declared) == ['cache', 'db', 'web', 'tool']


def test_no_dependencies_keeps_the_declared_order():
    assert names([{'name': n} for n in 'cab']) == ['c', 'a', 'b']


def test_chain_and_string_and_compose_long_form():
    declared = [{'name': 'c', 'depends_on': {'b': {'condition': 'service_started'}}}, {'name': 'b', 'depends_on': 'a'}, {'name': 'a'}]
    assert names(declared) == ['a', 'b', 'c']


def test_unknown_dependency_is_named():
    with pytest.raises(AnsibleFilterError, match="'web' depends on 'db', which is not declared"):
        depends_order([{'name': 'web', 'depends_on': ['db']}])


def test_cycle_is_shown():
    declared = [{'name': 'x'}, {'name': 'a', 'depends_on': ['b']}, {'name': 'b', 'depends_on': ['c']}, {'name': 'c', 'depends_on': ['a']}]
    with pytest.raises(AnsibleFilterError, match='cycle: a -> b -> c -> a'):
        depends_order(declared)


def test_self_dependency_is_a_cycle():
    with pytest.raises(AnsibleFilterError, match='cycle: a -> a'):
        depends_order([{'name': 'a', 'depends_on': ['a']}])


@pytest.mark.parametrize('bad, message', [
    ([{'image': 'x'}], 'needs a name'),
    ([{'name': 'a'}, {'name': 'a'}], 'declared twice'),
    ([{'name': 'a', 'depends_on': [1]}], 'must be a list of container names'),
    ('a', 'expected a list'),
])
def test_bad_input_fails_clearly(bad, message):
    with pytest.raises(AnsibleFilterError, match=message):
        depends_order(bad)
