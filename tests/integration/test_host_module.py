# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host module and the library install (DESIGN D1), seen from outside the module."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile

from harness.runner import REPO, AnsibleRunner
from harness.testhost import TestHost


def test_library_outlives_the_payload(ansible, fresh_host):
    res = ansible.module('nsbox.runtime.host')
    assert res['_status'] == 'changed', res
    # Ansible removed the module's payload; the installed runtime still answers.
    assert fresh_host.ssh('ls -A %s' % fresh_host.remote_tmp).stdout.strip() == ''
    info = json.loads(fresh_host.ssh('nsbox info --format json').stdout)
    assert info['library'] == res['library']['path']
    assert info['version'] == res['library']['version']
    assert fresh_host.ssh('readlink /usr/local/lib/nsbox/current').stdout.strip() == os.path.basename(res['library']['path'])
    wrapper = fresh_host.ssh('cat /usr/local/bin/nsbox').stdout
    assert 'exec /usr/bin/python3 -I -B "$(readlink -f /usr/local/lib/nsbox/current)" "$@"' in wrapper
    assert ansible.module('nsbox.runtime.host')['_status'] == 'ok'


def test_cli_exit_codes(ansible, fresh_host):
    ansible.module('nsbox.runtime.host')
    assert fresh_host.ssh('nsbox version').stdout.strip() == 'nsbox 0.1.0'
    assert fresh_host.ssh('nsbox bogus', check=False).returncode == 2
    bad = fresh_host.ssh('echo "{" > /tmp/nsbox-bad.json; nsbox --config /tmp/nsbox-bad.json info; rc=$?; rm -f /tmp/nsbox-bad.json; exit $rc',
                         check=False)
    assert bad.returncode == 1 and 'failed to read host config' in bad.stderr


def _changed_collection(workdir):
    """A copy of this collection whose library differs by one comment line."""
    dest = os.path.join(workdir, 'ansible_collections', 'nsbox', 'runtime')
    shutil.copytree(REPO, dest, ignore=shutil.ignore_patterns('.git', '.venv', 'tests', '__pycache__'))
    with open(os.path.join(dest, 'plugins', 'module_utils', '_runtime', 'errors.py'), 'a') as f:
        f.write('# changed by test_changed_library_replaces_atomically\n')
    return workdir


def test_changed_library_replaces_atomically(ansible, fresh_host, monkeypatch):
    first = ansible.module('nsbox.runtime.host')['library']
    # While the new library goes in, the nsbox command must work at every moment.
    stop = os.path.join(fresh_host.workdir, 'stop-loop')
    loop = subprocess.Popen(fresh_host.ssh_args() + [  # pylint: disable=consider-using-with
        'n=0; f=0; until [ -e %s ]; do nsbox version >/dev/null 2>&1 || f=$((f+1)); n=$((n+1)); done; echo "$n $f"' % stop],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)  # ssh makes its stdin non-blocking: never the test's
    try:
        with tempfile.TemporaryDirectory(prefix='nsbox-coll2-') as tmp:
            monkeypatch.setenv('NSBOX_COLLECTIONS_PATH', _changed_collection(tmp))
            runner = AnsibleRunner([fresh_host])
            try:
                second = runner.module('nsbox.runtime.host')
            finally:
                runner.close()
    finally:
        with open(stop, 'w'):
            pass
        out, _err = loop.communicate(timeout=60)
        os.unlink(stop)
    runs, failures = (int(x) for x in out.split())
    assert runs > 0 and failures == 0, 'nsbox failed %d of %d times during the replacement' % (failures, runs)
    assert second['_status'] == 'changed'
    new = second['library']
    assert new['sha256'] != first['sha256'] and new['path'] != first['path']
    assert 'write %s' % new['path'] in second['changes'] and 'write /usr/local/bin/nsbox' not in second['changes']
    listing = fresh_host.ssh('ls /usr/local/lib/nsbox; readlink /usr/local/lib/nsbox/current').stdout.split()
    assert os.path.basename(first['path']) in listing  # kept for processes still running it
    assert listing[-1] == os.path.basename(new['path'])
    assert json.loads(fresh_host.ssh('nsbox info --format json').stdout)['library'] == new['path']
    assert not [n for n in listing if n.endswith('.tmp')]


def _snapshot(paths):
    out = {}
    for path in paths:
        try:
            with open(path, 'rb') as f:
                out[path] = f.read()
        except OSError as exc:
            out[path] = exc.errno
    return out


def test_test_host_is_private(ansible, fresh_host):
    """What modules write in a test host stays in it: the machine's own files are untouched."""
    paths = ('/etc/nsbox/config.json', '/usr/local/bin/nsbox', '/usr/local/lib/nsbox/current')
    before = _snapshot(paths)
    marker = '/var/lib/nsbox/private-%d' % os.getpid()
    ansible.module('nsbox.runtime.host', {'data_root': marker})
    assert json.loads(fresh_host.ssh('cat /etc/nsbox/config.json').stdout)['data_root'] == marker
    assert _snapshot(paths) == before
    assert not os.path.exists(marker)


def test_data_root_in_use_moves_only_with_data_root_migrate(ansible, fresh_host):
    """A data-root holding a volume: another data_root is refused, then moved with data_root_migrate (a mount point: copied)."""
    ansible.module('nsbox.runtime.host')
    assert ansible.module('nsbox.runtime.volume', {'name': 'keep'})['_status'] == 'changed'
    fresh_host.ssh('echo kept > /var/lib/nsbox/volumes/keep/_data/file')
    new = os.path.join(fresh_host.workdir, 'moved-root')  # a real directory on the machine's /tmp, gone with the host
    refused = ansible.module('nsbox.runtime.host', {'data_root': new})
    assert refused['_status'] == 'failed'
    assert 'holds images, containers or volumes; set data_root_migrate' in refused['msg']
    moved = ansible.module('nsbox.runtime.host', {'data_root': new, 'data_root_migrate': True})
    assert moved['_status'] == 'changed' and 'move data-root /var/lib/nsbox to %s' % new in moved['changes'], moved
    assert json.loads(fresh_host.ssh('cat /etc/nsbox/config.json').stdout)['data_root'] == new
    assert fresh_host.ssh('cat %s/volumes/keep/_data/file; ls -A /var/lib/nsbox' % new).stdout.strip() == 'kept'
    assert ansible.module('nsbox.runtime.host', {'data_root': new, 'data_root_migrate': True})['_status'] == 'ok'
    assert ansible.module('nsbox.runtime.volume_info', {'name': 'keep'})['exists']


def test_sysctls_in_one_module_run(ansible_for):
    """The host module's sysctls: checked, written to /etc/sysctl.d/90-nsbox.conf and set live (in the test host's own
    network namespace: the machine's values stay), idempotent, predicted in check mode; a bad name changes nothing."""
    with open('/proc/sys/net/ipv4/ip_forward') as f:
        machine_before = f.read()
    wanted = {'net.ipv4.ip_forward': 1, 'net.ipv4.ping_group_range': '0 2147483647'}
    with TestHost('sysctlhost', netns=True) as host:
        runner = ansible_for(host)
        host.ssh('rm -rf /etc/nsbox /usr/local/lib/nsbox /etc/sysctl.d/90-nsbox.conf')
        live = 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ping_group_range'
        before = host.ssh(live).stdout
        check = runner.module('nsbox.runtime.host', {'sysctls': wanted, 'install_library': False}, check=True, diff=True)
        assert check['_status'] == 'changed' and 'write /etc/sysctl.d/90-nsbox.conf' in check['changes'], check
        assert 'set net.ipv4.ping_group_range = 0 2147483647 (was %s)' % ' '.join(before.split()[1:]) in check['changes'], check
        assert host.ssh(live).stdout == before and host.ssh('test -e /etc/sysctl.d/90-nsbox.conf', check=False).returncode == 1
        done = runner.module('nsbox.runtime.host', {'sysctls': wanted, 'install_library': False})
        assert done['_status'] == 'changed', done
        assert host.ssh(live).stdout.split() == ['1', '0', '2147483647']
        assert host.ssh('cat /etc/sysctl.d/90-nsbox.conf').stdout == (
            '# Written by nsbox.runtime.host\nnet.ipv4.ip_forward = 1\nnet.ipv4.ping_group_range = 0 2147483647\n')
        again = runner.module('nsbox.runtime.host', {'sysctls': wanted, 'install_library': False})
        assert again['_status'] == 'ok' and again['changes'] == [], again
        bad = runner.module('nsbox.runtime.host', {'sysctls': {'net.ipv4.ip_forward': 0, 'net.ipv4.nosuch': 1}, 'install_library': False})
        assert bad['_status'] == 'failed' and 'failed to set sysctl net.ipv4.nosuch: this kernel has no such parameter' in bad['msg'], bad
        assert host.ssh(live).stdout.split() == ['1', '0', '2147483647']  # nothing changed, not even the valid one
    with open('/proc/sys/net/ipv4/ip_forward') as f:
        assert f.read() == machine_before


def test_kernel_modules_in_one_module_run(ansible_for):
    """The host module's kernel_modules: present ones (this machine's kernel has overlay, no loadable modules at all:
    loading runs on the real-host VM, tests/realhost/test_host_facts.py) are listed in
    /etc/modules-load.d/nsbox.conf, idempotent; kernel_modules_load false only warns; a module that cannot be
    loaded fails the task, names it, and leaves the file as it was."""
    with TestHost('kmodhost') as host:
        runner = ansible_for(host)
        host.ssh('rm -rf /etc/nsbox /usr/local/lib/nsbox /etc/modules-load.d/nsbox.conf')
        args = {'kernel_modules': ['overlay'], 'install_library': False}
        check = runner.module('nsbox.runtime.host', args, check=True, diff=True)
        assert check['_status'] == 'changed' and 'write /etc/modules-load.d/nsbox.conf' in check['changes'], check
        assert check['kernel_modules'] == {'overlay': True}
        assert host.ssh('test -e /etc/modules-load.d/nsbox.conf', check=False).returncode == 1
        done = runner.module('nsbox.runtime.host', args)
        assert done['_status'] == 'changed' and host.ssh('cat /etc/modules-load.d/nsbox.conf').stdout == (
            '# Written by nsbox.runtime.host\noverlay\n'), done
        again = runner.module('nsbox.runtime.host', args)
        assert again['_status'] == 'ok' and again['changes'] == [], again
        missing = 'nsbox_test_absent'  # no kernel has it
        look = runner.module('nsbox.runtime.host', {'kernel_modules': ['overlay', missing], 'kernel_modules_load': False,
                                                    'install_library': False})
        assert look['_status'] == 'ok' and look['kernel_modules'] == {'overlay': True, missing: False}, look
        assert any(missing in w and 'not loaded' in w for w in look.get('warnings', [])), look
        bad = runner.module('nsbox.runtime.host', {'kernel_modules': ['overlay', missing], 'install_library': False})
        assert bad['_status'] == 'failed' and bad['msg'].startswith('failed to load kernel module %s: ' % missing), bad
        assert host.ssh('cat /etc/modules-load.d/nsbox.conf').stdout == '# Written by nsbox.runtime.host\noverlay\n'
