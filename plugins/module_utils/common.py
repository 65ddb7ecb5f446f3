# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every nsbox.runtime module shares: the host config, the library install, errors.

This is the only place where the runtime library meets Ansible: the library raises
typed errors, and :func:`fail` turns them into ``fail_json``.
"""
from __future__ import annotations

# First: importing bundle ships the whole library in each module's payload, and when this very library is
# installed on the host the rest of it is imported from there, compiled (bundle.use_installed). Nothing else of
# the library may be imported before: a module imported twice (payload and tree) would make two error classes.
from ._runtime import bundle, version  # noqa: I100  pylint: disable=wrong-import-order

bundle.use_installed(bundle.__name__.rpartition('.')[0], version.VERSION)

from ._runtime.host import config as hostconfig  # noqa: E402  pylint: disable=wrong-import-position
from ._runtime.host.install import LibraryInstall  # noqa: E402  pylint: disable=wrong-import-position

COMMON_ARGS = {
    'data_root': {'type': 'path'},
}


def host_config(module, **overrides):
    """The host configuration with this task's overrides (``data_root`` and any given)."""
    overrides.setdefault('data_root', module.params.get('data_root'))
    return hostconfig.load().override(**overrides)


def fail(module, exc, **result):
    """Fail the task with the library error's message: ``failed to <verb> <object>: <cause>``."""
    module.fail_json(msg=exc.message, error=exc.to_dict(), **result)


def finish(module, result, out, lib):
    """Exit with a library result: its fields, ``changed`` also when the library was installed, ``diff`` when asked."""
    diff = out.pop('diff')
    for warning in out.pop('warnings', None) or ():
        module.warn(warning)
    result.update(out)
    result['changed'] = out['changed'] or lib['changed']
    if module._diff:  # pylint: disable=protected-access
        result['diff'] = diff
    module.exit_json(**result)


def ensure_library(module):
    """Install or refresh the host-side library (never in check mode); returns its state."""
    lib = LibraryInstall()
    before = lib.installed()
    pending = lib.pending()
    if pending and not module.check_mode:
        lib.apply()
    return dict(lib.info(), changed=bool(pending), changes=pending, before=before)
