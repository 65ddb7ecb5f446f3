# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""kernel/signals.py: one parser of signals for stop_signal, nsbox kill and the OCI kill verb."""
from __future__ import annotations

import signal

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import signals
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.oci import runtime


@pytest.mark.parametrize('text', ['SIGTERM', 'TERM', 'term', ' sigterm ', '15', 15])
def test_the_forms_people_write(text):
    assert signals.number(text) == signal.SIGTERM and signals.name(text) == 'SIGTERM'


def test_realtime_signals_by_number_have_no_stored_name():
    rt = int(signal.SIGRTMIN) + 3
    assert signals.number(str(rt)) == rt
    with pytest.raises(ConfigError, match='not a signal name or number'):
        signals.name(rt, 'stop_signal')


@pytest.mark.parametrize('bad', ['', 'NOPE', 'SIG_DFL', '0', '999', '-1'])
def test_what_is_not_a_signal(bad):
    with pytest.raises(ConfigError, match='not a signal name or number'):
        signals.number(bad)


def test_every_front_parses_alike():
    assert options.check({'stop_signal': 'quit'})['stop_signal'] == 'SIGQUIT'
    assert runtime.parse_signal('quit') == signal.SIGQUIT
    with pytest.raises(ConfigError, match="stop_signal 'NOPE'"):
        options.check({'stop_signal': 'NOPE'})
