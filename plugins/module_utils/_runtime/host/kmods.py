# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The kernel modules the runtime needs (``overlay`` for the overlay driver, ``br_netfilter`` for
bridge networking): loaded with ``modprobe`` where missing and listed in
``/etc/modules-load.d/nsbox.conf``, so systemd-modules-load loads them at boot.

The host module's ``kernel_modules`` option, in one module run: what a role did before with a
``stat`` per module, a ``modprobe`` per missing one and a ``copy`` (four or more module runs on
every host of a fleet). A module counts as present when the kernel shows it under
``/sys/module`` or lists it as built in (``modules.builtin``: a built-in module without
parameters has no ``/sys/module`` entry). Names are checked before anything is done; a module
``modprobe`` cannot load fails the task with modprobe's own words and the file is left as it was.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

from ..errors import ConfigError, NsboxError
from ..kernel.fsutil import OwnedFile

CONF = '/etc/modules-load.d/nsbox.conf'
HEADER = '# Written by nsbox.runtime.host\n'
_NAME = re.compile(r'^[A-Za-z0-9_-]+\Z')


def _check(names):
    for name in names:
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError('use', 'kernel module %r' % (name,), 'expected a module name like br_netfilter')


def text(names):
    """The file's content for ``names``."""
    return HEADER + ''.join('%s\n' % name for name in names)


def _builtin(path):
    """Names of the modules built into the running kernel (from its modules.builtin; none if that is absent)."""
    try:
        with open(path or '/lib/modules/%s/modules.builtin' % os.uname().release) as f:
            return {os.path.basename(line.strip())[:-len('.ko')].replace('-', '_') for line in f if line.strip().endswith('.ko')}
    except OSError:
        return set()


def present(names, sys_module='/sys/module', builtin_list=None):
    """{name: whether the running kernel has it (loaded or built in)}; a dash and an underscore are the same."""
    _check(names)
    out, builtin = {}, None
    for name in names:
        key = name.replace('-', '_')
        if os.path.isdir(os.path.join(sys_module, key)):
            out[name] = True
            continue
        if builtin is None:
            builtin = _builtin(builtin_list)
        out[name] = key in builtin
    return out


def _diff(names, load, conf, sys_module, builtin_list):
    """(the file: 'write', 'remove' or None, the modules to load, {name: present now})."""
    now = present(names, sys_module, builtin_list)
    if not load:
        return None, [], now
    action = OwnedFile(conf, HEADER).action(text(names) if names else None)
    return action, [name for name in names if not now[name]], now


def _described(conf, action, to_load):
    return [('load', 'load kernel module %s' % name) for name in to_load] + ([('file', '%s %s' % (action, conf))] if action else [])


def plan(names, load=True, conf=CONF, sys_module='/sys/module', builtin_list=None):
    """(what :func:`apply` would change: [(kind, description)], {name: present now}). With ``load`` false
    nothing is ever changed: the caller reports the modules that are missing."""
    action, to_load, now = _diff(names, load, conf, sys_module, builtin_list)
    return _described(conf, action, to_load), now


def apply(names, load=True, conf=CONF, sys_module='/sys/module', builtin_list=None, modprobe=None):
    """Load the missing modules, then write the file (as :func:`plan`, with the changes made). A module that does
    not load raises NsboxError before the file is written."""
    action, to_load, now = _diff(names, load, conf, sys_module, builtin_list)
    if to_load and modprobe is None:
        modprobe = shutil.which('modprobe', path=os.pathsep.join([os.environ.get('PATH', ''), '/usr/sbin', '/sbin'])) or 'modprobe'
    for name in to_load:
        try:
            proc = subprocess.run([modprobe, '--', name], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True, check=False)
        except OSError as exc:
            raise NsboxError.from_oserror('load', 'kernel module %s' % name, exc) from None
        if proc.returncode != 0:
            raise NsboxError('load', 'kernel module %s' % name,
                             'modprobe exited %d: %s' % (proc.returncode, proc.stderr.strip() or proc.stdout.strip()))
    OwnedFile(conf, HEADER).apply(action, text(names))
    return _described(conf, action, to_load), now
