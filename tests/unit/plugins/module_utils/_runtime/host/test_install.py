# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
import zipfile

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import bundle
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import install

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


def test_digest_names_every_file_and_its_source():
    sources = install.library_sources()
    assert set(sources) == set(bundle.MODULES)
    digest = bundle.source_digest(sources.__getitem__)
    assert digest == bundle.source_digest(sources.__getitem__)
    changed = dict(sources, version=sources['version'] + b'#')
    assert bundle.source_digest(changed.__getitem__) != digest


def _lib(tmp_path, **kw):
    return install.LibraryInstall(str(tmp_path / 'lib'), str(tmp_path / 'bin' / 'nsbox'), python='/usr/bin/python3', **kw)


def test_install_then_current(tmp_path):
    lib = _lib(tmp_path)
    assert lib.installed() is None
    todo = lib.pending()
    assert len(todo) == 4  # tree, link, nsbox, nsbox-oci
    assert lib.apply() == todo
    assert lib.pending() == []
    assert bundle.tree_digest(lib.path) == lib.sha256 and lib.name == '%s-%s' % (install.VERSION, lib.sha256[:12])
    assert lib.installed() == lib.path
    out = subprocess.run([str(tmp_path / 'bin' / 'nsbox'), 'version', '--format', 'json'], capture_output=True, text=True, check=True)
    assert '"library": "%s"' % lib.path in out.stdout
    out = subprocess.run([str(tmp_path / 'bin' / 'nsbox-oci'), '--version'], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines()[0] == 'nsbox-oci version %s' % install.VERSION
    assert not [n for n in os.listdir(lib.lib_dir) if n.endswith('.tmp')]


def test_tree_is_compiled_and_read_only(tmp_path):
    lib = _lib(tmp_path)
    lib.apply()
    pyc = install._pyc_path(lib.path, sys.implementation.cache_tag)
    with open(pyc, 'rb') as f:
        assert int.from_bytes(f.read(16)[4:8], 'little') == 0b11  # hash-based, checked
    for d, dirs, files in os.walk(lib.path):
        assert stat.S_IMODE(os.stat(d).st_mode) == 0o555
        assert all(stat.S_IMODE(os.stat(os.path.join(d, n)).st_mode) == 0o444 for n in files)
    before = {n: os.stat(os.path.join(d, n)).st_mtime_ns for d, _dirs, files in os.walk(lib.path) for n in files}
    subprocess.run(['/usr/bin/python3', '-I', '-B', lib.path, 'version'], check=True, capture_output=True)
    assert {n: os.stat(os.path.join(d, n)).st_mtime_ns for d, _dirs, files in os.walk(lib.path) for n in files} == before


def test_damaged_tree_is_rewritten(tmp_path):
    lib = _lib(tmp_path)
    lib.apply()
    path = os.path.join(lib.path, install.PACKAGE, 'version.py')
    os.chmod(path, 0o644)
    with open(path, 'ab') as f:
        f.write(b'# edited')
    assert lib.pending() == ['write %s' % lib.path]
    lib.apply()
    assert lib.pending() == []


def test_another_python_compiles_into_the_tree(tmp_path):
    lib = _lib(tmp_path)
    lib.apply()
    lib.tag = 'cpython-0'  # as if the modules now ran another interpreter
    assert lib.pending() == ['compile %s for cpython-0' % lib.path]


def test_old_versions_are_pruned_beyond_keep(tmp_path):
    libdir = tmp_path / 'lib'
    libdir.mkdir()
    for i in range(3):
        p = libdir / ('nsbox-0.0.%d-%012x.pyz' % (i, i))
        p.write_bytes(b'old')
        os.utime(p, (1000 + i, 1000 + i))
    for i in range(3, 5):
        p = libdir / ('0.0.%d-%012x' % (i, i))
        (p / 'nsbox_runtime').mkdir(parents=True)
        os.chmod(p / 'nsbox_runtime', 0o555)
        os.utime(p, (1000 + i, 1000 + i))
    (libdir / 'unrelated.pyz').write_bytes(b'keep me')
    lib = install.LibraryInstall(str(libdir), str(tmp_path / 'nsbox'))
    lib.apply()
    left = sorted(os.listdir(libdir))
    assert 'unrelated.pyz' in left and lib.name in left
    assert [n for n in left if n.startswith(('0.0.', 'nsbox-0.0.'))] == ['0.0.3-000000000003', '0.0.4-000000000004']


def test_a_version_a_process_runs_is_not_pruned(tmp_path):
    """A container's monitor imports from the tree it started with when its container ends: found pruned after three
    upgrades, it crashed there and the exit code was lost. A tree a live process names is kept, however old."""
    libdir = tmp_path / 'lib'
    libdir.mkdir()
    for i in range(4):
        p = libdir / ('0.0.%d-%012x' % (i, i))
        (p / 'nsbox_runtime').mkdir(parents=True)
        os.utime(p, (1000 + i, 1000 + i))
    oldest = str(libdir / '0.0.0-000000000000')
    proc = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)', oldest + '/nsbox_runtime/cli/main.py'])  # as a monitor runs
    try:
        deadline = time.monotonic() + 10
        while oldest.encode() not in open('/proc/%d/cmdline' % proc.pid, 'rb').read() and time.monotonic() < deadline:
            time.sleep(0.01)  # until its exec shows
        lib = install.LibraryInstall(str(libdir), str(tmp_path / 'nsbox'))
        assert '0.0.0-000000000000' in lib._running()  # pylint: disable=protected-access
        lib.apply()
        left = sorted(n for n in os.listdir(libdir) if n.startswith('0.0.'))
        assert left == ['0.0.0-000000000000', '0.0.2-000000000002', '0.0.3-000000000003'], left
    finally:
        proc.kill()
        proc.wait()
    lib.apply()
    assert '0.0.0-000000000000' not in os.listdir(libdir)  # its process gone: pruned now


def test_zipapp_layout_converges(tmp_path):
    """A host of the zipapp layout: its link and code cache go, its zipapp stays (within KEEP) for processes still running it."""
    libdir = tmp_path / 'lib'
    (libdir / 'cache' / 'payload.cpython-311').mkdir(parents=True)
    zipfile.ZipFile(libdir / 'nsbox-0.0.9-000000000009.pyz', 'w').close()
    os.symlink('nsbox-0.0.9-000000000009.pyz', libdir / 'current.pyz')
    lib = install.LibraryInstall(str(libdir), str(tmp_path / 'nsbox'))
    assert 'remove the zipapp layout (current.pyz, cache/)' in lib.pending()
    lib.apply()
    assert sorted(os.listdir(libdir)) == sorted(['.lock', 'current', lib.name, 'nsbox-0.0.9-000000000009.pyz'])
    assert lib.pending() == []


def _payload(tmp_path):
    """A module payload's library: the package zipped under another name, as Ansible ships it."""
    archive = tmp_path / 'payload.zip'
    with zipfile.ZipFile(archive, 'w') as zf:
        zf.writestr('payload_lib/__init__.py', '')
        for name, data in install.library_sources().items():
            zf.writestr('payload_lib/_runtime/%s.py' % name, data)
    return archive


def test_payload_imports_the_installed_tree(tmp_path):
    lib = _lib(tmp_path)
    lib.apply()
    code = ('import sys; sys.path.insert(0, sys.argv[1])\n'
            'from payload_lib._runtime import bundle, version\n'
            'print(bundle.use_installed("payload_lib._runtime", version.VERSION, sys.argv[2]))\n'
            'from payload_lib._runtime.container import converge\n'
            'from payload_lib._runtime.errors import NsboxError\n'
            'from payload_lib._runtime import errors\n'
            'print(converge.__file__, converge.__name__, converge.__spec__.name)\n'
            'print(converge.NsboxError is NsboxError is errors.NsboxError)\n')
    out = subprocess.run([sys.executable, '-I', '-c', code, str(_payload(tmp_path)), lib.lib_dir], capture_output=True, text=True, check=True)
    first, second, third = out.stdout.splitlines()
    assert first == lib.path
    converge_py = os.path.join(lib.path, 'nsbox_runtime', 'container', 'converge.py')
    assert second == '%s nsbox_runtime.container.converge nsbox_runtime.container.converge' % converge_py
    assert third == 'True'


def test_payload_without_its_tree_imports_itself(tmp_path):
    lib = _lib(tmp_path)
    lib.apply()
    os.chmod(lib.lib_dir, 0o777)  # writable by anyone: not trusted
    code = ('import sys; sys.path.insert(0, sys.argv[1])\n'
            'from payload_lib._runtime import bundle, version\n'
            'print(bundle.use_installed("payload_lib._runtime", version.VERSION, sys.argv[2]))\n'
            'from payload_lib._runtime.container import converge\n'
            'print(converge.__name__)\n')
    for libdir in (lib.lib_dir, str(tmp_path / 'none')):
        out = subprocess.run([sys.executable, '-I', '-c', code, str(_payload(tmp_path)), libdir], capture_output=True, text=True, check=True)
        assert out.stdout.split() == ['None', 'payload_lib._runtime.container.converge']
