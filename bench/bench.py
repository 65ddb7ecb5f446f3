# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""nsbox benchmarks: each measure times nsbox and its peers side by side in one run.

Runs alternate between the sides of a measure (A B C ..., A B C ...) so drift on a noisy
machine hits every side alike; the table shows each side's median and min-max and its ratio
to each peer's median. A JSON report and a PNG chart per measure go to bench/results/<time>/.
Add a measure by subclassing common.Measure in a measures_* module and listing it in MEASURES.
Performance claims live here, never in timed tests.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from common import REPO, format_result, run_measure, write_chart  # noqa: E402  pylint: disable=wrong-import-position
import measures_ansible  # noqa: E402  pylint: disable=wrong-import-position
import measures_basic  # noqa: E402  pylint: disable=wrong-import-position
import measures_density  # noqa: E402  pylint: disable=wrong-import-position
import measures_fleet  # noqa: E402  pylint: disable=wrong-import-position
import measures_oci  # noqa: E402  pylint: disable=wrong-import-position

MEASURES = {
    'host-noop': measures_basic.HostNoop, 'cli-start': measures_basic.CliStart, 'image-pull': measures_basic.ImagePull,
    'bridge-run': measures_basic.BridgeRun, 'module-start': measures_ansible.ModuleStart,
    'noop-converge': measures_ansible.NoopConverge, 'supervisor-memory': measures_density.SupervisorMemory,
    'start-slope': measures_density.StartSlope, 'oci': measures_oci.OciLifecycle, 'fleet-converge': measures_fleet.FleetConverge,
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('measures', nargs='*', choices=[[]] + sorted(MEASURES), help='default: all')
    parser.add_argument('--runs', type=int, help='timed runs per side (default: each measure\'s own)')
    args = parser.parse_args()
    out = os.path.join(REPO, 'bench', 'results', time.strftime('%Y%m%dT%H%M%S'))
    os.makedirs(out, exist_ok=True)
    results, failed = [], []
    begun = time.monotonic()
    for name in args.measures or sorted(MEASURES):
        started = time.monotonic()
        try:
            results.append(dict(run_measure(MEASURES[name](), args.runs), key=name))
            results[-1]['bench_seconds'] = round(time.monotonic() - started, 1)
        except Exception:  # pylint: disable=broad-except  # one broken measure must not hide the others
            failed.append(name)
            print('%s: FAILED\n%s' % (name, traceback.format_exc()), flush=True)
            continue
        print(format_result(results[-1]) + '\n  (%.0f s)\n' % results[-1]['bench_seconds'], flush=True)
        try:
            write_chart(results[-1], os.path.join(out, name + '.png'))
        except ImportError:
            print('(no chart: matplotlib is not installed)')
    path = os.path.join(out, 'report.json')
    with open(path, 'w') as f:
        json.dump(results, f, indent=1)
    print('report and charts: %s (all measures: %.0f s)' % (out, time.monotonic() - begun))
    if failed:
        sys.exit('failed measures: %s' % ', '.join(failed))


if __name__ == '__main__':
    main()
