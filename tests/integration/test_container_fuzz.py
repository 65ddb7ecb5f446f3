# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generated container options against the real library: bad input is refused and leaves nothing.

Hypothesis draws option sets from the option table (right and wrong types, values near the
edges, unknown keys) and hands them to ``service.ensure`` on this machine, with a data-root of
the test's own. Either the container is created (then removed), or a ConfigError names the
problem and there is no container, no container directory, no cgroup and no mount: bad input
changes nothing. (The parser alone is fuzzed harder in the unit tests.)
"""
from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, event, given, settings, strategies as st

from harness import images
from harness.containers import FIXTURE_CACHE, LAYOUT, cgroup_roots, library_host
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options, converge
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or LAYOUT is None or LAYOUT.mode == 'v2', reason='root on a v1/hybrid host')

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2, 300000), st.floats(-1, 2000, allow_nan=False),
                    st.sampled_from(['', '0', '64m', '1k', '-1', 'host', 'none', 'private', 'container:x', 'ns:', '/a:/b', 'nofile:1:2',
                                     'SIGTERM', 'sleep 1', '../x', 'a b', 'net.core.somaxconn', 'kernel.panic']))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=3),
                   st.dictionaries(st.sampled_from(['type', 'source', 'target', 'driver', 'max_size', 'net.core.somaxconn', 'A', 'bogus']),
                                   SCALARS, max_size=3))
OPTION_SETS = st.dictionaries(st.sampled_from(sorted(set(options.OPTIONS) - {'image', 'env_file'}) + ['bogus']), VALUES, min_size=1, max_size=4)


@pytest.fixture(scope='module')
def lib(reaper):
    with library_host(images.FixtureImages(FIXTURE_CACHE).build(), reaper) as (cfg, base, data):
        yield cfg, base, data


def _traces(cfg, parent):
    containers = [n for n in os.listdir(os.path.join(cfg.data_root, 'containers')) if not n.startswith('.')] \
        if os.path.isdir(os.path.join(cfg.data_root, 'containers')) else []
    cgroups = [os.path.join(r, parent.lstrip('/'), d) for r in cgroup_roots() if os.path.isdir(os.path.join(r, parent.lstrip('/')))
               for d in os.listdir(os.path.join(r, parent.lstrip('/'))) if os.path.isdir(os.path.join(r, parent.lstrip('/'), d))]
    with open('/proc/self/mountinfo') as f:
        mounts = [ln.split()[4] for ln in f if ln.split()[4].startswith(cfg.data_root)]
    return {'containers': containers, 'cgroups': cgroups, 'mounts': mounts}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(opts=OPTION_SETS)
def test_generated_options_are_refused_cleanly_or_converge(lib, opts):
    cfg, _base, data = lib
    args = dict(opts, image='busybox')
    try:
        out = converge.ensure(cfg, 'fuzz', args, state='present')
    except ConfigError as exc:
        event('refused')
        assert exc.message and exc.to_dict()['cause'], exc
        assert _traces(cfg, data['cgroup_parent']) == {'containers': [], 'cgroups': [], 'mounts': []}, (opts, exc.message)
        return
    event('created')
    assert out['changed'] and out['container']['name'] == 'fuzz'
    converge.ensure(cfg, 'fuzz', state='absent')
    assert _traces(cfg, data['cgroup_parent']) == {'containers': [], 'cgroups': [], 'mounts': []}
