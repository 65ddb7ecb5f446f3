# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Capabilities, security_opt and seccomp: option parsing, Docker's capability rules, the default
profile's rules per capability set and architecture, and Docker's JSON format (no root needed)."""
from __future__ import annotations

import errno
import json
import sys

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import caps, seccomp
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options, security
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, NsboxError

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}


def resolved(**opts):
    return options.resolve('web', options.check(opts), IMAGE, {'Cmd': ['sh']})


# -- options ----------------------------------------------------------------------------------------
def test_defaults_are_stored_and_docker_forms_normalise(tmp_path):
    cfg = resolved()
    assert (cfg['cap_add'], cfg['cap_drop'], cfg['privileged']) == ([], [], False)
    assert cfg['security_opt'] == {'no_new_privileges': True, 'seccomp': 'default'}
    cfg = resolved(cap_add=['net_admin', 'CAP_SYS_TIME', 'Net_Admin'], cap_drop=['all'],
                   security_opt=['seccomp:unconfined', 'no-new-privileges:false'])
    assert cfg['cap_add'] == ['CAP_NET_ADMIN', 'CAP_SYS_TIME'] and cfg['cap_drop'] == ['ALL']
    assert cfg['security_opt'] == {'no_new_privileges': False, 'seccomp': 'unconfined'}
    assert resolved(security_opt=['no-new-privileges'])['security_opt']['no_new_privileges'] is True
    assert resolved(security_opt=['no-new-privileges=true', 'seccomp=builtin']) == resolved()


def test_a_profile_file_is_stored_resolved_and_a_changed_file_recreates(tmp_path):
    path = tmp_path / 'p.json'
    path.write_text(json.dumps({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO',
                                                                                 'comment': 'no directories'}]}))
    cfg = resolved(security_opt=['seccomp=%s' % path])
    stored = cfg['security_opt']['seccomp']
    assert stored['path'] == str(path)
    assert stored['profile'] == {'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO'}]}
    assert options.differences(cfg, resolved(security_opt=['seccomp=%s' % path])) == {}
    path.write_text(json.dumps({'defaultAction': 'SCMP_ACT_ALLOW', 'syscalls': [{'names': ['rmdir'], 'action': 'SCMP_ACT_ERRNO'}]}))
    assert options.differences(cfg, resolved(security_opt=['seccomp=%s' % path])) == {'security_opt': 'recreate'}
    assert options.differences(cfg, resolved()) == {'security_opt': 'recreate'}


def test_differences_of_the_new_options_recreate():
    base = resolved()
    for opts, name in (({'cap_add': ['sys_admin']}, 'cap_add'), ({'cap_drop': ['chown']}, 'cap_drop'), ({'privileged': True}, 'privileged'),
                       ({'security_opt': ['no-new-privileges=false']}, 'security_opt')):
        assert options.differences(base, resolved(**opts)) == {name: 'recreate'}


def test_a_config_from_before_these_options_compares_as_unchanged():
    old = resolved()
    for field in ('cap_add', 'cap_drop', 'privileged', 'security_opt'):
        del old[field]
    assert options.differences(old, resolved()) == {}
    assert options.differences(old, resolved(security_opt=['no-new-privileges', 'seccomp=builtin'])) == {}
    assert security.process_settings(old) == security.process_settings(resolved())


@pytest.mark.parametrize('opts, message', [
    ({'cap_add': ['CAP_FLY']}, "cap_add 'CAP_FLY'.*unknown capability"),
    ({'cap_drop': [3]}, 'a capability is a name'),
    ({'privileged': True, 'cap_add': ['net_admin']}, 'would do nothing'),
    ({'privileged': True, 'cap_drop': ['ALL']}, 'would do nothing'),
    ({'security_opt': ['seccomp=profile.json']}, 'absolute path'),
    ({'security_opt': ['seccomp=/nonexistent/profile.json']}, 'seccomp profile /nonexistent/profile.json'),
    ({'security_opt': ['seccomp=']}, 'seccomp=unconfined or'),
    ({'security_opt': ['no-new-privileges=maybe']}, 'no-new-privileges=false'),
    ({'security_opt': ['apparmor=unconfined']}, 'not supported'),
    ({'security_opt': ['label=disable']}, 'not supported'),
    ({'security_opt': ['seccomp=unconfined', 'seccomp=unconfined']}, 'more than once'),
    ({'security_opt': ['bogus']}, 'expected seccomp=unconfined'),
])
def test_bad_security_input_names_the_option(opts, message):
    with pytest.raises(ConfigError, match=message):
        options.check(opts)


@pytest.mark.parametrize('content, message', [
    ('not json', 'not JSON'),
    ('[]', 'JSON object'),
    ('{"defaultAction": "SCMP_ACT_NOTIFY", "syscalls": []}', 'defaultAction'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_MAYBE"}]}', r'syscalls\[0\] action'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": [], "action": "SCMP_ACT_ERRNO"}]}', 'no syscall names'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 1, '
     '"op": "SCMP_CMP_EQ"}]}]}', 'arguments 0 to 5'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, '
     '"op": "SCMP_CMP_LIKE"}]}]}', 'op one of'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_FLY"]}}]}',
     'unknown capability'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ERRNO", "includes": {"distro": ["x"]}}]}',
     'unknown keys distro'),
    ('{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"], "syscalls": []}', 'unknown architectures'),
])
def test_bad_profiles_are_refused(tmp_path, content, message):
    path = tmp_path / 'p.json'
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        options.check({'security_opt': ['seccomp=%s' % path]})


def test_privileged_refuses_a_profile_file(tmp_path):
    path = tmp_path / 'p.json'
    path.write_text('{"defaultAction": "SCMP_ACT_ALLOW"}')
    with pytest.raises(ConfigError, match='runs without seccomp'):
        options.check({'privileged': True, 'security_opt': ['seccomp=%s' % path]})
    assert options.check({'privileged': True, 'security_opt': ['seccomp=unconfined']})['privileged']


# -- capabilities -------------------------------------------------------------------------------------
@pytest.mark.parametrize('add, drop, expected', [
    ([], [], set(caps.DEFAULT)),
    (['CAP_SYS_ADMIN'], [], set(caps.DEFAULT) | {'CAP_SYS_ADMIN'}),
    ([], ['CAP_CHOWN', 'CAP_KILL'], set(caps.DEFAULT) - {'CAP_CHOWN', 'CAP_KILL'}),
    ([], ['ALL'], set()),
    (['CAP_NET_ADMIN'], ['ALL'], {'CAP_NET_ADMIN'}),
    (['ALL'], ['CAP_SYS_ADMIN'], set(caps.NAMES) - {'CAP_SYS_ADMIN'}),
    (['CAP_CHOWN'], ['CAP_CHOWN'], set(caps.DEFAULT)),  # dropped, then added: added wins (Docker's order)
])
def test_docker_capability_rules(add, drop, expected):
    assert set(caps.container_set(add, drop, kernel_last=40)) == expected


def test_privileged_gets_the_bounding_set(tmp_path):
    status = tmp_path / 'status'
    status.write_text('Name:\tx\nCapBnd:\t000001fffeffffff\n')  # all but CAP_SYS_RESOURCE (24), as root here
    bounding = caps.bounding_set(str(status))
    assert 'CAP_SYS_RESOURCE' not in bounding and len(bounding) == 40
    assert caps.container_set(privileged=True, bounding=bounding) == bounding
    settings = security.process_settings(resolved(privileged=True), bounding=bounding)
    assert settings == {'capabilities': list(bounding), 'no_new_privs': True, 'seccomp': None, 'masked_paths': [], 'readonly_paths': [],
                        'writable_sys': True}


def test_process_settings():
    settings = security.process_settings(resolved(cap_add=['sys_admin'], security_opt=['no-new-privileges=false']))
    assert 'CAP_SYS_ADMIN' in settings['capabilities'] and settings['no_new_privs'] is False
    assert settings['seccomp'] is seccomp.DEFAULT_PROFILE and 'masked_paths' not in settings
    assert security.process_settings(resolved(security_opt=['seccomp=unconfined']))['seccomp'] is None


# -- seccomp ----------------------------------------------------------------------------------------
def _by_name(items):
    out = {}
    for name, action, args in items:
        out.setdefault(name, []).append((action, args))
    return out


def test_the_default_profile_is_valid_in_docker_format():
    assert seccomp.parse_profile(json.loads(json.dumps(seccomp.DEFAULT_PROFILE)))['defaultAction'] == 'SCMP_ACT_ERRNO'


def test_default_profile_with_the_default_capabilities():
    default, items = seccomp.rules(seccomp.DEFAULT_PROFILE, caps.DEFAULT, machine='x86_64', kernel_release='6.1.0-18-amd64')
    assert default == ('SCMP_ACT_ERRNO', errno.EPERM)
    rules = _by_name(items)
    allow = ('SCMP_ACT_ALLOW', None)
    for name in ('read', 'write', 'execve', 'mkdir', 'ptrace', 'arch_prctl', 'chroot', 'capset', 'setuid'):
        assert rules[name] == [(allow, [])], name
    # refused whatever the capabilities, or without the one that makes them meaningful
    for name in ('keyctl', 'add_key', 'request_key', 'userfaultfd', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module',
                 'delete_module', 'bpf', 'mount', 'umount2', 'unshare', 'setns', 'pivot_root', 'reboot', 'io_uring_setup', 'swapon',
                 'open_by_handle_at', 'sethostname', 'clock_settime', 'acct', 'perf_event_open', 'syslog', 's390_runtime_instr'):
        assert name not in rules, name
    # clone: only without namespace flags; clone3: ENOSYS, so a libc falls back to clone
    assert rules['clone'] == [(allow, [(0, 'SCMP_CMP_MASKED_EQ', seccomp.CLONE_NAMESPACE_FLAGS, 0)])]
    assert rules['clone3'] == [(('SCMP_ACT_ERRNO', errno.ENOSYS), [])]
    assert rules['socket'] == [(allow, [(0, 'SCMP_CMP_NE', 40, 0)])]
    assert len(rules['personality']) == 5
    assert seccomp.architectures(seccomp.DEFAULT_PROFILE, 'x86_64') == ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']
    assert seccomp.architectures(seccomp.DEFAULT_PROFILE, 'aarch64') == ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']


def test_capabilities_open_their_syscalls():
    allow = ('SCMP_ACT_ALLOW', None)
    with_admin = _by_name(seccomp.rules(seccomp.DEFAULT_PROFILE, caps.DEFAULT + ('CAP_SYS_ADMIN',), machine='x86_64')[1])
    for name in ('mount', 'umount2', 'unshare', 'setns', 'bpf', 'sethostname', 'fsopen'):
        assert with_admin[name] == [(allow, [])], name
    assert with_admin['clone'] == [(allow, [])] and with_admin['clone3'] == [(allow, [])]  # no flag check, no ENOSYS
    for cap, names in (('CAP_SYS_BOOT', ['reboot']), ('CAP_SYS_MODULE', ['init_module', 'finit_module', 'delete_module']),
                       ('CAP_SYS_TIME', ['clock_settime', 'settimeofday']), ('CAP_BPF', ['bpf']), ('CAP_SYSLOG', ['syslog']),
                       ('CAP_DAC_READ_SEARCH', ['open_by_handle_at']), ('CAP_SYS_PTRACE', ['kcmp', 'pidfd_getfd'])):
        rules = _by_name(seccomp.rules(seccomp.DEFAULT_PROFILE, caps.DEFAULT + (cap,), machine='x86_64')[1])
        assert all(rules.get(n) == [(allow, [])] for n in names), cap
    none = _by_name(seccomp.rules(seccomp.DEFAULT_PROFILE, (), machine='x86_64')[1])
    assert 'chroot' not in none  # CAP_SYS_CHROOT dropped: chroot refused too


def test_arches_and_kernels_select_entries():
    on_arm = _by_name(seccomp.rules(seccomp.DEFAULT_PROFILE, caps.DEFAULT, machine='aarch64')[1])
    assert 'arch_prctl' not in on_arm and 'set_tls' in on_arm and 'modify_ldt' not in on_arm
    on_s390 = _by_name(seccomp.rules(seccomp.DEFAULT_PROFILE, caps.DEFAULT, machine='s390x')[1])
    assert on_s390['clone'] == [(('SCMP_ACT_ALLOW', None), [(1, 'SCMP_CMP_MASKED_EQ', seccomp.CLONE_NAMESPACE_FLAGS, 0)])]
    old = _by_name(seccomp.rules(seccomp.DEFAULT_PROFILE, caps.DEFAULT, machine='x86_64', kernel_release='4.4.0-21-generic')[1])
    assert 'ptrace' not in old


def test_custom_profile_rules():
    profile = seccomp.parse_profile({
        'defaultAction': 'SCMP_ACT_ALLOW', 'defaultErrnoRet': None,
        'syscalls': [
            {'names': ['mkdir', 'mkdirat'], 'action': 'SCMP_ACT_ERRNO'},
            {'names': ['read'], 'action': 'SCMP_ACT_ALLOW'},  # the default action: left out
            {'name': 'kill', 'action': 'SCMP_ACT_ERRNO', 'errnoRet': 13,
             'args': [{'index': 1, 'value': 9, 'op': 'SCMP_CMP_EQ'}, {'index': 1, 'value': 15, 'op': 'SCMP_CMP_EQ'}]},
        ]})
    default, items = seccomp.rules(profile, (), machine='x86_64')
    assert default == ('SCMP_ACT_ALLOW', None)
    assert items == [('mkdir', ('SCMP_ACT_ERRNO', errno.EPERM), []), ('mkdirat', ('SCMP_ACT_ERRNO', errno.EPERM), []),
                     ('kill', ('SCMP_ACT_ERRNO', 13), [(1, 'SCMP_CMP_EQ', 9, 0)]), ('kill', ('SCMP_ACT_ERRNO', 13), [(1, 'SCMP_CMP_EQ', 15, 0)])]
    assert seccomp.architectures({'architectures': ['SCMP_ARCH_X86', 'SCMP_ARCH_X86_64']}, 'x86_64') == ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86']
    with pytest.raises(ConfigError, match='not supported'):
        seccomp.architectures(profile, 'vax')


def test_a_missing_binding_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, 'seccomp', None)
    with pytest.raises(NsboxError, match='python3-seccomp'):
        seccomp.library()


def test_the_filter_builds_with_libseccomp():
    pytest.importorskip('seccomp')
    seccomp.build(seccomp.DEFAULT_PROFILE, caps.DEFAULT)
    seccomp.build(seccomp.DEFAULT_PROFILE, caps.NAMES)
