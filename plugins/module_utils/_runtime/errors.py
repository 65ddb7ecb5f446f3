# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors of the runtime library.

The library never formats Ansible results: it raises these, and the module (or CLI)
turns them into ``failed to <action> <object>: <cause>``.
"""
from __future__ import annotations

import errno as _errno
import os


class NsboxError(Exception):
    """Base error: what was being done, to which object, and why it failed."""

    def __init__(self, action, obj, cause, path=None, errno=None):
        self.action = action
        self.obj = obj
        self.cause = cause
        self.path = path
        self.errno = errno
        super().__init__(self.message)

    @property
    def message(self):
        return 'failed to %s %s: %s' % (self.action, self.obj, self.cause)

    def to_dict(self):
        return {'action': self.action, 'object': self.obj, 'cause': str(self.cause),
                'path': self.path, 'errno': _errno.errorcode.get(self.errno) if self.errno else None}

    @classmethod
    def from_dict(cls, data, action='run', obj='nsbox'):
        """The error :meth:`to_dict` wrote (another process's), as ``cls``; ``action``/``obj`` where it names none."""
        code = data.get('errno')
        return cls(data.get('action') or action, data.get('object') or obj, data.get('cause') or 'unknown error', path=data.get('path'),
                   errno=getattr(_errno, code, None) if isinstance(code, str) else code)

    @classmethod
    def from_oserror(cls, action, obj, exc):
        """Build from an OSError, keeping its errno and path."""
        cause = exc.strerror or str(exc)
        path = getattr(exc, 'filename', None)
        if path:
            cause = '%s (%s)' % (cause, os.fsdecode(path))
        return cls(action, obj, cause, path=path, errno=exc.errno)


class ConfigError(NsboxError):
    """The host configuration or an option is invalid."""


class SchemaError(NsboxError):
    """A state file was written by a newer nsbox, or is malformed."""


class InstallError(NsboxError):
    """The library could not be installed on the host."""


class SyscallError(NsboxError):
    """A kernel call failed."""


class CgroupError(NsboxError):
    """A cgroup could not be read, written, created or removed."""
