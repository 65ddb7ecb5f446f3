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


def _hypothesis_profile():
    """No wall-clock limits on property tests: CI machines are shared and slow at times.

    Hypothesis's per-example deadline and its "input generation is slow" health check measure
    the machine's load, not the code: they made the unit suite fail on a loaded 2-core host.
    Loaded before the test modules are imported, so their own @settings inherit it.
    """
    try:
        from hypothesis import HealthCheck, settings
    except ImportError:  # sanity's environments have no hypothesis
        return
    settings.register_profile('nsbox', deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile('nsbox')


_hypothesis_profile()
