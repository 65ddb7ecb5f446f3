# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's systemd unit: its text (pure), ``systemd-analyze verify`` on every kind of unit the
module writes, the supervisor options, and the unit file's writes (systemctl replaced: pure logic)."""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options, policy, runner, unit
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.layout import Layout
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}


def config(name='web', **opts):
    opts.setdefault('supervisor', 'systemd')
    return options.resolve(name, options.check(opts, {'systemd': True}), IMAGE, {'Cmd': ['sh']})


def sections(text):
    """{section: [(key, value)]} of a unit's text."""
    out, current = {}, None
    for line in text.splitlines():
        if line.startswith('[') and line.endswith(']'):
            current = out.setdefault(line[1:-1], [])
        elif line and not line.startswith('#'):
            key, _sep, value = line.partition('=')
            current.append((key, value))
    return out


def test_the_unit_of_a_plain_container():
    text = unit.unit_text(config(), 252)
    assert text.startswith(unit.HEADER % 'web')
    s = sections(text)
    service = dict(s['Service'])
    assert service['Type'] == 'notify' and service['NotifyAccess'] == 'main' and service['Delegate'] == 'yes'
    assert service['ExecStart'] == '/usr/local/bin/nsbox run-unit web'
    assert service['ExecStopPost'] == '/usr/local/bin/nsbox unit-stopped web'
    assert service['KillMode'] == 'mixed' and service['KillSignal'] == 'SIGTERM' and service['TimeoutStopSec'] == '10s'
    assert service['Restart'] == 'no' and service['StandardOutput'] == 'journal' and service['SyslogIdentifier'] == 'web'
    assert dict(s['Unit']) == {'Description': 'nsbox container web', 'After': 'network.target'}
    assert s['Install'] == [('WantedBy', 'multi-user.target')]


def test_stop_signal_timeout_restart_policy_and_depends_on():
    cfg = config(stop_signal='SIGQUIT', stop_timeout=0, restart_policy='on-failure', restart_retries=2, depends_on=['db', 'cache', 'db'])
    assert cfg['depends_on'] == ['cache', 'db']
    s = sections(unit.unit_text(cfg, 252))
    service, unit_sec = dict(s['Service']), dict(s['Unit'])
    assert service['KillSignal'] == 'SIGQUIT'
    assert service['TimeoutStopSec'] == '1ms'  # Docker's 0 (kill at once), not systemd's 0 (no timeout)
    assert service['Restart'] == 'on-failure' and service['RestartSec'] == '100ms'
    assert unit_sec['StartLimitBurst'] == '3' and unit_sec['StartLimitIntervalSec'] == 'infinity'  # [Unit] keys
    assert 'StartLimitBurst' not in service
    assert unit_sec['After'] == 'network.target nsbox-cache.service nsbox-db.service'
    assert unit_sec['Requires'] == 'nsbox-cache.service nsbox-db.service'


def test_directives_newer_than_the_hosts_systemd_are_left_out():
    cfg = config(restart_policy='always')
    assert 'RestartSteps=' not in unit.unit_text(cfg, 252)
    assert 'RestartSteps=10' in unit.unit_text(cfg, 254) and 'RestartMaxDelaySec=60s' in unit.unit_text(cfg, 255)


def test_a_config_file_and_data_root_of_the_modules_own_are_passed_on_quoted():
    s = dict(sections(unit.unit_text(config(), 252, config_path='/etc/my nsbox/c.json', data_root='/srv/100%'))['Service'])
    assert s['ExecStart'] == '/usr/local/bin/nsbox --config "/etc/my nsbox/c.json" run-unit web --data-root "/srv/100%%"'


def test_supervisor_auto_enabled_and_depends_on():
    assert options.check({}, {'systemd': True})['supervisor'] == 'nsbox'  # the default stays the module's own
    assert options.check({'supervisor': 'auto'}, {'systemd': True})['supervisor'] == 'systemd'
    assert options.check({'supervisor': 'auto'}, {'systemd': False})['supervisor'] == 'nsbox'
    kept = options.check({'supervisor': 'auto', 'enabled': False, 'depends_on': ['db']}, {'systemd': False})
    assert (kept['supervisor'], kept['enabled'], kept['depends_on']) == ('nsbox', False, ['db'])
    with pytest.raises(ConfigError, match='systemd is not PID 1'):
        options.check({'supervisor': 'systemd'}, {'systemd': False})
    with pytest.raises(ConfigError, match='enabled: it says whether.*supervisor systemd'):
        options.check({'enabled': False}, {'systemd': True})
    # depends_on orders the containers module's converge whatever the supervisor (issue 20 item 1: it was refused).
    assert options.check({'supervisor': 'nsbox', 'depends_on': ['db']}, {'systemd': True})['depends_on'] == ['db']
    with pytest.raises(ConfigError, match='container names'):
        options.check({'supervisor': 'systemd', 'depends_on': ['a b']}, {'systemd': True})
    assert options.differences(config(), config(enabled=False)) == {'enabled': 'stored'}
    assert options.differences(config(), config(supervisor='nsbox')) == {'supervisor': 'recreate'}
    old = {k: v for k, v in config(supervisor='nsbox').items() if k not in ('supervisor', 'enabled', 'depends_on')}
    assert options.differences(old, config(supervisor='nsbox')) == {}  # containers made before these options


def _stub(tmp_path):
    nsbox = tmp_path / 'nsbox'
    nsbox.write_text('#!/bin/sh\nexit 0\n')
    nsbox.chmod(0o755)
    return str(nsbox)


@pytest.mark.skipif(not shutil.which('systemd-analyze'), reason='no systemd-analyze here')
def test_systemd_analyze_verify_accepts_every_kind_of_unit(tmp_path):
    """Every shape the module writes, verified by systemd's own parser (with the units they depend on)."""
    version = unit.systemd_version()
    nsbox = _stub(tmp_path)
    cases = [config('plain'), config('db', restart_policy='always', stop_signal='SIGINT', stop_timeout=30),
             config('app', restart_policy='on-failure', restart_retries=5, depends_on=['db', 'plain'], stop_timeout=0),
             config('cache', restart_policy='unless-stopped', enabled=False), config('odd.name_1-x')]
    paths = []
    for cfg in cases:
        path = tmp_path / unit.unit_name(cfg['name'])
        path.write_text(unit.unit_text(cfg, version, config_path='/etc/nsbox x/config.json', data_root='/srv/nsbox', nsbox=nsbox))
        paths.append(str(path))
    proc = subprocess.run(['systemd-analyze', 'verify', '--man=no'] + paths, cwd=str(tmp_path), capture_output=True, text=True, check=False,
                          env=dict(os.environ, SYSTEMD_LOG_LEVEL='notice'))
    assert proc.returncode == 0 and not proc.stderr.strip() and not proc.stdout.strip(), proc


class FakeSystemctl:
    def __init__(self):
        self.calls, self.enabled = [], set()

    def __call__(self, argv, check=True):
        self.calls.append(argv[1:])
        rc = 0
        if argv[1] == 'is-enabled':
            rc = 0 if argv[-1] in self.enabled else 1
        elif argv[1] == 'enable':
            self.enabled.add(argv[-1])
        elif argv[1] == 'disable':
            self.enabled.discard(argv[-1])
        return subprocess.CompletedProcess(argv, rc, b'systemd 252 (252.38)\n' if argv[1] == '--version' else b'', b'')


def test_unit_file_written_only_when_it_changes_and_reloaded_only_then(tmp_path):
    fake = FakeSystemctl()
    units = unit.Units(str(tmp_path), run=fake)
    assert unit.systemd_version(fake) == 252
    text = unit.unit_text(config(), 252)
    assert units.write('web', text) is True
    assert (tmp_path / 'nsbox-web.service').read_text() == text and oct((tmp_path / 'nsbox-web.service').stat().st_mode & 0o777) == '0o644'
    assert fake.calls[-1] == ['daemon-reload']
    fake.calls.clear()
    assert units.write('web', text) is False and fake.calls == []
    assert units.set_enabled('web', True) is True and units.set_enabled('web', True) is False
    assert units.set_enabled('web', False) is True
    assert units.remove('web') is True and not (tmp_path / 'nsbox-web.service').exists()
    assert ['stop', 'nsbox-web.service'] in fake.calls and fake.calls.count(['daemon-reload']) == 1
    assert units.remove('web') is False


def test_a_unit_not_written_by_nsbox_is_never_overwritten_nor_removed(tmp_path):
    units = unit.Units(str(tmp_path), run=FakeSystemctl())
    (tmp_path / 'nsbox-web.service').write_text('[Service]\nExecStart=/bin/true\n')
    with pytest.raises(Exception, match='not written by nsbox'):
        units.write('web', unit.unit_text(config(), 252))
    with pytest.raises(Exception, match='not written by nsbox'):
        units.remove('web')


def test_the_delegated_cgroup_only_under_the_systemd_driver_on_v2(tmp_path):
    cgroup = tmp_path / 'cgroup'
    cgroup.write_text('0::/system.slice/nsbox-web.service\n')
    v2, hybrid = Layout('v2', '/sys/fs/cgroup', {}), Layout('hybrid', '/sys/fs/cgroup/unified', {'memory': '/sys/fs/cgroup/memory'})
    auto = {'cgroup_driver': 'auto'}
    assert runner.delegated_cgroup(auto, v2, True, str(cgroup)) == '/system.slice/nsbox-web.service'
    assert runner.delegated_cgroup({'cgroup_driver': 'cgroupfs'}, v2, True, str(cgroup)) is None
    assert runner.delegated_cgroup(auto, hybrid, True, str(cgroup)) is None
    cgroup.write_text('0::/user.slice/session-1.scope\n')
    assert runner.delegated_cgroup(auto, v2, True, str(cgroup)) is None


def test_systemd_restart_is_what_the_unit_says():
    cfg = config(restart_policy='on-failure:4')
    s = sections(unit.unit_text(cfg, 252))
    want = policy.systemd_restart(cfg['restart_policy'])
    got = dict(s['Unit'] + s['Service'])
    assert all(got[k] == v for k, v in want.items() if k not in unit.SINCE)
