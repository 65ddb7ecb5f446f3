# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sizes and CPU amounts written the way Docker takes them: ``512m``, ``1g``, ``1.5``.

Sizes are binary (``1k`` = 1024), case-insensitive, with an optional ``b``/``ib`` after
the unit (``512mb``, ``2GiB``) and an optional fraction (``1.5g``); a bare number is bytes.
``-1`` and ``max`` mean "no limit" where a limit can be lifted.
"""
from __future__ import annotations

import math
import re

from ..errors import ConfigError

_SIZE = re.compile(r'^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgtp]?)(i?b)?\s*\Z', re.IGNORECASE)
_FACTOR = {'': 1, 'k': 1 << 10, 'm': 1 << 20, 'g': 1 << 30, 't': 1 << 40, 'p': 1 << 50}
UNLIMITED = -1
MAX_SIZE = (1 << 63) - 1


def parse_size(value, what='size', allow_unlimited=False):
    """``'512m'`` -> 536870912. ints pass through. ``-1``/``'max'`` -> UNLIMITED when allowed."""
    if isinstance(value, bool):
        raise ConfigError('parse', what, 'expected a size such as 512m or 1g, not %r' % (value,))
    if allow_unlimited and (value == UNLIMITED or (isinstance(value, str) and value.strip().lower() in ('-1', 'max', 'unlimited'))):
        return UNLIMITED
    if isinstance(value, int):
        if value < 0:
            raise ConfigError('parse', what, 'a size cannot be negative (%d)' % value)
        return _in_range(value, what, value)
    match = _SIZE.match(str(value))
    if not match:
        raise ConfigError('parse', what, 'expected a size such as 512m, 1g or 1048576, not %r' % (value,))
    number, unit, suffix = match.groups()
    if suffix and suffix.lower() == 'b' and not unit and '.' in number:
        raise ConfigError('parse', what, 'a number of bytes cannot have a fraction (%r)' % (value,))
    size = float(number) * _FACTOR[unit.lower()] if '.' in number else int(number) * _FACTOR[unit.lower()]
    return _in_range(int(size), what, value)


def _in_range(size, what, given):
    """A size the kernel holds (a signed 64-bit count): a larger one would wrap (2^64 + 64m read as 64m)."""
    if size > MAX_SIZE:
        raise ConfigError('parse', what, '%r is more than the kernel can hold (%d bytes)' % (given, MAX_SIZE))
    return size


def parse_cpus(value, what='cpus'):
    """``'1.5'`` -> 1.5 CPUs; at least 0.01 (a 1 ms quota in a 100 ms period), at most 1024."""
    try:
        cpus = float(value)
    except (TypeError, ValueError):
        cpus = None
    if isinstance(value, bool) or cpus is None or math.isnan(cpus):
        raise ConfigError('parse', what, 'expected a number of CPUs such as 0.5 or 2, not %r' % (value,))
    if not 0.01 <= cpus <= 1024:
        raise ConfigError('parse', what, '%r is out of range (0.01 to 1024 CPUs)' % (value,))
    return cpus


def format_size(size):
    """536870912 -> '512m' (exact binary units only), -1 -> 'max'."""
    if size == UNLIMITED:
        return 'max'
    for unit in 'ptgmk':
        if size and size % _FACTOR[unit] == 0:
            return '%d%s' % (size // _FACTOR[unit], unit)
    return str(size)
