# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Installing the library on a host as a versioned, compiled, read-only tree (DESIGN D1, as changed in docs/design.md).

A module's payload is deleted when the module returns, so whatever must keep running
(supervisors, systemd units, the CLIs) execs an installed copy instead:
``/usr/local/lib/nsbox/<version>-<sha>/`` (``__main__.py`` and the package ``nsbox_runtime/``, compiled
with ``compileall`` into hash-checked ``.pyc`` files), ``current`` pointing at it, and the wrappers
``/usr/local/bin/nsbox`` and ``/usr/local/bin/nsbox-oci`` (the OCI runtime command line: ``nsbox oci``, a
path that podman's ``--runtime`` can take). The tree's name carries the digest of the running library's
own source (``bundle.source_digest``), so "already installed" is a hash comparison; a tree is written
beside its final name and renamed into place, and everything is done under a lock.
"""
from __future__ import annotations

import contextlib
import os
import pkgutil
import re
import shutil
import stat
import sys

from .. import bundle
from ..errors import InstallError
from ..kernel.fsutil import atomic_symlink, atomic_write, locked, makedirs
from ..version import VERSION

LIB_DIR = bundle.LIB_DIR
BIN_PATH = '/usr/local/bin/nsbox'
OCI_NAME = 'nsbox-oci'  # beside BIN_PATH
PACKAGE = bundle.PACKAGE
CURRENT = 'current'
KEEP = 3  # installed versions kept for processes still running an older one
TREE_RE = re.compile(r'^[0-9A-Za-z.+]+-[0-9a-f]{12}\Z')
# The layout before the tree (a zipapp, its link and its code cache): converged away, zipapps kept while within KEEP.
OLD_PYZ_RE = re.compile(r'^nsbox-[0-9A-Za-z.+-]+-[0-9a-f]{12}\.pyz\Z')
OLD_LINK, OLD_CACHE = 'current.pyz', 'cache'
_LIBRARY_PACKAGE = __package__.rpartition('.')[0]  # _runtime: this file lives in its host/ room
_MAIN = b'from nsbox_runtime.cli.main import main\nmain()\n'


def library_argv(args, library=None, what='a runtime process'):
    """The command line of a long-lived process: the installed tree (D1), never a module's payload.
    ``current`` is resolved once: a process must not read half of one version and half of the next."""
    lib = library or os.path.realpath(os.path.join(LIB_DIR, CURRENT))
    if not os.path.isfile(os.path.join(lib, '__main__.py')):
        raise InstallError('start', what, 'the nsbox library is not installed at %s (every nsbox module installs it)' % lib, path=lib)
    python = sys.executable if sys.executable and os.path.isabs(sys.executable) else '/usr/bin/python3'
    return [python, '-I', '-B', lib] + list(args)


def library_sources():
    """{module name: source bytes} of this very library, read from wherever it runs (a payload, a tree, a checkout)."""
    sources = {}
    for name in bundle.MODULES:
        data = pkgutil.get_data(_LIBRARY_PACKAGE, name + '.py')
        if data is None:
            raise InstallError('read', 'the nsbox library', 'source of %s.py is not readable' % name)
        sources[name] = data
    return sources


def wrapper_script(current, python, verb=None):
    """The ``nsbox`` command. It resolves ``current`` once, before Python starts: a process that ran
    ``current`` itself would import later modules from whatever it points at by then. -B: the tree
    stays read-only even for root. ``verb``: put before the arguments (``oci`` for ``nsbox-oci``)."""
    return ('#!/bin/sh\n# nsbox %s: managed by nsbox.runtime, do not edit\nexec %s -I -B "$(readlink -f %s)" %s"$@"\n'
            % (VERSION, python, current, verb + ' ' if verb else '')).encode()


def _compile(root):
    """Compile every file under ``root`` for this Python. Checked hash: a pyc is used only while its source's
    hash matches (a hand-edited file is compiled again, in memory); no timestamps to go wrong in a copy."""
    # Imported here: only to install; it imports pathlib (start-up cost: ~10 ms of every module run).
    import compileall  # pylint: disable=import-outside-toplevel
    import py_compile  # pylint: disable=import-outside-toplevel
    return compileall.compile_dir(root, quiet=2, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH)


def _pyc_path(root, tag):
    return os.path.join(root, PACKAGE, 'cli', '__pycache__', 'main.%s.pyc' % tag)


def _remove(path):
    """Remove a file, link or (read-only) tree."""
    if os.path.isdir(path) and not os.path.islink(path):
        for d, _dirs, _files in os.walk(path):
            os.chmod(d, 0o755)
        shutil.rmtree(path)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _seal(root):
    """fsync every file of the new tree, then make it read-only (files 0444, directories 0555)."""
    for d, _dirs, files in os.walk(root, topdown=False):
        for n in files:
            p = os.path.join(d, n)
            fd = os.open(p, os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.chmod(p, 0o444)
        os.chmod(d, 0o555)


class LibraryInstall:
    """The desired install of this library on this host, and how far the host is from it."""

    def __init__(self, lib_dir=LIB_DIR, bin_path=BIN_PATH, python=None):
        self.lib_dir = lib_dir
        self.bin_path = bin_path
        self.python = python or sys.executable
        self.sources = library_sources()
        self.sha256 = bundle.source_digest(self.sources.__getitem__)
        self.name = '%s-%s' % (VERSION, self.sha256[:12])
        self.path = os.path.join(lib_dir, self.name)
        self.current = os.path.join(lib_dir, CURRENT)
        self.wrapper = wrapper_script(self.current, self.python)
        self.oci_bin_path = os.path.join(os.path.dirname(bin_path), OCI_NAME)
        self.oci_wrapper = wrapper_script(self.current, self.python, 'oci')
        self.tag = sys.implementation.cache_tag

    def info(self):
        return {'version': VERSION, 'sha256': self.sha256, 'path': self.path,
                'current': self.current, 'bin': self.bin_path, 'python': self.python}

    def installed(self):
        """The tree ``current`` points at now (a path), or None."""
        try:
            return os.path.join(self.lib_dir, os.readlink(self.current))
        except OSError:
            return None

    def _tree_ok(self):
        return bundle.tree_digest(self.path) == self.sha256

    def _compiled_ok(self):
        """Compiled for this Python (the wrappers' interpreter) too: a tree is compiled once per cache tag."""
        return not self.tag or os.path.isfile(_pyc_path(self.path, self.tag))

    def _wrapper_ok(self, path=None, content=None):
        path, content = (path, content) if path else (self.bin_path, self.wrapper)
        try:
            with open(path, 'rb') as f:
                return f.read() == content and os.access(path, os.X_OK)
        except OSError:
            return False

    def _old_layout(self):
        return os.path.lexists(os.path.join(self.lib_dir, OLD_LINK)) or os.path.isdir(os.path.join(self.lib_dir, OLD_CACHE))

    def pending(self):
        """What an install would change: a list of short reasons, empty when current."""
        todo = []
        if not self._tree_ok():
            todo.append('write %s' % self.path)
        elif not self._compiled_ok():
            todo.append('compile %s for %s' % (self.path, self.tag))
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
        if self._old_layout():
            todo.append('remove the zipapp layout (%s, %s/)' % (OLD_LINK, OLD_CACHE))
        return todo

    def _write_tree(self):
        """Write, compile and seal the tree beside its final name, then rename it into place (a damaged one is replaced)."""
        tmp = os.path.join(self.lib_dir, '.%s.%d.tmp' % (self.name, os.getpid()))
        _remove(tmp)
        try:
            os.makedirs(os.path.join(tmp, PACKAGE))
            files = dict({'__main__': _MAIN}, **{'%s/%s' % (PACKAGE, n): data for n, data in self.sources.items()})
            for name, data in files.items():
                path = os.path.join(tmp, name + '.py')
                os.makedirs(os.path.dirname(path), exist_ok=True)
                with open(path, 'wb') as f:
                    f.write(data)
            if not _compile(tmp):
                raise InstallError('install', 'the nsbox library', 'compileall failed in %s' % tmp, path=tmp)
            _seal(tmp)
            if os.path.lexists(self.path):  # damaged (a crash before its files reached the disk, a hand edit)
                _remove(self.path)
            os.rename(tmp, self.path)
        finally:
            if os.path.lexists(tmp):
                _remove(tmp)
        if not self._tree_ok():
            raise InstallError('install', 'the nsbox library', 'digest of %s does not match after writing' % self.path)

    def _compile_here(self):
        """Add this Python's pyc files to a tree made by another one (atomic per file; checked by hash when read)."""
        for d, _dirs, _files in os.walk(self.path):
            os.chmod(d, 0o755)
        try:
            _compile(self.path)
        finally:
            _seal(self.path)

    def apply(self):
        """Bring the host to the desired install; return the list of changes made."""
        try:
            makedirs(self.lib_dir, 0o755)
            with locked(os.path.join(self.lib_dir, '.lock')):
                todo = self.pending()
                if not self._tree_ok():
                    self._write_tree()
                elif not self._compiled_ok():
                    self._compile_here()
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

    def _running(self, proc='/proc'):
        """Names of the versions a live process runs (its command line names a file of that tree)."""
        prefix = os.path.join(self.lib_dir, '').encode()
        out = set()
        for pid in filter(str.isdigit, os.listdir(proc)):
            try:
                with open(os.path.join(proc, pid, 'cmdline'), 'rb') as f:
                    argv = f.read().split(b'\0')
            except OSError:
                continue
            out.update(a[len(prefix):].split(b'/', 1)[0].decode('utf-8', 'replace') for a in argv if a.startswith(prefix))
        return out

    def _prune(self):
        """Keep the KEEP newest versions (trees, and zipapps of the old layout) for processes still running them:
        a process imports lazily from the version it started with. The old layout's link and code cache go now:
        a zipapp process without its cache compiles (slower, still right)."""
        old = []
        for n in os.listdir(self.lib_dir):
            p = os.path.join(self.lib_dir, n)
            if n != self.name and (OLD_PYZ_RE.match(n) or (TREE_RE.match(n) and stat.S_ISDIR(os.lstat(p).st_mode))):
                old.append((os.lstat(p).st_mtime, n))
        running = self._running()
        for _mtime, name in sorted(old, reverse=True)[KEEP - 1:]:
            if name not in running:  # a container's monitor runs the tree it started from, until that container ends
                _remove(os.path.join(self.lib_dir, name))
        for name in (OLD_LINK, OLD_CACHE):
            _remove(os.path.join(self.lib_dir, name))
