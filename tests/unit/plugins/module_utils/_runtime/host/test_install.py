# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import zipfile

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import bundle
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import codecache, install

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


def _cache_files(lib):
    directory = os.path.join(lib.lib_dir, codecache.CACHE_DIR, '%s.%s' % (lib.name, _tag_of_host_python()))  # the nsbox command's python
    return directory, sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def _tag_of_host_python():
    return subprocess.run(['/usr/bin/python3', '-c', 'import sys; print(sys.implementation.cache_tag)'],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_installed_zipapp_keeps_its_compiled_code_beside_it(tmp_path):
    """The first process compiles and caches each module it imports; the next loads them; a damaged entry is compiled again."""
    lib = install.LibraryInstall(str(tmp_path / 'lib'), str(tmp_path / 'bin' / 'nsbox'), python='/usr/bin/python3')
    lib.apply()
    nsbox = str(tmp_path / 'bin' / 'nsbox')
    assert subprocess.run([nsbox, 'version'], capture_output=True, text=True, check=True).stdout.strip() == 'nsbox %s' % install.VERSION
    directory, files = _cache_files(lib)
    assert 'nsbox_runtime.cli.main.pyc' in files and 'nsbox_runtime.version.pyc' in files
    assert not [n for n in files if n.endswith('.tmp')]
    with open(os.path.join(directory, 'nsbox_runtime.cli.main.pyc'), 'wb') as f:
        f.write(b'not marshal data')
    assert subprocess.run([nsbox, 'version'], capture_output=True, text=True, check=True).stdout.strip() == 'nsbox %s' % install.VERSION
    with open(os.path.join(directory, 'nsbox_runtime.cli.main.pyc'), 'rb') as f:
        assert f.read() != b'not marshal data'


def test_unversioned_zipapp_is_not_cached(tmp_path):
    assert codecache.cache_dir(str(tmp_path / 'current.pyz')) is None
    assert codecache.cache_dir(str(tmp_path / 'nsbox-0.1.0-0123456789ab.pyz')).startswith(str(tmp_path / 'cache' / 'nsbox-0.1.0-0123456789ab.pyz.'))
    assert codecache.owner_pyz('nsbox-0.1.0-0123456789ab.pyz.cpython-311') == 'nsbox-0.1.0-0123456789ab.pyz'
    assert codecache.owner_pyz('something-else') is None


def test_cache_of_a_pruned_zipapp_goes_with_it(tmp_path):
    libdir = tmp_path / 'lib'
    (libdir / 'cache' / 'nsbox-0.0.1-000000000001.pyz.cpython-311').mkdir(parents=True)
    (libdir / 'cache' / 'stray').mkdir()
    lib = install.LibraryInstall(str(libdir), str(tmp_path / 'nsbox'))
    (libdir / 'cache' / (lib.name + '.cpython-311')).mkdir()
    lib.apply()
    assert os.listdir(libdir / 'cache') == [lib.name + '.cpython-311']
