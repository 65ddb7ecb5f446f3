# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capabilities, no_new_privs and seccomp for real, read inside the containers: the defaults (Docker's
14 capabilities, no_new_privs, Docker's seccomp profile refusing unshare, mount, reboot), what
cap_drop, cap_add, security_opt and privileged lift, a profile file of one's own (a changed file
recreates the container), a non-root user without no_new_privs, and container_exec getting the
same as the init."""
from __future__ import annotations

import json
import os
import secrets
import shutil

import pytest

from harness.containers import LAYOUT, NOTHING, V1_ONLY, setup, teardown

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

BASE = {'image': 'busybox', 'command': 'sleep 3600', 'stop_timeout': 0}
DEFAULT_CAPS = '00000000a80425fb'
EPERM = 'Operation not permitted'
STATUS = "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/%s/status | tr -s '\\t ' ' '"


@pytest.fixture(scope='module')
def sec_host(testhost, ansible, fixtures):
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive})
    teardown(testhost, parent)


@pytest.fixture
def box(sec_host, reaper):
    yield sec_host
    left = teardown(sec_host.host, sec_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


@pytest.fixture
def profile_dir():
    """A directory for profile files (the test host's /tmp is this machine's); removed afterwards."""
    path = '/tmp/nsbox-seccomp-%s' % secrets.token_hex(4)
    os.mkdir(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _status(text):
    return dict(line.split(' ', 1) for line in text.strip().splitlines())


def _failed_with(result, text):
    return result.get('rc') not in (0, None) and text in result.get('stderr', ''), result


def test_what_a_container_gets(box):
    host_bounding = box.sh("awk '/^CapBnd/{print $2}' /proc/self/status")  # what the test host's root may have
    containers = {
        'sec-default': {},
        'sec-nocaps': {'cap_drop': ['ALL']},
        'sec-admin': {'cap_add': ['sys_admin']},
        'sec-unconfined': {'security_opt': ['seccomp=unconfined', 'no-new-privileges=false']},
        'sec-priv': {'privileged': True},
        'sec-user': {'user': '1000', 'security_opt': ['no-new-privileges:false']},  # the filter loaded before the user switch
    }
    try:
        box.create_many(containers, BASE)
        seen = box.exec_many({
            'default init': ('sec-default', ['sh', '-c', STATUS % '1'], {}),
            'default exec': ('sec-default', ['sh', '-c', STATUS % 'self'], {}),
            'default unshare': ('sec-default', ['unshare', '-n', 'true'], {}),
            'default mount': ('sec-default', ['mount', '-t', 'tmpfs', 'x', '/tmp'], {}),
            'default reboot': ('sec-default', ['reboot', '-f'], {}),  # refused by seccomp (and a private pid namespace besides)
            'default sysctl': ('sec-default', ['sh', '-c', 'echo x > /proc/sys/kernel/hostname'], {}),
            'default sethostname': ('sec-default', ['hostname', 'other'], {}),
            'default mkdir': ('sec-default', ['mkdir', '/made'], {}),
            'nocaps': ('sec-nocaps', ['sh', '-c', STATUS % '1'], {}),
            'nocaps chown': ('sec-nocaps', ['chown', '1:1', '/tmp'], {}),
            'admin': ('sec-admin', ['sh', '-c', STATUS % '1'], {}),
            'admin mount': ('sec-admin', ['sh', '-c', 'mount -t tmpfs x /tmp && grep -c " /tmp .* tmpfs " /proc/self/mountinfo'], {}),
            'admin unshare': ('sec-admin', ['unshare', '-n', 'true'], {}),
            'unconfined': ('sec-unconfined', ['sh', '-c', STATUS % '1'], {}),
            'unconfined exec': ('sec-unconfined', ['sh', '-c', STATUS % 'self'], {}),
            'priv': ('sec-priv', ['sh', '-c', STATUS % '1'], {}),
            'priv mounts': ('sec-priv', ['cat', '/proc/1/mountinfo'], {}),
            'user': ('sec-user', ['sh', '-c', STATUS % '1'], {}),
        })
    finally:
        box.remove_many(containers)
    ok = {label: r for label, r in seen.items() if not r.get('failed')}
    for label in ('default init', 'default exec', 'default mkdir', 'nocaps', 'admin', 'admin mount', 'admin unshare', 'unconfined',
                  'unconfined exec', 'priv', 'priv mounts', 'user'):
        assert label in ok, seen[label]
    for label in ('default init', 'default exec'):
        assert _status(ok[label]['stdout']) == {'CapEff:': DEFAULT_CAPS, 'CapBnd:': DEFAULT_CAPS, 'NoNewPrivs:': '1', 'Seccomp:': '2'}, ok[label]
    assert _failed_with(seen['default unshare'], EPERM)
    assert _failed_with(seen['default mount'], EPERM)
    assert seen['default reboot'].get('rc') not in (0, None), seen['default reboot']
    assert seen['default sysctl'].get('rc') not in (0, None), seen['default sysctl']  # /proc/sys is read-only
    assert _failed_with(seen['default sethostname'], EPERM)
    nocaps = _status(ok['nocaps']['stdout'])
    assert (nocaps['CapEff:'], nocaps['CapBnd:'], nocaps['Seccomp:']) == ('0' * 16, '0' * 16, '2'), nocaps
    assert _failed_with(seen['nocaps chown'], EPERM)
    admin = _status(ok['admin']['stdout'])
    assert int(admin['CapEff:'], 16) == int(DEFAULT_CAPS, 16) | 1 << 21 and admin['Seccomp:'] == '2', admin
    assert ok['admin mount']['stdout'].strip() == '1', ok['admin mount']
    unconfined = [_status(ok[label]['stdout']) for label in ('unconfined', 'unconfined exec')]
    assert all((s['Seccomp:'], s['NoNewPrivs:'], s['CapEff:']) == ('0', '0', DEFAULT_CAPS) for s in unconfined), unconfined
    priv = _status(ok['priv']['stdout'])
    # The host's bounding set (root here lacks CAP_SYS_RESOURCE): all of it, and no seccomp.
    assert (priv['CapEff:'], priv['CapBnd:'], priv['Seccomp:'], priv['NoNewPrivs:']) == (host_bounding, host_bounding, '0', '1'), priv
    mounts = {line.split()[4]: line.split()[5] for line in ok['priv mounts']['stdout'].splitlines()}
    assert mounts['/sys'].startswith('rw'), mounts
    assert '/proc/kcore' not in mounts and '/proc/sys' not in mounts and '/sys/firmware' not in mounts, mounts
    user = _status(ok['user']['stdout'])
    assert (user['CapEff:'], user['CapBnd:'], user['NoNewPrivs:'], user['Seccomp:']) == ('0' * 16, DEFAULT_CAPS, '0', '2'), user


def test_a_profile_file_of_ones_own(box, profile_dir):
    """Docker's JSON format from a file on the host: mkdir refused with EPERM; the file changed, the
    container is recreated with the new profile; left out, back to the default profile."""
    path = os.path.join(profile_dir, 'no-mkdir.json')

    def write(names):
        with open(path, 'w') as f:
            json.dump({'defaultAction': 'SCMP_ACT_ALLOW', 'architectures': ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
                       'syscalls': [{'names': names, 'action': 'SCMP_ACT_ERRNO', 'comment': 'no directories'}]}, f)
    write(['mkdir', 'mkdirat'])
    args = dict(BASE, name='sec-profile', security_opt=['seccomp=%s' % path])
    try:
        first = box.run(**args)
        assert first['_status'] == 'changed', first
        seen = box.execs('sec-profile', {'mkdir': (['mkdir', '/x'], {}), 'touch': (['touch', '/y'], {}),
                                         'status': (['sh', '-c', STATUS % '1'], {})})
        assert _failed_with(seen['mkdir'], EPERM)
        assert not seen['touch'].get('failed') and _status(seen['status']['stdout'])['Seccomp:'] == '2', seen
        assert box.run(**args)['_status'] == 'ok'
        write(['rmdir'])
        again = box.run(**args)
        assert again['actions'][0] == 'recreated container sec-profile (security_opt)', again
        seen = box.execs('sec-profile', {'mkdir': (['mkdir', '/x'], {}), 'rmdir': (['rmdir', '/x'], {})})
        assert not seen['mkdir'].get('failed') and _failed_with(seen['rmdir'], EPERM), seen
        back = box.run(**dict(BASE, name='sec-profile'))
        assert back['actions'][0] == 'recreated container sec-profile (security_opt)', back
        assert not box.exec('sec-profile', ['sh', '-c', 'mkdir /z && rmdir /z']).get('failed')
    finally:
        box.remove_many(['sec-profile'])
