# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signals as people write them: 'SIGTERM', 'TERM', 'term' or 15. One parser for every front
(a container's ``stop_signal``, ``nsbox kill``, the OCI ``kill`` verb)."""
from __future__ import annotations

import signal

from ..errors import ConfigError

HINT = 'not a signal name or number (e.g. SIGTERM, TERM, 15)'


def number(value, what='signal'):
    """The signal's number; any the kernel has (realtime ones by number too)."""
    text = str(value).strip().upper()
    if text.isdigit():
        if int(text) in signal.valid_signals():
            return int(text)
    else:
        name = text if text.startswith('SIG') else 'SIG' + text
        if name in signal.Signals.__members__ and not name.startswith('SIG_'):
            return int(signal.Signals[name])
    raise ConfigError('use', '%s %r' % (what, value), HINT)


def name(value, what='signal'):
    """The stored form of a signal: its name ('SIGTERM'); a number without a name is refused."""
    try:
        return signal.Signals(number(value, what)).name
    except ValueError:
        raise ConfigError('use', '%s %r' % (what, value), HINT) from None
