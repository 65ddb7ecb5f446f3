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
"""
from __future__ import annotations

import marshal
import os
import re
import sys
import zipimport

PYZ_RE = re.compile(r'^nsbox-[0-9A-Za-z.+-]+-[0-9a-f]{12}\.pyz$')
CACHE_DIR = 'cache'


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
        path = os.path.join(self.directory, fullname + '.pyc')
        try:
            with open(path, 'rb') as f:
                return marshal.loads(f.read())
        except (OSError, EOFError, ValueError, TypeError):
            pass
        code = super().get_code(fullname)
        tmp = '%s.%d.tmp' % (path, os.getpid())
        try:
            os.makedirs(self.directory, 0o700, exist_ok=True)
            with open(tmp, 'wb') as f:
                f.write(marshal.dumps(code))
            os.replace(tmp, path)
        except OSError:  # a read-only or foreign lib dir: compiling each time still works
            try:
                os.unlink(tmp)
            except OSError:
                pass
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
