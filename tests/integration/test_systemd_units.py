# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers as systemd units, for real: systemd is PID 1 of a test host (harness/systemd_host.py),
reached over SSH by Ansible as any managed host.

The container module with ``supervisor: systemd`` writes ``nsbox-NAME.service`` and starts it;
systemd's main pid is the container's init (no process of ours stays); ``systemctl stop`` stops it
and the runtime records the exit code; a crashing container is restarted per its policy by
systemd, then stays failed; the output is in the journal; a "reboot" (systemd powered off and
booted again on the same disk) brings back the enabled units and not the others; ``state: absent``
removes the unit. Inside, the host's cgroup tree is pure v2 (a cgroup namespace), so the systemd
cgroup driver puts each container in a child of its unit's delegated cgroup.

The tests run in order on one host (the module's fixture): each builds on what the previous left.
"""
from __future__ import annotations

import os
import shutil
import time

import pytest

from harness import images
from harness.containers import FIXTURE_CACHE
from harness.runner import AnsibleRunner
from harness.systemd_host import SYSTEMD, SystemdHost, UNIFIED

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not os.path.isdir(UNIFIED) or not os.path.exists(SYSTEMD)
                                or not all(shutil.which(c) for c in ('unshare', 'pivot_root', 'ip')),
                                reason='root, a cgroup2 hierarchy at %s, systemd (not as PID 1), unshare, pivot_root and ip' % UNIFIED)
LOOP = ['sh', '-c', "trap 'echo bye-$0; exit 0' TERM; echo hello-from-$0; while :; do sleep 0.1; done"]


@pytest.fixture(scope='module')
def sd(reaper):
    fixtures = images.FixtureImages(FIXTURE_CACHE).build()
    t0 = time.monotonic()
    host = SystemdHost('sdhost').start()
    ansible = AnsibleRunner([host])
    try:
        res = ansible.tasks([{'nsbox.runtime.host': {'default_network_mode': 'none'}},
                             {'nsbox.runtime.image': {'name': 'busybox', 'source': 'load', 'path': fixtures.docker_archive}}])
        assert res.rc == 0, res
        yield host, ansible
    finally:
        ansible.close()
        host.stop()
        print('systemd test host: boots %s s, module %.1f s' % (['%.1f' % s for s in host.boot_seconds], time.monotonic() - t0))
    reaper.check()
    assert not os.path.exists(host.cgroup) and not os.path.exists(host.net_ns_path) and not os.path.exists(host.workdir)


def container(ansible, name, **args):
    args.setdefault('image', 'busybox')
    args.setdefault('supervisor', 'systemd')
    return ansible.module('nsbox.runtime.container', dict(args, name=name))


def info(ansible, name):
    return infos(ansible, [name]).get(name)


def infos(ansible, names):
    """{name: container} in one task (an Ansible run costs seconds on a busy machine)."""
    out = ansible.module('nsbox.runtime.container_info', {'name': names})
    return {c['name']: c for c in out['containers']}


def show(host, name, *props):
    out = host.ssh('systemctl show --property=%s nsbox-%s.service' % (','.join(props), name)).stdout
    return dict(line.split('=', 1) for line in out.splitlines() if '=' in line)


def wait_for(what, read, until, timeout=30):
    """read() again until until(value); returns that value."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError('no %s after %ds' % (what, timeout))
        time.sleep(0.2)


def test_the_unit_runs_the_containers_init_as_its_main_process(sd):
    host, ansible = sd
    out = container(ansible, 'web', command=LOOP + ['web'], stop_timeout=5)
    assert out['_status'] == 'changed', out
    assert out['actions'] == ['created container web from busybox', 'wrote unit nsbox-web.service', 'enabled unit nsbox-web.service',
                              'started container web'], out['actions']
    assert out['unit']['active'] and out['unit']['enabled'] and out['unit']['name'] == 'nsbox-web.service'
    pid = out['container']['state']['pid']
    assert out['unit']['main_pid'] == pid and out['container']['state']['running']
    assert host.ssh('systemctl is-active nsbox-web.service').stdout.strip() == 'active'
    assert show(host, 'web', 'MainPID', 'Type', 'Delegate') == {'MainPID': str(pid), 'Type': 'notify', 'Delegate': 'yes'}
    # no process of ours stays: the unit's cgroup holds the init (and what it runs), in the delegated child
    cgroup = '/sys/fs/cgroup/system.slice/nsbox-web.service'
    procs = host.ssh('cat %s/container/cgroup.procs; echo -; cat %s/runner/cgroup.procs' % (cgroup, cgroup)).stdout.split('-')
    assert str(pid) in procs[0].split() and procs[1].split() == [], procs
    assert host.ssh('pgrep -f "[r]un-unit|[s]upervise|[m]onitor" || true').stdout.strip() == ''
    assert host.ssh('systemd-analyze verify /etc/systemd/system/nsbox-web.service && echo ok').stdout.strip() == 'ok'
    again = container(ansible, 'web', command=LOOP + ['web'], stop_timeout=5)
    assert again['_status'] == 'ok', again


def test_check_mode_predicts_a_unit_change_and_diff_shows_it(sd):
    host, ansible = sd
    before = host.ssh('cat /etc/systemd/system/nsbox-web.service').stdout
    res = ansible.tasks([{'nsbox.runtime.container': {'name': 'web', 'image': 'busybox', 'supervisor': 'systemd', 'command': LOOP + ['web'],
                                                      'stop_timeout': 7}}], check=True, diff=True)
    rec = res.records[0]
    assert rec['status'] == 'changed', rec
    assert rec['result']['actions'] == ['updated stop_timeout of container web', 'wrote unit nsbox-web.service']
    unit_diff = rec['result']['diff'][1]
    assert 'TimeoutStopSec=5s' in unit_diff['before'] and 'TimeoutStopSec=7s' in unit_diff['after']
    assert host.ssh('cat /etc/systemd/system/nsbox-web.service').stdout == before
    assert 'TimeoutStopSec=7s' not in before


def test_systemctl_stop_stops_it_and_the_exit_code_is_recorded(sd):
    host, ansible = sd
    host.ssh('systemctl stop nsbox-web.service')
    state = info(ansible, 'web')['state']
    assert (state['status'], state['running'], state['exit_code']) == ('exited', False, 0), state
    assert host.ssh('systemctl is-active nsbox-web.service', check=False).stdout.strip() == 'inactive'
    # the module agrees, and starts it again through systemctl
    out = container(ansible, 'web', command=LOOP + ['web'], stop_timeout=5)
    assert out['actions'] == ['started container web'] and out['unit']['active'], out
    stopped = container(ansible, 'web', command=LOOP + ['web'], stop_timeout=5, state='stopped')
    assert stopped['actions'] == ['stopped container web'] and stopped['unit']['active_state'] == 'inactive', stopped
    assert stopped['container']['state']['exit_code'] == 0
    assert container(ansible, 'web', command=LOOP + ['web'], stop_timeout=5, state='stopped')['_status'] == 'ok'


def test_the_output_is_in_the_journal(sd):
    host, _ansible = sd
    log = wait_for('journal lines', lambda: host.ssh('journalctl -q -o cat -u nsbox-web.service').stdout, lambda text: 'bye-web' in text)
    assert log.count('hello-from-web') == 2 and log.count('bye-web') == 2, log


def test_a_crashing_container_is_restarted_per_policy_then_stays_failed(sd):
    host, ansible = sd
    out = container(ansible, 'crash', command=['sh', '-c', 'echo crash-run; sleep 0.3; exit 1'], restart_policy='on-failure', restart_retries=2)
    assert out['_status'] == 'changed', out
    shown = wait_for('failed unit', lambda: show(host, 'crash', 'ActiveState', 'NRestarts', 'Result'), lambda s: s['ActiveState'] == 'failed')
    # on-failure:2 is three runs; systemd counts the restart its start limit refused too (NRestarts 3)
    assert shown['NRestarts'] in ('2', '3') and shown['Result'] in ('exit-code', 'start-limit-hit'), shown
    time.sleep(1.5)
    assert show(host, 'crash', 'ActiveState', 'NRestarts') == {'ActiveState': 'failed', 'NRestarts': shown['NRestarts']}  # it stays failed
    assert host.ssh('journalctl -q -o cat -u nsbox-crash.service').stdout.count('crash-run') == 3
    state = info(ansible, 'crash')['state']
    assert (state['status'], state['exit_code']) == ('exited', 1), state
    gone = container(ansible, 'crash', state='absent')
    assert gone['actions'] == ['removed unit nsbox-crash.service', 'removed container crash'], gone


def test_depends_on_starts_the_dependency_first(sd):
    host, ansible = sd
    out = container(ansible, 'app', command=LOOP + ['app'], stop_timeout=5, depends_on=['web'])
    assert out['_status'] == 'changed' and out['unit']['active'], out
    assert 'Requires=nsbox-web.service' in host.ssh('cat /etc/systemd/system/nsbox-app.service').stdout
    assert host.ssh('systemctl is-active nsbox-web.service').stdout.strip() == 'active'  # pulled in by Requires=
    assert info(ansible, 'web')['state']['running']


def test_a_reboot_brings_back_enabled_containers_only(sd):
    host, ansible = sd
    off = container(ansible, 'off', command=LOOP + ['off'], stop_timeout=5, enabled=False)
    assert off['unit']['active'] and not off['unit']['enabled'], off
    old = {n: c['state']['pid'] for n, c in infos(ansible, ['web', 'app', 'off']).items()}
    host.reboot()  # systemd powered off (every unit stopped), then booted again on the same disk
    now = infos(ansible, ['web', 'app', 'off'])
    for name in ('web', 'app'):
        assert host.ssh('systemctl is-active nsbox-%s.service' % name).stdout.strip() == 'active'
        state = now[name]['state']
        assert state['running'] and state['pid'] != old[name], state
        assert show(host, name, 'MainPID')['MainPID'] == str(state['pid'])
    assert host.ssh('systemctl is-active nsbox-off.service', check=False).stdout.strip() == 'inactive'
    assert not now['off']['state']['running']


def test_state_absent_removes_the_units(sd):
    host, ansible = sd
    names = ('app', 'web', 'off')
    tasks = [{'name': n, 'nsbox.runtime.container': {'name': n, 'state': 'absent'}} for n in names]
    first, again = ansible.tasks(tasks), ansible.tasks(tasks)
    for name in names:
        out = first.task(name)
        assert out['_status'] == 'changed' and out['actions'][0] == 'removed unit nsbox-%s.service' % name, out
        assert again.task(name)['_status'] == 'ok', again.task(name)
    units = host.ssh('ls /etc/systemd/system; systemctl list-units --all --no-legend --plain "nsbox-*"; ls /sys/fs/cgroup/system.slice').stdout.split()
    assert [u for u in units if u.startswith('nsbox-') and not u.startswith('nsbox-test-')] == [], units
    assert host.ssh('ls -A /var/lib/nsbox/containers').stdout.split() == ['.lock']
    assert ' /var/lib/nsbox/' not in host.ssh('cat /proc/self/mountinfo').stdout
