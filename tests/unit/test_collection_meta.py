# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's metadata agrees with its code."""
from __future__ import annotations

import os

import yaml

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.version import VERSION

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _yaml(*parts):
    with open(os.path.join(REPO, *parts)) as f:
        return yaml.safe_load(f)


def test_version_matches_galaxy():
    assert _yaml('galaxy.yml')['version'] == VERSION


def test_action_group_all_lists_every_module():
    modules = sorted(n[:-3] for n in os.listdir(os.path.join(REPO, 'plugins', 'modules')) if n.endswith('.py'))
    assert sorted(_yaml('meta', 'runtime.yml')['action_groups']['all']) == modules
