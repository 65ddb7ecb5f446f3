# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zipfile

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import bundle, install

LIB = os.path.dirname(os.path.abspath(bundle.__file__))


def test_bundle_lists_every_library_file():
    on_disk = sorted(os.path.relpath(os.path.join(d, n), LIB)[:-3] for d, _dirs, files in os.walk(LIB)
                     for n in files if n.endswith('.py'))
    assert sorted(bundle.MODULES) == on_disk, 'add new _runtime files to bundle.MODULES and its import line'
    with open(bundle.__file__) as f:
        source = f.read()
    for name in bundle.MODULES:
        base = name.rsplit('/', 1)[-1]
        if base not in ('__init__', 'bundle'):
            assert ' %s,' % base in source or ' %s ' % base in source, '%s is not imported by bundle.py' % name


def test_zipapp_is_reproducible_and_holds_the_library():
    first, second = install.build_pyz(), install.build_pyz()
    assert first == second
    with zipfile.ZipFile(io.BytesIO(first)) as zf:
        names = set(zf.namelist())
    assert '__main__.py' in names
    assert {'nsbox_runtime/%s.py' % m for m in bundle.MODULES} <= names


def test_install_then_current(tmp_path):
    lib = install.LibraryInstall(str(tmp_path / 'lib'), str(tmp_path / 'bin' / 'nsbox'), python='/usr/bin/python3')
    assert lib.installed() is None
    todo = lib.pending()
    assert len(todo) == 4  # zipapp, link, nsbox, nsbox-oci
    assert lib.apply() == todo
    assert lib.pending() == []
    with open(lib.path, 'rb') as f:
        assert hashlib.sha256(f.read()).hexdigest() == lib.sha256
    assert lib.installed() == lib.path
    out = subprocess.run([str(tmp_path / 'bin' / 'nsbox'), 'version'], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == 'nsbox %s' % install.VERSION
    out = subprocess.run([str(tmp_path / 'bin' / 'nsbox-oci'), '--version'], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == 'nsbox-oci version %s' % install.VERSION


def test_corrupt_zipapp_is_rewritten(tmp_path):
    lib = install.LibraryInstall(str(tmp_path / 'lib'), str(tmp_path / 'nsbox'))
    lib.apply()
    with open(lib.path, 'r+b') as f:
        f.write(b'XX')
    assert lib.pending() == ['write %s' % lib.path]
    lib.apply()
    assert lib.pending() == []


def test_old_versions_are_pruned_beyond_keep(tmp_path):
    libdir = tmp_path / 'lib'
    libdir.mkdir()
    for i in range(5):
        p = libdir / ('nsbox-0.0.%d-%012x.pyz' % (i, i))
        p.write_bytes(b'old')
        os.utime(p, (1000 + i, 1000 + i))
    (libdir / 'unrelated.pyz').write_bytes(b'keep me')
    lib = install.LibraryInstall(str(libdir), str(tmp_path / 'nsbox'))
    lib.apply()
    left = sorted(os.listdir(libdir))
    assert 'unrelated.pyz' in left and lib.name in left
    assert [n for n in left if n.startswith('nsbox-0.0.')] == ['nsbox-0.0.3-000000000003.pyz', 'nsbox-0.0.4-000000000004.pyz']
