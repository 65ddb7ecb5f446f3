# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The code cache of a module's payload: each task's fresh zip imports what an earlier task compiled."""
from __future__ import annotations

import hashlib
import marshal
import os
import subprocess
import sys
import zipfile

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import codecache

pytestmark = pytest.mark.skipif(sys.version_info < (3, 10), reason="3.9's zipimporter does not load through get_code")

# Run in a fresh interpreter (path hooks are process-wide): import pkg.codecache from the zip, install the
# cache, import pkg.mod and print what it is and where it says it lives.
SCRIPT = '''
import json, sys
sys.path.insert(0, sys.argv[1])
from pkg import codecache
ok = codecache.install_payload(sys.argv[2])
from pkg import mod
from pkg.sub import leaf
print(json.dumps({'installed': ok, 'value': mod.VALUE, 'file': mod.__file__, 'co': mod.where.__code__.co_filename,
                  'leaf': leaf.VALUE, 'leaf_file': leaf.__file__}))
'''


def _payload(path, value):
    with open(codecache.__file__, 'rb') as f:
        cc = f.read()
    with zipfile.ZipFile(path, 'w') as zf:
        zf.writestr('pkg/__init__.py', b'')
        zf.writestr('pkg/codecache.py', cc)
        zf.writestr('pkg/mod.py', b'VALUE = %d\n\ndef where():\n    return 1\n' % value)
        zf.writestr('pkg/sub/__init__.py', b'')
        zf.writestr('pkg/sub/leaf.py', b'VALUE = "leaf"\n')
    return path


def _run(zip_path, lib_dir):
    import json  # pylint: disable=import-outside-toplevel
    out = subprocess.run([sys.executable, '-I', '-c', SCRIPT, zip_path, lib_dir], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _cache(lib_dir):
    return os.path.join(lib_dir, 'cache', 'payload.' + sys.implementation.cache_tag)


def test_a_second_payload_loads_what_the_first_compiled(tmp_path):
    lib = tmp_path / 'lib'
    lib.mkdir(mode=0o755)
    first = _run(_payload(str(tmp_path / 'a.zip'), 1), str(lib))
    assert first['installed'] and first['value'] == 1 and first['leaf'] == 'leaf'
    assert first['file'] == str(tmp_path / 'a.zip' / 'pkg' / 'mod.py') == first['co']
    entry = os.path.join(_cache(str(lib)), hashlib.sha256(b'VALUE = 1\n\ndef where():\n    return 1\n').hexdigest() + '.pyc')
    assert os.path.isfile(entry) and oct(os.stat(_cache(str(lib))).st_mode & 0o777) == '0o700'
    # The next task's payload (another path, same source) takes the code from the cache: an entry made to
    # say 2 proves it, and the paths are the new payload's (its __file__, its code's file name).
    with open(entry, 'wb') as f:
        f.write(marshal.dumps(compile('VALUE = 2\n\ndef where():\n    return 1\n', 'elsewhere', 'exec')))
    second = _run(_payload(str(tmp_path / 'b.zip'), 1), str(lib))
    assert second['value'] == 2 and second['file'] == str(tmp_path / 'b.zip' / 'pkg' / 'mod.py') == second['co']
    assert second['leaf_file'] == str(tmp_path / 'b.zip' / 'pkg' / 'sub' / 'leaf.py')
    # Other source, another entry; a damaged entry is compiled again and rewritten.
    assert _run(_payload(str(tmp_path / 'c.zip'), 3), str(lib))['value'] == 3
    with open(entry, 'wb') as f:
        f.write(b'not marshal data')
    assert _run(_payload(str(tmp_path / 'd.zip'), 1), str(lib))['value'] == 1
    with open(entry, 'rb') as f:
        assert marshal.loads(f.read()).co_filename == str(tmp_path / 'd.zip' / 'pkg' / 'mod.py')
    assert not [n for n in os.listdir(_cache(str(lib))) if n.endswith('.tmp')]


def test_no_cache_where_nsbox_is_not_installed_or_others_could_write_it(tmp_path):
    zip_path = _payload(str(tmp_path / 'a.zip'), 1)
    missing = _run(zip_path, str(tmp_path / 'nolib'))
    assert not missing['installed'] and missing['value'] == 1 and not os.path.exists(tmp_path / 'nolib')
    shared = tmp_path / 'shared'
    shared.mkdir()
    os.chmod(shared, 0o777)  # root would load what anyone put there
    assert not _run(zip_path, str(shared))['installed'] and not os.listdir(shared)
    lib = tmp_path / 'lib'
    (lib / 'cache' / ('payload.' + sys.implementation.cache_tag)).mkdir(parents=True)
    os.chmod(lib / 'cache' / ('payload.' + sys.implementation.cache_tag), 0o757)
    assert not _run(zip_path, str(lib))['installed']


def test_outside_a_payload_nothing_changes():
    assert codecache.install_payload('/nonexistent') is False  # loaded from files, not a zip
