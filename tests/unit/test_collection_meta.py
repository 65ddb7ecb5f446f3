# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's metadata agrees with its code."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile

import pytest
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


# What a test, bench or editor run leaves in a checkout (relative paths; a trailing / makes a directory).
LITTER = ('.hypothesis/examples/ab/cd', '.pytest_cache/v/cache/lastfailed', 'tests/unit/.hypothesis/constants/x',
          'tests/.pytest_cache/README.md', 'plugins/module_utils/_runtime/__pycache__/store.cpython-311.pyc',
          'plugins/modules/container.pyc', 'tests/output/junit/x.xml', 'bench/results/20260101-000000/report.json',
          '.venv/bin/python', '.build/ansible_collections/nsbox/runtime/galaxy.yml', '.mypy_cache/3.11/x.json',
          '.ruff_cache/0.1/x', '.coverage', '.coverage.host.1.2', 'htmlcov/index.html', '.ansible/collections/x',
          'molecule/default/.ansible/tmp/x', 'roles/host/tasks/main.yml.swp', 'README.md~', '.tox/py311/x')
LITTER_DIRS = {'.hypothesis', '.pytest_cache', '__pycache__', '.venv', '.build', '.mypy_cache', '.ruff_cache', 'htmlcov', '.ansible',
               '.tox'}


def _ship(dest):
    """Copy what git would ship (tracked and new files, not ignored) to ``dest``; without git, the tree less its litter."""
    listing = subprocess.run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=REPO,
                             capture_output=True, check=False)
    if listing.returncode != 0:
        shutil.copytree(REPO, dest, symlinks=True, ignore=shutil.ignore_patterns(
            '.git', '.venv', '.build', '.hypothesis', '.pytest_cache', '__pycache__', '*.pyc', 'output', 'results'))
        return
    for rel in listing.stdout.decode().split('\0'):
        src = os.path.join(REPO, rel)
        if rel and os.path.lexists(src):
            os.makedirs(os.path.join(dest, os.path.dirname(rel)), exist_ok=True)
            shutil.copy2(src, os.path.join(dest, rel), follow_symlinks=False)


def test_the_built_tarball_holds_no_run_time_litter(tmp_path):
    """``ansible-galaxy collection build`` of a tree full of run-time litter ships none of it (galaxy.yml build_ignore),
    and still ships the collection. Built from a copy: the checkout is not touched."""
    tree = tmp_path / 'ansible_collections' / 'nsbox' / 'runtime'
    _ship(str(tree))
    for rel in LITTER:
        path = tree / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text('litter\n')
    galaxy = os.path.join(os.path.dirname(sys.executable), 'ansible-galaxy')
    if not os.path.exists(galaxy):
        galaxy = shutil.which('ansible-galaxy')
    if not galaxy:
        pytest.skip('ansible-galaxy is not installed')
    out = tmp_path / 'out'
    res = subprocess.run([galaxy, 'collection', 'build', '--output-path', str(out), str(tree)], capture_output=True,
                         text=True, timeout=300, check=False, env=dict(os.environ, ANSIBLE_NOCOLOR='1'))
    assert res.returncode == 0, res.stdout + res.stderr
    with tarfile.open(out / ('nsbox-runtime-%s.tar.gz' % VERSION)) as tar:
        names = tar.getnames()
    shipped = [n for n in names if n in LITTER or set(n.split('/')) & LITTER_DIRS or n.startswith(('tests/output', 'bench/results'))]
    assert shipped == [], shipped
    assert 'plugins/modules/container.py' in names and 'galaxy.yml' not in names and 'MANIFEST.json' in names
