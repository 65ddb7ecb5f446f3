# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bench's framework: a measure, how its sides are run and summed up, and helpers the measures share.

A measure has one or more nsbox sides and one or more peers. Runs alternate (A B C ...,
A B C ...) so drift on a noisy machine hits every side alike; the result holds each side's
median, min-max and samples and its ratio to each peer's median. A measure whose samples are not
wall-clock times (memory, per-container start times within one series) gathers them itself in
``collect`` and says its ``unit``.
"""
from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from harness.podman import PrivatePodman, empty_dir as _empty_dir, run as _run, unmount_under as _unmount_under  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import
from harness import cgroupfs, images  # noqa: E402  pylint: disable=wrong-import-position
from harness.runner import AnsibleRunner, collections_path  # noqa: E402  pylint: disable=wrong-import-position
from harness.testhost import DATA_ROOT, TestHost  # noqa: E402  pylint: disable=wrong-import-position


class Measure:
    """One comparison: the sides in ``ours`` (nsbox) and ``peers``, each timed as its ``run_<side>`` method.

    ``prepare(side)`` runs untimed before each run of a side (e.g. to empty its store) and
    ``verify(side)`` untimed after it, raising when the run did not do the whole job.
    """

    name = ''
    detail = ''  # what exactly is measured, shown with the table (may be set by setup)
    ours = ('nsbox',)
    peers = ('peer',)
    labels = {}  # side -> name in the table
    runs = 7  # default number of timed runs per side
    unit = 's'  # of the samples; ratios are nsbox / peer either way (lower is better)
    collect = None  # or a method (runs) -> {side: [samples]} for measures that are not timed runs

    def extra(self):
        """More figures for the report (e.g. a fitted slope), after the runs."""
        return {}

    def setup(self):
        """Prepare every side (not timed)."""

    def teardown(self):
        """Undo setup (always called, also after a failed setup)."""

    def prepare(self, side):
        """Untimed, before each run of ``side``."""

    def verify(self, side):
        """Untimed, after each run of ``side``."""


class _OnTestHost(Measure):
    """Measures that need a private SSH test host with nsbox set up (its own data-root, whatever the machine's config says)."""

    def setup(self):
        self.host = TestHost('bench').start()
        # Its /etc and /usr/local are overlays on the machine's, where the demo or a person may have set nsbox up.
        self.host.ssh('rm -rf /etc/nsbox /usr/local/lib/nsbox /usr/local/bin/nsbox /usr/local/bin/nsbox-oci /run/nsbox')
        self.runner = AnsibleRunner([self.host])
        # the test host shares the machine's cgroupfs: a parent of the measure's own, removed at teardown
        self.cgroup_parent = '/nsbox-bench-host-%d' % os.getpid()
        res = self.runner.module('nsbox.runtime.host', {'data_root': DATA_ROOT, 'cgroup_parent': self.cgroup_parent})
        if res['_status'] == 'failed':
            raise RuntimeError('host set-up failed: %s' % res.get('msg'))

    def teardown(self):
        if getattr(self, 'runner', None):
            self.runner.close()
        if getattr(self, 'host', None):
            self.host.stop()
        if getattr(self, 'cgroup_parent', None):
            remove_cgroup_parent(self.cgroup_parent)


def remove_cgroup_parent(parent):
    """A measure's cgroup parent, in every hierarchy (empty once its containers are gone)."""
    for controller in os.listdir('/sys/fs/cgroup'):
        cgroupfs.remove_tree(os.path.join('/sys/fs/cgroup', controller, parent.lstrip('/')))


# Run on the "managed host" side: install the library (DESIGN D1, as the modules do) and load busybox into a store.
_LIBRARY_LOAD = (
    'import sys; sys.path.insert(0, sys.argv[1]); '
    'from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import config, install; '
    'install.LibraryInstall().apply(); '
    'from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image import images; '
    "images.load(config.HostConfig({'data_root': sys.argv[2], 'state_dir': sys.argv[3]}), sys.argv[4], name='busybox')")


class LibraryStore:
    """A data-root, state dir and cgroup parent of a measure's own, for measures that call the runtime library
    directly (``/usr/bin/python3 -c SCRIPT *args``): busybox loaded, the library installed as on a managed host."""

    def __init__(self, prefix):
        self.work = tempfile.mkdtemp(prefix=prefix, dir='/var/tmp')
        self.archive = images.FixtureImages('/var/tmp/nsbox-fixture-images').build().docker_archive
        self.cgroup_parent = '/nsbox-bench-%d' % os.getpid()
        self.args = [collections_path(self.work), os.path.join(self.work, 'data'), os.path.join(self.work, 'run'), self.cgroup_parent]
        _run(['/usr/bin/python3', '-c', _LIBRARY_LOAD] + self.args[:3] + [self.archive])

    def remove(self):
        """The cgroup parent in every hierarchy, then whatever is mounted below the work dir, then the dir."""
        remove_cgroup_parent(self.cgroup_parent)
        _unmount_under(self.work)
        shutil.rmtree(self.work, ignore_errors=True)


def run_measure(measure, runs=None):
    """Time every side ``runs`` times (after one untimed warm-up round), sides alternating within each round."""
    runs = runs or measure.runs
    sides = list(measure.ours) + list(measure.peers)
    times = {side: [] for side in sides}
    try:
        measure.setup()
        if measure.collect:
            times = measure.collect(runs)
        for round_no in range(0 if measure.collect else runs + 1):  # round 0 warms up and is not counted
            for side in sides:
                measure.prepare(side)
                start = time.perf_counter()
                getattr(measure, 'run_' + side)()
                elapsed = time.perf_counter() - start
                measure.verify(side)
                if round_no:
                    times[side].append(elapsed)
    finally:
        measure.teardown()
    medians = {side: statistics.median(times[side]) for side in sides}
    return {'measure': measure.name, 'detail': measure.detail, 'runs': runs, 'peers': list(measure.peers), 'unit': measure.unit,
            'extra': measure.extra(),
            'sides': [{'side': side, 'label': measure.labels.get(side, side), 'nsbox': side in measure.ours, 'median': medians[side],
                       'min': min(times[side]), 'max': max(times[side]), 'times': times[side]} for side in sides],
            'ratios': {side: {peer: medians[side] / medians[peer] for peer in measure.peers} for side in sides}}


def format_result(result):
    """One measure's table: a row per side, and per peer a column of ratios (this side's median / the peer's)."""
    unit = result.get('unit', 's')
    width = max(len(s['label']) for s in result['sides'])
    lines = ['%s, %d runs%s' % (result['measure'], result['runs'], ': ' + result['detail'] if result['detail'] else ''),
             '  %-*s %10s %19s' % (width, 'side', 'median', 'min-max') + ''.join('  %14s' % ('/ ' + p) for p in result['peers'])]
    for s in result['sides']:
        lines.append('  %-*s %8.3f%-2s %19s' % (width, s['label'], s['median'], unit, '%.3f-%.3f' % (s['min'], s['max']))
                     + ''.join('  %14.2f' % result['ratios'][s['side']][p] for p in result['peers']))
    lines += ['  %s: %s' % (key, value) for key, value in sorted(result.get('extra', {}).items())]
    return '\n'.join(lines)


def write_chart(result, path):
    """A PNG per measure: each side's median as a bar with its min-max range, nsbox and peers in two colours."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use('Agg')
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel
    sides = result['sides']
    fig, axes = pyplot.subplots(figsize=(8, 1.2 + 0.6 * len(sides)))
    try:
        medians = [s['median'] for s in sides]
        spans = [[s['median'] - s['min'] for s in sides], [s['max'] - s['median'] for s in sides]]
        axes.barh(range(len(sides)), medians, xerr=spans, capsize=4, color=['#2b7bba' if s['nsbox'] else '#b0b0b0' for s in sides])
        axes.set_yticks(range(len(sides)), [s['label'] for s in sides])
        axes.invert_yaxis()
        axes.set_xlabel('median, min-max (%s; lower is better)' % result.get('unit', 's'))
        axes.set_title(result['measure'], fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        pyplot.close(fig)
