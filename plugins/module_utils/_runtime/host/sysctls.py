# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's kernel parameters the runtime wants (``net.ipv4.ip_forward`` for bridge networking...):
kept across reboots in ``/etc/sysctl.d/90-nsbox.conf`` and set live where they differ.

The host module's ``sysctls`` option, in one module run: what a role did before with a copy, a
read per parameter, a ``sysctl -w`` per difference and a handler (four to six module runs on
every host of a fleet). Every key is checked (it must exist under ``/proc/sys``) before anything
is written, so a bad key changes nothing. Values compare as sysctl prints them: fields separated by
whitespace (``ping_group_range`` is ``0<TAB>2147483647``).
"""
from __future__ import annotations

import os
import re

from ..errors import ConfigError, NsboxError
from ..kernel.fsutil import OwnedFile, read_text

CONF = '/etc/sysctl.d/90-nsbox.conf'
HEADER = '# Written by nsbox.runtime.host\n'
_KEY = re.compile(r'^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+\Z')


def _norm(value):
    return ' '.join(str(value).split())


def text(values):
    """The file's content for ``values`` ({key: value})."""
    return HEADER + ''.join('%s = %s\n' % (key, _norm(value)) for key, value in sorted(values.items()))


def _path(key, proc, absent_ok=False):
    if not isinstance(key, str) or not _KEY.match(key):
        raise ConfigError('use', 'sysctl %r' % (key,), 'expected a dotted kernel parameter name like net.ipv4.ip_forward')
    path = os.path.join(proc, key.replace('.', '/'))
    if not os.path.isfile(path):
        if absent_ok:
            return None
        raise ConfigError('set', 'sysctl %s' % key, 'this kernel has no such parameter (%s)' % path)
    return path


def check(values, proc='/proc/sys', absent_ok=False):
    """Raise ConfigError for a key of ``values`` that is not a kernel parameter (``absent_ok``: as :func:`live`)."""
    for key in values:
        _path(key, proc, absent_ok)


def wanted(values):
    """``values`` as sysctl prints them (what :func:`live` reads once they are set)."""
    return {key: _norm(value) for key, value in values.items()}


def live(values, proc='/proc/sys', absent_ok=False):
    """The live value of each key of ``values``, as sysctl prints it. ``absent_ok``: a key the kernel does not have
    (yet: check mode, before the kernel module that makes it is loaded) is None instead of an error."""
    out = {}
    for key in values:
        path = _path(key, proc, absent_ok)
        out[key] = None if path is None else _norm(read_text(path) or '')
    return out


def _diff(values, conf, proc, absent_ok=False):
    """(what to do with the file: 'write', 'remove' or None, the keys to set live, their live values)."""
    now = live(values, proc, absent_ok)
    action = OwnedFile(conf, HEADER).action(text(values) if values else None)
    return action, [key for key in sorted(values) if now[key] != _norm(values[key])], now


def _described(values, conf, action, keys, now):
    changes = [('file', '%s %s' % (action, conf))] if action else []
    return changes + [('live', 'set %s = %s (was %s)' % (key, _norm(values[key]), 'not there yet' if now[key] is None else now[key]))
                      for key in keys]


def plan(values, conf=CONF, proc='/proc/sys', absent_ok=False):
    """(what :func:`apply` would change: [(kind, description)], the live values before, as :func:`live`); raises
    ConfigError on a bad key (nothing done). ``absent_ok``: as :func:`live`."""
    action, keys, now = _diff(values, conf, proc, absent_ok)
    return _described(values, conf, action, keys, now), now


def apply(values, conf=CONF, proc='/proc/sys'):
    """Write the file and the live values that differ; returns (the changes made, the live values before), as :func:`plan`."""
    action, keys, now = _diff(values, conf, proc)
    changes = _described(values, conf, action, keys, now)  # from the one read of the file and /proc/sys
    OwnedFile(conf, HEADER).apply(action, text(values))
    for key in keys:
        try:
            with open(_path(key, proc), 'w') as f:
                f.write(_norm(values[key]) + '\n')
        except OSError as exc:
            raise NsboxError.from_oserror('set', 'sysctl %s' % key, exc) from None
    return changes, now
