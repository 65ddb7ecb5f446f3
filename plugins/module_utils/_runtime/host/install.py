# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installing the library on a host as one zipapp (DESIGN D1).

A module's payload is deleted when the module returns, so whatever must keep running
(supervisors, systemd units, the CLIs) execs an installed copy instead:
``/usr/local/lib/nsbox/nsbox-<version>-<sha>.pyz`` with ``current.pyz`` pointing at
it and the wrappers ``/usr/local/bin/nsbox`` and ``/usr/local/bin/nsbox-oci`` (the OCI runtime
command line: ``nsbox oci``, a path that podman's ``--runtime`` can take). The zipapp is built from the running
library's own source, byte for byte reproducibly, so "already installed" is a hash
comparison; every write is atomic and done under a lock.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pkgutil
import shutil
import sys
import zipfile

from . import codecache
from ..errors import InstallError
from ..kernel.fsutil import atomic_symlink, atomic_write, locked, makedirs
from ..version import VERSION

LIB_DIR = codecache.LIB_DIR
BIN_PATH = '/usr/local/bin/nsbox'
OCI_NAME = 'nsbox-oci'  # beside BIN_PATH
PACKAGE = 'nsbox_runtime'
KEEP = 3  # installed versions kept for processes still running an older one
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)
_LIBRARY_PACKAGE = __package__.rpartition('.')[0]  # _runtime: this file lives in its host/ room
_MAIN = (b'import sys\nfrom nsbox_runtime.host import codecache\ncodecache.install(sys.argv[0])\n'
         b'from nsbox_runtime.cli.main import main\nmain()\n')


def library_argv(args, library=None, what='a runtime process'):
    """The command line of a long-lived process: the installed zipapp (D1), never a module's payload."""
    pyz = library or os.path.realpath(os.path.join(LIB_DIR, 'current.pyz'))
    if not os.path.isfile(pyz):
        raise InstallError('start', what, 'the nsbox library is not installed at %s (every nsbox module installs it)' % pyz, path=pyz)
    python = sys.executable if sys.executable and os.path.isabs(sys.executable) else '/usr/bin/python3'
    return [python, '-I', pyz] + list(args)


def _add(zf, name, data):
    info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    info.compress_type = zipfile.ZIP_STORED  # built by every module run: deflating it cost 40 ms a task
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def build_pyz():
    """The zipapp's bytes, built from this very library (deterministic)."""
    # Imported here: bundle imports this module.
    from .. import bundle  # pylint: disable=import-outside-toplevel

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w') as zf:
        _add(zf, '__main__.py', _MAIN)
        for name in sorted(bundle.MODULES):
            data = pkgutil.get_data(_LIBRARY_PACKAGE, name + '.py')
            if data is None:
                raise InstallError('build', 'the nsbox zipapp', 'source of %s.py is not readable' % name)
            _add(zf, '%s/%s.py' % (PACKAGE, name), data)
    return buf.getvalue()


def wrapper_script(current, python, verb=None):
    """The ``nsbox`` command. It resolves ``current.pyz`` once, before Python starts:
    zipimport re-opens its archive by path for every import, so a process that ran
    ``current.pyz`` itself could read half of one version and half of the next when
    an install flips the link under it. A versioned file never changes. ``verb``: put
    before the arguments (``oci`` for ``nsbox-oci``)."""
    return ('#!/bin/sh\n# nsbox %s: managed by nsbox.runtime, do not edit\nexec %s -I "$(readlink -f %s)" %s"$@"\n'
            % (VERSION, python, current, verb + ' ' if verb else '')).encode()


class LibraryInstall:
    """The desired install of this library on this host, and how far the host is from it."""

    def __init__(self, lib_dir=LIB_DIR, bin_path=BIN_PATH, python=None):
        self.lib_dir = lib_dir
        self.bin_path = bin_path
        self.python = python or sys.executable
        self.pyz = build_pyz()
        self.sha256 = hashlib.sha256(self.pyz).hexdigest()
        self.name = 'nsbox-%s-%s.pyz' % (VERSION, self.sha256[:12])
        self.path = os.path.join(lib_dir, self.name)
        self.current = os.path.join(lib_dir, 'current.pyz')
        self.wrapper = wrapper_script(self.current, self.python)
        self.oci_bin_path = os.path.join(os.path.dirname(bin_path), OCI_NAME)
        self.oci_wrapper = wrapper_script(self.current, self.python, 'oci')

    def info(self):
        return {'version': VERSION, 'sha256': self.sha256, 'path': self.path,
                'current': self.current, 'bin': self.bin_path, 'python': self.python}

    def installed(self):
        """The zipapp ``current.pyz`` points at now (a path), or None."""
        try:
            return os.path.join(self.lib_dir, os.readlink(self.current))
        except OSError:
            return None

    def _file_ok(self):
        try:
            with open(self.path, 'rb') as f:
                return hashlib.sha256(f.read()).hexdigest() == self.sha256
        except OSError:
            return False

    def _wrapper_ok(self, path=None, content=None):
        path, content = (path, content) if path else (self.bin_path, self.wrapper)
        try:
            with open(path, 'rb') as f:
                return f.read() == content and os.access(path, os.X_OK)
        except OSError:
            return False

    def pending(self):
        """What an install would change: a list of short reasons, empty when current."""
        todo = []
        if not self._file_ok():
            todo.append('write %s' % self.path)
        try:
            link_ok = os.readlink(self.current) == self.name
        except OSError:
            link_ok = False
        if not link_ok:
            todo.append('point %s at %s' % (self.current, self.name))
        if not self._wrapper_ok():
            todo.append('write %s' % self.bin_path)
        if not self._wrapper_ok(self.oci_bin_path, self.oci_wrapper):
            todo.append('write %s' % self.oci_bin_path)
        return todo

    def apply(self):
        """Bring the host to the desired install; return the list of changes made."""
        try:
            makedirs(self.lib_dir, 0o755)
            with locked(os.path.join(self.lib_dir, '.lock')):
                todo = self.pending()
                if not self._file_ok():
                    atomic_write(self.path, self.pyz, 0o644)
                    if not self._file_ok():
                        raise InstallError('install', 'the nsbox library', 'hash of %s does not match after writing' % self.path)
                if any(t.startswith('point ') for t in todo):
                    atomic_symlink(self.name, self.current)
                if not self._wrapper_ok():
                    os.makedirs(os.path.dirname(self.bin_path), 0o755, exist_ok=True)
                    atomic_write(self.bin_path, self.wrapper, 0o755)
                if not self._wrapper_ok(self.oci_bin_path, self.oci_wrapper):
                    atomic_write(self.oci_bin_path, self.oci_wrapper, 0o755)
                self._prune()
        except OSError as exc:
            raise InstallError.from_oserror('install', 'the nsbox library in %s' % self.lib_dir, exc)
        return todo

    def _prune(self):
        """Drop old zipapps beyond the KEEP newest: zipimport re-reads its archive, so a
        process started from an older version needs that file while it runs."""
        old = [n for n in os.listdir(self.lib_dir) if codecache.PYZ_RE.match(n) and n != self.name]
        old.sort(key=lambda n: os.stat(os.path.join(self.lib_dir, n)).st_mtime, reverse=True)
        for name in old[KEEP - 1:]:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.lib_dir, name))
        cache = os.path.join(self.lib_dir, codecache.CACHE_DIR)
        for entry in os.listdir(cache) if os.path.isdir(cache) else ():
            owner = codecache.owner_pyz(entry)
            if owner is None or not os.path.exists(os.path.join(self.lib_dir, owner)):
                shutil.rmtree(os.path.join(cache, entry), ignore_errors=True)
