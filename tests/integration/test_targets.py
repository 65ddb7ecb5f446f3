# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs each integration target (tests/integration/targets/<name>) as a role over SSH."""
from __future__ import annotations

import os

import pytest

TARGETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'targets')

# A target runs here when its aliases file does not mark it for another lane.
NAMES = sorted(n for n in os.listdir(TARGETS)
               if 'realhost' not in open(os.path.join(TARGETS, n, 'aliases')).read().split())  # pylint: disable=consider-using-with


@pytest.mark.parametrize('target', NAMES)
def test_target(ansible, fresh_host, target, monkeypatch):  # pylint: disable=unused-argument
    monkeypatch.setenv('ANSIBLE_ROLES_PATH', TARGETS)
    res = ansible.playbook([{'hosts': 'testhosts', 'gather_facts': False, 'roles': [target]}])
    assert res.rc == 0 and not res.failed, repr(res)
