# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test callback: records every task result as JSON in the file named by $NSBOX_RESULTS."""
from __future__ import annotations

DOCUMENTATION = r'''
name: nsbox_results
type: aggregate
short_description: Record task results for the nsbox test harness
description:
  - Writes a JSON list of per-host task results to the file named by E(NSBOX_RESULTS).
requirements:
  - enabled in ansible.cfg (callbacks_enabled)
'''

import json
import os

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = 'aggregate'
    CALLBACK_NAME = 'nsbox_results'
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.results = []

    def _record(self, result, status):
        self.results.append({'host': result._host.get_name(), 'task': result._task.get_name(),  # pylint: disable=protected-access
                             'action': result._task.action, 'status': status,  # pylint: disable=protected-access
                             'result': self._convert(result._result)})  # pylint: disable=protected-access

    @staticmethod
    def _convert(data):
        return json.loads(json.dumps(data, default=str))

    def v2_runner_on_ok(self, result):
        self._record(result, 'changed' if result._result.get('changed') else 'ok')  # pylint: disable=protected-access

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, 'ignored' if ignore_errors else 'failed')

    def v2_runner_on_skipped(self, result):
        self._record(result, 'skipped')

    def v2_runner_on_unreachable(self, result):
        self._record(result, 'unreachable')

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get('NSBOX_RESULTS')
        if path:
            with open(path, 'w') as f:
                json.dump(self.results, f, indent=1)
