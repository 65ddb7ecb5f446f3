# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiled code of the installed zipapp, kept beside it, so a process does not compile the library again.

zipimport never writes bytecode and the zipapp holds only ``.py`` files (DESIGN D6), so every
process started from it (a supervisor, the CLI, a healthcheck, a unit's runner) compiled each
module it imported: about 0.3 s of a supervisor's start on a 2-core host, more than the
container set-up itself. The first process to import a module writes its code object
(``marshal``) to ``<lib_dir>/cache/<zipapp name>.<cache tag>/<module>.pyc``; later ones load it.

The zipapp's name carries the hash of its bytes, and the cache tag the Python version, so an
entry can never belong to other source; a zipapp run under another name (not a versioned
one) is not cached. Entries are written atomically (a temp file renamed over), and anything
unreadable is compiled again: the cache is only ever a shortcut. The install prunes the
cache of a zipapp with the zipapp.

A module's payload (Ansible's AnsiballZ zip, a new temporary file for each task) gets the same
shortcut through :func:`install_payload`: there each entry is named by the hash of its source
(``<lib_dir>/cache/payload.<tag>/<sha256>.pyc``), as the payload has no stable name. Each
task compiled the ~150 ms of library a container module imports; now the first task on a host
does. The cache is used only where nsbox is installed already (nothing is created on a host
the modules never changed) and only while it is this user's own and nobody else can write it
(root loads what is in it). An install of a new library version empties it.
"""
from __future__ import annotations

import _imp
import hashlib
import marshal
import os
import re
import stat
import sys
import zipimport

PYZ_RE = re.compile(r'^nsbox-[0-9A-Za-z.+-]+-[0-9a-f]{12}\.pyz$')
LIB_DIR = '/usr/local/lib/nsbox'  # where the library is installed (install.py)
CACHE_DIR = 'cache'
PAYLOAD = 'payload'


def cache_dir(pyz):
    """The cache of zipapp ``pyz`` for this Python, or None when ``pyz`` is not a versioned zipapp."""
    name = os.path.basename(pyz)
    tag = sys.implementation.cache_tag
    if not PYZ_RE.match(name) or not tag:
        return None
    return os.path.join(os.path.dirname(pyz), CACHE_DIR, '%s.%s' % (name, tag))


def owner_pyz(entry):
    """The zipapp name a cache entry's directory belongs to (``nsbox-...pyz``), or None."""
    name = entry.rsplit('.', 1)[0] if '.' in entry else ''
    return name if PYZ_RE.match(name) else None


def _load(entry):
    """The code object kept at ``entry``, or None (missing or unreadable: it is compiled again)."""
    try:
        with open(entry, 'rb') as f:
            return marshal.loads(f.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None


def _store(entry, code):
    """Keep ``code`` at ``entry`` (a temp file renamed over); a read-only or foreign dir: compiled each time, still works."""
    tmp = '%s.%d.tmp' % (entry, os.getpid())
    try:
        with open(tmp, 'wb') as f:
            f.write(marshal.dumps(code))
        os.replace(tmp, entry)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


class CachedZipImporter(zipimport.zipimporter):  # pylint: disable=too-few-public-methods
    """A zipimporter for the one zipapp this process runs, whose ``get_code`` goes through the cache."""

    pyz = None
    directory = None

    def __init__(self, path):
        if not self.pyz or not (path == self.pyz or path.startswith(self.pyz + os.sep)):
            raise ImportError('not the nsbox zipapp: %s' % path)
        super().__init__(path)

    def get_filename(self, fullname):
        """zipimport's own compiles the module only to name its file (every module twice per import)."""
        return self.get_code(fullname).co_filename

    def get_code(self, fullname):
        entry = os.path.join(self.directory, fullname + '.pyc')
        code = _load(entry)
        if code is None:
            code = super().get_code(fullname)
            try:
                os.makedirs(self.directory, 0o700, exist_ok=True)
            except OSError:
                pass
            _store(entry, code)
        return code


def install(pyz):
    """Make this process import the zipapp ``pyz`` through the cache (Python 3.10+; a no-op otherwise)."""
    directory = cache_dir(pyz)
    if directory is None or sys.version_info < (3, 10):  # 3.9's zipimporter loads without get_code
        return False
    CachedZipImporter.pyz, CachedZipImporter.directory = pyz, directory
    sys.path_hooks.insert(0, CachedZipImporter)
    for entry in list(sys.path_importer_cache):
        if entry == pyz or entry.startswith(pyz + os.sep):
            sys.path_importer_cache[entry] = CachedZipImporter(entry)
    return True


def _tag():
    tag = sys.implementation.cache_tag
    return tag and (tag + ('.opt-%d' % sys.flags.optimize if sys.flags.optimize else ''))


def _safe_dir(path, create):
    """True when ``path`` is a directory of this user's that nobody else can write (made 0700 when ``create``)."""
    try:
        if create:
            os.makedirs(path, 0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022


class PayloadImporter(zipimport.zipimporter):  # pylint: disable=too-few-public-methods
    """A zipimporter for a module's payload whose ``get_code`` goes through a cache keyed by the source's hash."""

    archive_path = None
    directory = None

    def __init__(self, path):
        if not self.archive_path or not (path == self.archive_path or path.startswith(self.archive_path + os.sep)):
            raise ImportError('not the module payload: %s' % path)
        super().__init__(path)

    def _source_path(self, fullname):
        tail = os.path.join(self.prefix, fullname.rpartition('.')[2])
        return os.path.join(self.archive, tail, '__init__.py') if self.is_package(fullname) else os.path.join(self.archive, tail + '.py')

    def get_filename(self, fullname):
        """The module's path in the payload (zipimport's own would compile the module to learn it)."""
        try:
            return self._source_path(fullname)
        except ImportError:
            return super().get_filename(fullname)

    def get_code(self, fullname):
        try:
            path = self._source_path(fullname)
            source = self.get_data(path)
        except (ImportError, OSError):  # not a plain source module: zipimport's own way
            return super().get_code(fullname)
        entry = os.path.join(self.directory, hashlib.sha256(source).hexdigest() + '.pyc')
        code = _load(entry)
        if code is not None:
            _imp._fix_co_filename(code, path)  # pylint: disable=protected-access  # where it is now (tracebacks, __file__)
            return code
        code = compile(source.replace(b'\r\n', b'\n').replace(b'\r', b'\n'), path, 'exec', dont_inherit=True)
        _store(entry, code)
        return code


def install_payload(lib_dir, loader=None):
    """Make the rest of this module run import its payload through the cache (a no-op outside a payload, before
    Python 3.10, where nsbox is not installed, or when the cache is not safely this user's)."""
    loader = loader or globals().get('__loader__')
    tag = _tag()
    if sys.version_info < (3, 10) or not tag or type(loader) is not zipimport.zipimporter:  # pylint: disable=unidiomatic-typecheck
        return False
    directory = os.path.join(lib_dir, CACHE_DIR, '%s.%s' % (PAYLOAD, tag))
    if not (_safe_dir(lib_dir, False) and _safe_dir(os.path.dirname(directory), True) and _safe_dir(directory, True)):
        return False
    archive = loader.archive
    PayloadImporter.archive_path, PayloadImporter.directory = archive, directory
    sys.path_hooks.insert(0, PayloadImporter)
    for entry in list(sys.path_importer_cache):
        if entry == archive or entry.startswith(archive + os.sep):
            sys.path_importer_cache[entry] = PayloadImporter(entry)
    return True
