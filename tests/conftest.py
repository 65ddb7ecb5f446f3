# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make this checkout importable as ``ansible_collections.nsbox.runtime`` for the tests."""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)


def _collection_on_path():
    tmp = tempfile.mkdtemp(prefix='nsbox-coll-')
    atexit.register(shutil.rmtree, tmp, True)
    ns = os.path.join(tmp, 'ansible_collections', 'nsbox')
    os.makedirs(ns)
    os.symlink(REPO, os.path.join(ns, 'runtime'))
    sys.path.insert(0, tmp)


_collection_on_path()
sys.path.insert(0, TESTS)  # the harness package
