# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nsbox benchmarks: each measure times nsbox and a peer side by side in one run.

Runs alternate (A B A B ...) so drift on a noisy machine hits both sides alike; the
table shows medians, min-max and the ratio nsbox / peer, and a JSON report is written
to bench/results/. Add a measure by subclassing :class:`Measure` and listing it in
MEASURES. Performance claims live here, never in timed tests.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from harness.runner import AnsibleRunner  # noqa: E402  pylint: disable=wrong-import-position
from harness.testhost import TestHost  # noqa: E402  pylint: disable=wrong-import-position


class Measure:
    """One comparison: ``run_a`` is nsbox, ``run_b`` the peer; both return when done."""

    name = ''
    a_label = 'nsbox'
    b_label = 'peer'
    unit = 's'

    def setup(self):
        """Prepare both sides (not timed)."""

    def teardown(self):
        """Undo setup (always called)."""

    def run_a(self):
        raise NotImplementedError

    def run_b(self):
        raise NotImplementedError


class _OnTestHost(Measure):
    """Measures that need a private SSH test host with nsbox set up."""

    def setup(self):
        self.host = TestHost('bench').start()
        self.runner = AnsibleRunner([self.host])
        res = self.runner.module('nsbox.runtime.host')
        if res['_status'] == 'failed':
            raise RuntimeError('host set-up failed: %s' % res.get('msg'))

    def teardown(self):
        if getattr(self, 'runner', None):
            self.runner.close()
        if getattr(self, 'host', None):
            self.host.stop()


class HostNoop(_OnTestHost):
    name = 'host module no-op over SSH'
    b_label = 'ansible.builtin.ping (floor)'

    def run_a(self):
        assert self.runner.module('nsbox.runtime.host')['_status'] == 'ok'

    def run_b(self):
        assert self.runner.module('ansible.builtin.ping')['_status'] == 'ok'


class CliStart(_OnTestHost):
    name = 'nsbox version (host CLI start-up)'
    b_label = 'python3 -I -c pass (floor)'

    def run_a(self):
        subprocess.run(['nsbox', 'version'], check=True, stdout=subprocess.DEVNULL, env=self._env())

    def run_b(self):
        subprocess.run(['/usr/bin/python3', '-I', '-c', 'pass'], check=True)

    def setup(self):
        super().setup()
        # Run the CLI the test host installed, from the machine (same kernel, same files).
        self.bin = os.path.join(self.host.workdir, 'ov', '1', 'upper', 'bin')

    def _env(self):
        return dict(os.environ, PATH='%s:%s' % (self.bin, os.environ['PATH']))


MEASURES = {'host-noop': HostNoop, 'cli-start': CliStart}


def run_measure(measure, runs):
    times = {'a': [], 'b': []}
    measure.setup()
    try:
        measure.run_a()  # warm-up, untimed
        measure.run_b()
        for _run in range(runs):
            for side in ('a', 'b'):
                start = time.perf_counter()
                getattr(measure, 'run_' + side)()
                times[side].append(time.perf_counter() - start)
    finally:
        measure.teardown()
    med_a, med_b = statistics.median(times['a']), statistics.median(times['b'])
    return {'measure': measure.name, 'a': measure.a_label, 'b': measure.b_label, 'runs': runs,
            'a_median': med_a, 'b_median': med_b, 'a_min': min(times['a']), 'a_max': max(times['a']),
            'b_min': min(times['b']), 'b_max': max(times['b']), 'ratio': med_a / med_b, 'times': times}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('measures', nargs='*', choices=[[]] + sorted(MEASURES), help='default: all')
    parser.add_argument('--runs', type=int, default=7)
    args = parser.parse_args()
    results = [run_measure(MEASURES[name](), args.runs) for name in (args.measures or sorted(MEASURES))]
    print('%-36s %-30s %-28s %8s' % ('measure', 'nsbox median (min-max)', 'peer median (min-max)', 'ratio'))
    for r in results:
        print('%-36s %-30s %-28s %8.2f' % (
            r['measure'], '%.3fs (%.3f-%.3f)' % (r['a_median'], r['a_min'], r['a_max']),
            '%.3fs (%.3f-%.3f) %s' % (r['b_median'], r['b_min'], r['b_max'], r['b']), r['ratio']))
    out = os.path.join(REPO, 'bench', 'results')
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, 'bench-%s.json' % time.strftime('%Y%m%dT%H%M%S'))
    with open(path, 'w') as f:
        json.dump(results, f, indent=1)
    print('report: %s' % path)


if __name__ == '__main__':
    main()
