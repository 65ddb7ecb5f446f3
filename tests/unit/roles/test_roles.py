# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The roles pass every module option through and validate exactly those (no option silently lost)."""
from __future__ import annotations

import os
import re

import pytest
import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
ROLES = os.path.join(REPO, 'roles')
# The modules' options the role sets itself, per module: nothing for the user to declare.
ROLE_OWNED = {'data_root'}


def module_options(module):
    with open(os.path.join(REPO, 'plugins', 'modules', module + '.py')) as f:
        doc = re.search(r"DOCUMENTATION = r'''(.*?)'''", f.read(), re.S).group(1)
    return set(yaml.safe_load(doc)['options'])


def load(*path):
    with open(os.path.join(ROLES, *path)) as f:
        return yaml.safe_load(f)


def task_args(tasks, module):
    found = [t['nsbox.runtime.' + module] for t in tasks if 'nsbox.runtime.' + module in t]
    assert len(found) == 1, 'one %s task in roles/containers/tasks/main.yml' % module
    return found[0]


@pytest.mark.parametrize('module, var', [('image', 'nsbox_images'), ('network', 'nsbox_networks'),
                                         ('volume', 'nsbox_volumes'), ('container', 'nsbox_containers')])
def test_containers_role_passes_and_validates_every_option(module, var):
    options = module_options(module)
    tasks = load('containers', 'tasks', 'main.yml')
    if module == 'container':  # declared containers go whole to the containers module, which takes container's options
        args = task_args(tasks, 'containers')
        # converge: false is only the prune step's (tasks/prune.yml)
        assert args['containers'] == '{{ %s }}' % var and set(args) - ROLE_OWNED == module_options('containers') - {'converge'}
        options -= ROLE_OWNED
    else:
        args = task_args(tasks, module)
        assert set(args) - ROLE_OWNED == options
    spec = load('containers', 'meta', 'argument_specs.yml')['argument_specs']['main']['options'][var]['options']
    assert set(spec) == options


def test_host_role_passes_host_module_options():
    args = [t['nsbox.runtime.host'] for t in load('host', 'tasks', 'main.yml') if 'nsbox.runtime.host' in t][0]
    assert set(args) == module_options('host') | {'data_root'}  # data_root: the common doc fragment's


@pytest.mark.parametrize('role', ['host', 'containers'])
def test_every_default_is_validated(role):
    defaults = load(role, 'defaults', 'main.yml')
    spec = load(role, 'meta', 'argument_specs.yml')['argument_specs']['main']['options']
    assert set(defaults) <= set(spec)
    assert load(role, 'meta', 'main.yml')['galaxy_info']['platforms']
