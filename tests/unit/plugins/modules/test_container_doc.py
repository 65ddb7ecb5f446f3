# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container module's DOCUMENTATION agrees with the option table it is generated from at run time:
the same options, types, elements and choices as the argument spec, and each row's doc line opening
the option's description (ansible-doc reads the file, so the text lives there; the table holds it to its row)."""
from __future__ import annotations

import os
import re

import pytest
import yaml

from ansible_collections.nsbox.runtime.plugins.module_utils import container_task
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
COMMON = ('data_root', 'state_dir')  # the common fragment's


def documented(module):
    with open(os.path.join(REPO, 'plugins', 'modules', module + '.py')) as f:
        return yaml.safe_load(re.search(r"DOCUMENTATION = r'''(.*?)'''", f.read(), re.S).group(1))['options']


def text(description):
    items = description if isinstance(description, list) else [description]
    return ' '.join(' '.join(str(i).split()) for i in items)


DOC = documented('container')


def test_the_documented_options_are_the_argument_spec():
    assert set(DOC) == set(container_task.argument_spec()) - set(COMMON)


@pytest.mark.parametrize('opt', options.TABLE, ids=lambda o: o.name)
def test_each_row_agrees_with_its_documentation(opt):
    doc = DOC[opt.name]
    assert doc.get('type') == opt.type
    assert doc.get('elements') == opt.elements
    assert doc.get('choices') == (list(opt.choices) if opt.choices else None)
    assert 'default' not in doc, 'a table option has no argspec default: not given is not the same as given'
    assert text(doc['description']).startswith(opt.doc), 'the doc line of %s opens its description' % opt.name


def test_every_row_says_how_it_updates_and_what_older_records_had():
    for opt in options.TABLE:
        assert opt.update in options.UPDATES and opt.compare in options.COMPARISONS
    # The fields records of schema 1 lacked, as they were before the table held them: none may go.
    assert options.ADDED_FIELDS == {
        'group_add': [], 'annotations': {}, 'shm_size': None, 'tty': False, 'interactive': False, 'ulimits': [], 'oom_score_adj': None,
        'sysctls': {}, 'restart_policy': {'name': 'no', 'max_retries': 0}, 'healthcheck': None, 'networks': [], 'published_ports': [],
        'dns': [], 'dns_search': [], 'dns_options': [], 'extra_hosts': {}, 'cap_add': [], 'cap_drop': [], 'privileged': False,
        'security_opt': {'no_new_privileges': True, 'seccomp': 'default'}, 'userns': {'mode': 'host', 'uid_map': None, 'gid_map': None},
        'supervisor': 'nsbox', 'enabled': True, 'depends_on': [], 'devices': []}


def test_the_module_description_names_the_live_and_stored_options():
    intro = text(documented_intro())
    for opt in options.TABLE:
        if opt.update in ('live', 'stored') and opt.name not in ('enabled', 'depends_on'):  # those two: the unit's, said under supervisor
            assert 'O(%s)' % opt.name in intro, '%s is changed without a recreate: the description says so' % opt.name


def documented_intro():
    with open(os.path.join(REPO, 'plugins', 'modules', 'container.py')) as f:
        return yaml.safe_load(re.search(r"DOCUMENTATION = r'''(.*?)'''", f.read(), re.S).group(1))['description']
