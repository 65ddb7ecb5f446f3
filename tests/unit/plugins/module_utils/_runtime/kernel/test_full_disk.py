# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A full filesystem (issue 19 item 1): the writes a stop or an exit must make go into blocks set aside ahead (a
spare), and any other write fails with the path and the filesystem named, never a bare Errno 28. A real tmpfs of
256 KiB, mounted in a mount namespace of the test's own child process (the machine's mounts are not touched)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason='mounts a tmpfs: root only')

CHILD = textwrap.dedent('''
    import errno, json, os, sys
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import fsutil, syscall
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import NsboxError
    root = sys.argv[1]
    syscall.unshare(syscall.CLONE_NEWNS)
    syscall.mount(None, '/', None, syscall.MS_REC | syscall.MS_PRIVATE)
    syscall.mount('tmpfs', root, 'tmpfs', 0, 'size=256k')
    state = os.path.join(root, 'state.json')
    fsutil.write_json(state, {'status': 'running'}, spare=True)
    assert os.path.getsize(state + '.spare') == fsutil.SPARE_SIZE
    with open(os.path.join(root, 'fill'), 'wb', buffering=0) as f:  # a container filling a volume on the data-root's filesystem
        try:
            while True:
                f.write(b'x' * 4096)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    out = {}
    try:
        fsutil.write_json(os.path.join(root, 'other.json'), {'a': 1})
    except NsboxError as exc:
        out['plain'] = exc.message
    fsutil.write_json(state, {'status': 'running', 'stop_requested': True}, spare=True)  # a stop, on the full disk
    out['after_stop'] = fsutil.read_json(state, 'state')
    out['spare_left'] = os.path.exists(state + '.spare')  # made again from the tail the written spare gave back
    fsutil.write_json(state, {'status': 'exited', 'exit_code': 3}, spare=True)  # the exit, still on the full disk
    out['after_exit'] = fsutil.read_json(state, 'state')
    os.unlink(state + '.spare')
    with open(os.path.join(root, 'fill'), 'ab', buffering=0) as f:  # what the spare held, taken by the writer
        try:
            while True:
                f.write(b'x' * 4096)
        except OSError:
            pass
    try:
        fsutil.write_json(state, {'status': 'exited', 'exit_code': 4}, spare=True)  # no spare left: said, not a traceback
    except NsboxError as exc:
        out['second'] = exc.message
    os.unlink(os.path.join(root, 'fill'))
    fsutil.write_json(state, {'status': 'exited', 'exit_code': 3}, spare=True)  # room again: written, and the spare made
    out['end'] = fsutil.read_json(state, 'state')
    out['spare_again'] = os.path.exists(state + '.spare')
    print(json.dumps(out))
''')


def test_a_full_filesystem(tmp_path):
    root = tmp_path / 'fs'
    root.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    res = subprocess.run([sys.executable, '-c', CHILD, str(root)], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert res.returncode == 0, res.stderr
    import json  # pylint: disable=import-outside-toplevel
    out = json.loads(res.stdout)
    assert out['plain'] == 'failed to write %s/other.json: no space left on %s' % (root, root), out
    assert out['after_stop'] == {'status': 'running', 'stop_requested': True} and out['spare_left'], out
    assert out['after_exit'] == {'status': 'exited', 'exit_code': 3}, out
    assert out['second'].endswith('no space left on %s' % root), out
    assert out['end'] == {'status': 'exited', 'exit_code': 3} and out['spare_again']
    assert os.listdir(root) == []  # the tmpfs went with the child's mount namespace
