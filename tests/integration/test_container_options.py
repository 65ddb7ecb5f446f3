# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every container option through its whole life over SSH, generated from the option table.

For each option of ``options.TABLE`` one container runs with value A; then: the same again
changes nothing; check mode with value B predicts exactly what the real run then does and
touches nothing; the real run with B updates live, stores, or recreates as the table says;
leaving the option out changes it back. After A and after B a probe reads
what the container really got (inside through container_exec, or the host's cgroup files). Each
step is one play over all the containers, so the matrix costs a few Ansible runs, not hundreds.

A new option in the table without a case here fails ``test_every_option_has_a_case``: none can
skip the matrix. Options that this host cannot carry are skipped with the reason.
"""
from __future__ import annotations

import os
import secrets
import socket

import pytest

from harness.containers import LAYOUT, V1_ONLY, private_box
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cgroups.layout import systemd_booted
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch import devices as container_devices
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

BASE = {'image': 'busybox', 'command': 'sleep 3600', 'stop_timeout': 0}
ENV_DIR = '/tmp/nsbox-matrix-env-%s' % secrets.token_hex(4)  # the test host's /tmp is the machine's; one per run


def _words(out):
    return ' '.join(out.split())


class Case:
    """Values A and B of one option, what else the container needs, and how to see the value inside.

    ``probe``: a command run in the container whose stdout ``seen_a``/``seen_b`` accept;
    ``cgroup``: (controller, file, A's content, B's content) on the host; ``config``: (key, A, B) of
    the displayed config. ``unset``: base arguments for the last step (option left out).
    """

    def __init__(self, a, b, base=None, probe=None, seen_a=None, seen_b=None, cgroup=None, config=None, unset=None):
        self.a, self.b, self.base = a, b, base or {}
        self.probe, self.seen_a, self.seen_b = probe, seen_a, seen_b
        self.cgroup, self.config, self.unset = cgroup, config, unset

    def args(self, option, which):
        base = dict(BASE, **(self.unset if which is None and self.unset is not None else self.base))
        if which is not None:
            base[option] = self.a if which == 'a' else self.b
        return base


def _blkio_weight_file():
    """blkio.weight (CFQ) or blkio.bfq.weight (BFQ), as a child cgroup has them (the root cgroup never shows a weight)."""
    root = LAYOUT.v1.get('blkio') if LAYOUT and os.geteuid() == 0 else None
    if not root:
        return None
    probe = os.path.join(root, 'nsbox-test-probe-%s' % secrets.token_hex(4))
    os.mkdir(probe)
    try:
        return next((f for f in ('blkio.weight', 'blkio.bfq.weight') if os.path.exists(os.path.join(probe, f))), None)
    finally:
        os.rmdir(probe)


BLKIO_WEIGHT_FILE = _blkio_weight_file()


def _environ(text):
    return lambda out: text in out.split('\n')


CMDLINE = "tr '\\0' ' ' </proc/1/cmdline"
CAPEFF = "awk '/^CapEff:/{print $2}' /proc/1/status"
DEFAULT_CAPS = 0xa80425fb  # Docker's 14
DEFAULT_DEVICE_RULES = container_devices.DEFAULT_RULES
DEV_FUSE = 'crw------- 10, 229'
CASES = {
    'image': Case('busybox', 'multilayer', probe="tr '\\0' '\\n' </proc/1/environ",
                  seen_a=lambda o: 'NSBOX_FIXTURE=multilayer' not in o, seen_b=_environ('NSBOX_FIXTURE=multilayer')),
    'command': Case('sleep 3601', ['sleep', '3602'], probe=CMDLINE, seen_a=lambda o: o == 'sleep 3601', seen_b=lambda o: o == 'sleep 3602'),
    'entrypoint': Case(['sleep'], ['/bin/sleep'], base={'command': '3600'}, unset={}, probe=CMDLINE,
                       seen_a=lambda o: o == 'sleep 3600', seen_b=lambda o: o == '/bin/sleep 3600'),
    'env': Case({'M': 'a'}, {'M': 'b'}, probe="tr '\\0' '\\n' </proc/1/environ", seen_a=_environ('M=a'), seen_b=_environ('M=b')),
    'env_file': Case(ENV_DIR + '/a.env', ENV_DIR + '/b.env', probe="tr '\\0' '\\n' </proc/1/environ",
                     seen_a=_environ('F=file-a'), seen_b=_environ('F=file-b')),
    'working_dir': Case('/wa', '/wb', probe='readlink /proc/1/cwd', seen_a=lambda o: o == '/wa', seen_b=lambda o: o == '/wb'),
    'user': Case('1000', '1001:1002', probe="awk '/^Uid|^Gid/{print $2}' /proc/1/status",
                 seen_a=lambda o: o.split() == ['1000', '0'], seen_b=lambda o: o.split() == ['1001', '1002']),
    'group_add': Case(['10'], ['10', '20'], probe="awk '/^Groups/' /proc/1/status",
                      seen_a=lambda o: o.split()[1:] == ['10'], seen_b=lambda o: o.split()[1:] == ['10', '20']),
    'hostname': Case('ha', 'hb', probe='hostname', seen_a=lambda o: o == 'ha', seen_b=lambda o: o == 'hb'),
    'labels': Case({'k': 'a'}, {'k': 'b'}, config=('labels', {'k': 'a'}, {'k': 'b'})),
    'annotations': Case({'k': 'a'}, {'k': 'b'}, config=('annotations', {'k': 'a'}, {'k': 'b'})),
    'mounts': Case([{'type': 'tmpfs', 'target': '/ma'}], [{'type': 'tmpfs', 'target': '/mb', 'tmpfs_size': '1m'}],
                   probe='cat /proc/1/mountinfo', seen_a=lambda o: ' /ma ' in o, seen_b=lambda o: ' /mb ' in o and ' /ma ' not in o),
    'volumes': Case(['/etc:/va:ro'], ['/etc:/vb'], probe='cat /proc/1/mountinfo',
                    seen_a=lambda o: any(' /va ' in ln and ' ro,' in ln for ln in o.splitlines()),
                    seen_b=lambda o: any(' /vb ' in ln and ' rw,' in ln for ln in o.splitlines())),
    'read_only': Case(False, True, probe='touch /probe 2>/dev/null && echo rw || echo ro',
                      seen_a=lambda o: o == 'rw', seen_b=lambda o: o == 'ro'),
    'shm_size': Case('32m', '48m', probe="df -k /dev/shm | awk 'NR==2{print $2}'", seen_a=lambda o: o == '32768', seen_b=lambda o: o == '49152'),
    'tty': Case(False, True, probe='readlink /proc/1/fd/1', seen_a=lambda o: o.endswith('/stdout'), seen_b=lambda o: '/stdout' not in o),
    # (a host file outside the container's root reads as its path in its own mount: /dev/null may read /null)
    'interactive': Case(False, True, probe='readlink /proc/1/fd/0', seen_a=lambda o: o.endswith('/null'), seen_b=lambda o: o.endswith('/stdin')),
    'memory': Case('64m', '96m', cgroup=('memory', 'memory.limit_in_bytes', str(64 << 20), str(96 << 20))),
    'memory_reservation': Case('32m', '48m', cgroup=('memory', 'memory.soft_limit_in_bytes', str(32 << 20), str(48 << 20))),
    'memory_swap': Case('128m', '192m', base={'memory': '64m'}, cgroup=('memory', 'memory.memsw.limit_in_bytes', str(128 << 20), str(192 << 20))),
    'cpus': Case(0.5, 0.7, cgroup=('cpu', 'cpu.cfs_quota_us', '50000', '70000')),
    'cpu_shares': Case(512, 768, cgroup=('cpu', 'cpu.shares', '512', '768')),
    'cpuset_cpus': Case('0', '0-1', cgroup=('cpuset', 'cpuset.cpus', '0', '0-1')),
    'pids_limit': Case(50, 60, cgroup=('pids', 'pids.max', '50', '60')),
    'blkio_weight': Case(300, 400, cgroup=('blkio', BLKIO_WEIGHT_FILE or 'blkio.weight') + (
        ('default 300', 'default 400') if 'bfq' in (BLKIO_WEIGHT_FILE or '') else ('300', '400'))),
    'ulimits': Case(['nofile:1000:1000'], ['nofile=900:1000', 'nproc:500'], probe='cat /proc/1/limits',
                    seen_a=lambda o: 'Max open files 1000 1000 files' in _words(o),
                    seen_b=lambda o: 'Max open files 900 1000 files' in _words(o) and 'Max processes 500 500 processes' in _words(o)),
    'oom_score_adj': Case(100, 200, probe='cat /proc/1/oom_score_adj', seen_a=lambda o: o == '100', seen_b=lambda o: o == '200'),
    'sysctls': Case({'net.core.somaxconn': 1000}, {'net.core.somaxconn': '2000', 'kernel.shmmni': 100},
                    probe='cat /proc/sys/net/core/somaxconn /proc/sys/kernel/shmmni',
                    seen_a=lambda o: o.split()[0] == '1000' and o.split()[1] != '100', seen_b=lambda o: o.split() == ['2000', '100']),
    'network_mode': Case('none', 'host', probe='grep -c : /proc/net/dev', seen_a=lambda o: o == '1', seen_b=lambda o: int(o) > 1),
    'pid_mode': Case('private', 'host', probe='ls -d /proc/[0-9]* | wc -l', seen_a=lambda o: int(o) < 10, seen_b=lambda o: int(o) > 10),
    'ipc_mode': Case('private', 'host', probe='readlink /proc/self/ns/ipc',
                     seen_a=lambda o: o != os.readlink('/proc/self/ns/ipc'), seen_b=lambda o: o == os.readlink('/proc/self/ns/ipc')),
    'uts_mode': Case('private', 'host', probe='hostname', seen_a=lambda o: o != socket.gethostname(), seen_b=lambda o: o == socket.gethostname()),
    'networks': Case([{'name': 'mnet', 'ipv4_address': '10.91.0.10'}], [{'name': 'mnet', 'ipv4_address': '10.91.0.11', 'aliases': ['mx']}],
                     probe='ip -4 -o addr show eth0', seen_a=lambda o: ' 10.91.0.10/24 ' in o, seen_b=lambda o: ' 10.91.0.11/24 ' in o),
    'published_ports': Case(['18080:80'], ['127.0.0.1:18081:81/udp'], base={'network_mode': 'bridge'},
                            config=('published_ports', [{'host_ip': '0.0.0.0', 'host_port': 18080, 'container_port': 80, 'protocol': 'tcp'}],
                                    [{'host_ip': '127.0.0.1', 'host_port': 18081, 'container_port': 81, 'protocol': 'udp'}])),
    'dns': Case(['10.0.0.53'], ['10.0.0.54', '10.0.0.55'], probe='grep nameserver /etc/resolv.conf',
                seen_a=lambda o: o == 'nameserver 10.0.0.53', seen_b=lambda o: o.split('\n') == ['nameserver 10.0.0.54', 'nameserver 10.0.0.55']),
    'dns_search': Case(['a.lan'], ['b.lan'], probe='grep search /etc/resolv.conf', seen_a=lambda o: o == 'search a.lan',
                       seen_b=lambda o: o == 'search b.lan'),
    'dns_options': Case(['ndots:2'], ['ndots:3'], probe='grep options /etc/resolv.conf', seen_a=lambda o: o == 'options ndots:2',
                        seen_b=lambda o: o == 'options ndots:3'),
    'extra_hosts': Case({'db': '10.0.0.5'}, ['db:10.0.0.6'], probe='grep -w db /etc/hosts', seen_a=lambda o: o == '10.0.0.5\tdb',
                        seen_b=lambda o: o == '10.0.0.6\tdb'),
    'stop_signal': Case('SIGUSR1', 'usr2', config=('stop_signal', 'SIGUSR1', 'SIGUSR2')),
    'stop_timeout': Case(1, 2, config=('stop_timeout', 1, 2)),
    'restart_policy': Case('always', 'on-failure:2', config=('restart_policy', {'name': 'always', 'max_retries': 0},
                                                             {'name': 'on-failure', 'max_retries': 2})),
    'restart_retries': Case(2, 3, base={'restart_policy': 'on-failure'}, config=('restart_policy', {'name': 'on-failure', 'max_retries': 2},
                                                                                 {'name': 'on-failure', 'max_retries': 3})),
    # An hour apart: the matrix sees the stored check; test_container_restart.py runs checks for real.
    'healthcheck': Case({'test': 'true', 'interval': '1h'}, {'test': ['CMD', 'true'], 'interval': '2h', 'retries': 1},
                        config=('healthcheck', {'test': ['CMD-SHELL', 'true'], 'interval': 3600.0, 'timeout': 30.0, 'start_period': 0.0, 'retries': 3},
                                {'test': ['CMD', 'true'], 'interval': 7200.0, 'timeout': 30.0, 'start_period': 0.0, 'retries': 1})),
    'init': Case(False, True, probe='cat /proc/1/comm', seen_a=lambda o: o == 'sleep', seen_b=lambda o: o == 'init'),
    'cap_add': Case(['SYS_ADMIN'], ['net_admin', 'CAP_SYS_TIME'], probe=CAPEFF, seen_a=lambda o: int(o, 16) == DEFAULT_CAPS | 1 << 21,
                    seen_b=lambda o: int(o, 16) == DEFAULT_CAPS | 1 << 12 | 1 << 25),
    'cap_drop': Case(['ALL'], ['chown'], probe=CAPEFF, seen_a=lambda o: int(o, 16) == 0, seen_b=lambda o: int(o, 16) == DEFAULT_CAPS & ~1),
    'privileged': Case(False, True, probe="awk '/^Seccomp:/{print $2}' /proc/1/status", seen_a=lambda o: o == '2', seen_b=lambda o: o == '0'),
    'security_opt': Case(['no-new-privileges=false'], ['seccomp=unconfined'], probe="awk '/^(NoNewPrivs|Seccomp):/{print $2}' /proc/1/status",
                         seen_a=lambda o: o.split() == ['0', '2'], seen_b=lambda o: o.split() == ['1', '0']),
    # /dev/fuse: on every Debian host, openable without a mount; the node as the host has it, and its cgroup rule.
    'devices': Case(['/dev/fuse'], ['/dev/fuse:/dev/fuse-ro:r'], probe="ls -ln /dev | awk '/fuse/{print $1, $5, $6, $NF}'",
                    seen_a=lambda o: o.splitlines() == [DEV_FUSE + ' fuse'], seen_b=lambda o: o.splitlines() == [DEV_FUSE + ' fuse-ro'],
                    cgroup=('devices', 'devices.list', '\n'.join(DEFAULT_DEVICE_RULES + ('c 10:229 rwm',)),
                            '\n'.join(DEFAULT_DEVICE_RULES + ('c 10:229 r',)))),
    'log': Case({'max_size': '1m'}, {'max_size': '2m', 'max_files': 2}, config=('log', {'driver': 'json-file', 'max_size': 1 << 20, 'max_files': 1},
                                                                                {'driver': 'json-file', 'max_size': 2 << 20, 'max_files': 2})),
    'userns_mode': Case('host', 'auto', probe='cat /proc/self/uid_map', seen_a=lambda o: o.split() == ['0', '0', '4294967295'],
                        seen_b=lambda o: o.split()[0::2] == ['0', '65536'] and int(o.split()[1]) >= 1 << 31),
    'uidmap': Case(['0:3500000000:65536'], ['0:3600000000:65536'], probe='cat /proc/self/uid_map /proc/self/gid_map',
                   seen_a=lambda o: o.split() == ['0', '3500000000', '65536'] * 2, seen_b=lambda o: o.split() == ['0', '3600000000', '65536'] * 2),
    'gidmap': Case(['0:3800000000:65536'], ['0:3900000000:65536'], base={'uidmap': ['0:3700000000:65536']}, probe='cat /proc/self/gid_map',
                   seen_a=lambda o: o.split() == ['0', '3800000000', '65536'], seen_b=lambda o: o.split() == ['0', '3900000000', '65536']),
    # A unit needs systemd as PID 1 (tests/integration/test_systemd_units.py); with auto on this host
    # enabled and depends_on are kept for the unit the container gets where systemd runs.
    'supervisor': Case('nsbox', 'systemd', config=('supervisor', 'nsbox', 'systemd')),
    'enabled': Case(True, False, base={'supervisor': 'auto'}, config=('enabled', True, False)),
    'depends_on': Case(['db'], ['db', 'cache'], base={'supervisor': 'auto'}, config=('depends_on', ['db'], ['cache', 'db'])),
}


def skipped():
    """{option: why} for options this host cannot carry (or not asked for: NSBOX_MATRIX_ONLY=memory,env runs those only)."""
    only = [o for o in os.environ.get('NSBOX_MATRIX_ONLY', '').split(',') if o]
    out = {o: 'not in NSBOX_MATRIX_ONLY' for o in CASES if only and o not in only}
    if BLKIO_WEIGHT_FILE is None:
        out['blkio_weight'] = 'no blkio.weight or blkio.bfq.weight here (no CFQ/BFQ I/O scheduler): see test_blkio_weight_without_a_weighting_scheduler'
    if not systemd_booted():
        out['supervisor'] = 'supervisor systemd needs systemd as PID 1: see tests/integration/test_systemd_units.py'
    if len(os.sched_getaffinity(0)) < 2:
        out['cpuset_cpus'] = 'one CPU: no second cpuset to change to'
    return out


def name_of(option):
    return 'm-' + option.replace('_', '-')


@pytest.fixture(scope='module')
def opt_host(fixtures, reaper):
    """A test host of the matrix's own, with a network namespace of its own (the networking options make
    bridges and rules there), both images and network mnet; containers default to network_mode none.
    Afterwards nothing may be left (supervisor, mount, container files), nor an orphan."""
    if os.geteuid() != 0:
        pytest.skip('root only')
    with private_box(reaper, 'matrixhost', {'busybox': fixtures.docker_archive, 'multilayer': fixtures.multilayer_docker_archive},
                     netns=True, default_network_mode='none') as box:
        assert box.ansible.module('nsbox.runtime.network', {'name': 'mnet', 'subnet': '10.91.0.0/24'})['_status'] == 'changed'
        yield box
        for net in ('mnet', 'nsbox0'):
            assert box.ansible.module('nsbox.runtime.network', {'name': net, 'state': 'absent'})['_status'] in ('changed', 'ok')


@pytest.fixture(scope='module')
def matrix(opt_host):
    """Run every step for every option (one play per step); {option: {step: result}} plus probes."""
    os.makedirs(ENV_DIR, exist_ok=True)
    for which in ('a', 'b'):
        with open(os.path.join(ENV_DIR, which + '.env'), 'w') as f:
            f.write('# the env_file case\nF=file-%s\n' % which)
    box = opt_host
    todo = [o for o in CASES if o not in skipped()]
    out = {o: {} for o in todo}

    def play(step, which, check=False, diff=False, state='started'):
        tasks = [{'name': o, 'nsbox.runtime.container': dict(CASES[o].args(o, which), name=name_of(o), state=state), 'ignore_errors': True}
                 for o in todo]
        res = box.ansible.tasks(tasks, check=check, diff=diff)
        for rec in res.records:  # the last record of each task: {'status': changed|ok|failed, 'result': {...}}
            out[rec['task']][step] = rec

    def observe(step):
        infos = box.infos([name_of(o) for o in todo])
        execs = box.exec_many({o: (name_of(o), ['sh', '-c', CASES[o].probe], {}) for o in todo if CASES[o].probe})
        for o in todo:
            info = infos.get(name_of(o))
            seen = {'info': info}
            if o in execs:
                seen['probe'] = execs[o]
            if CASES[o].cgroup and info:
                try:
                    seen['cgroup'] = box.cgroup_file(info['id'], CASES[o].cgroup[0], CASES[o].cgroup[1])
                except OSError as exc:
                    seen['cgroup'] = repr(exc)
            out[o][step] = seen

    try:
        play('create', 'a')
        observe('seen_a')
        play('again_a', 'a')
        play('check_b', 'b', check=True, diff=True)
        out_infos = box.infos([name_of(o) for o in todo])
        for o in todo:
            out[o]['after_check'] = out_infos.get(name_of(o))
        play('change_b', 'b', diff=True)
        observe('seen_b')
        play('unset', None)
        yield out
    finally:
        res = box.ansible.tasks([{'name': o, 'nsbox.runtime.container': {'name': name_of(o), 'state': 'absent', 'force_kill': True}}
                                 for o in CASES])
        for which in ('a', 'b'):
            os.unlink(os.path.join(ENV_DIR, which + '.env'))
        os.rmdir(ENV_DIR)
        assert res.rc == 0, res


def test_every_option_has_a_case():
    assert sorted(CASES) == sorted(options.OPTIONS), 'options without a matrix case (add one to CASES): %s' % sorted(set(options.OPTIONS) ^ set(CASES))


def _first_of_field(option):
    return options.FIELDS[options.OPTIONS[option].field][0].name


def _kept(info):
    return {'id': info['id'], 'pid': info['state']['pid'], 'config': info['config'], 'status': info['state']['status']}


@pytest.mark.parametrize('option', sorted(CASES))
def test_option(option, matrix):
    why = skipped().get(option)
    if why:
        pytest.skip(why)
    rec, case, name = matrix[option], CASES[option], name_of(option)
    update = options.OPTIONS[option].update
    shown = _first_of_field(option)
    # A: created and running, then idempotent
    assert rec['create']['status'] == 'changed', rec['create']
    assert rec['seen_a']['info']['state']['running'], rec['seen_a']['info']
    assert rec['again_a']['status'] == 'ok', rec['again_a']
    _assert_seen(case, rec['seen_a'], 'a')
    # check mode with B: the prediction, nothing touched
    check = rec['check_b']
    assert check['status'] == 'changed', check
    assert _kept(rec['after_check']) == _kept(rec['seen_a']['info']), 'check mode touched the container'
    # B for real: what the table says, exactly as predicted
    change = rec['change_b']
    assert change['status'] == 'changed', change
    assert change['result']['actions'] == check['result']['actions'], (check['result']['actions'], change['result']['actions'])
    before, after = rec['seen_a']['info'], rec['seen_b']['info']
    if update == 'recreate':
        first = change['result']['actions'][0]
        why = first[len('recreated container %s (' % name):-1].split(', ') if first.startswith('recreated container %s (' % name) else []
        # the option named (an image also brings its own env and working_dir: those may be named too)
        assert any(w == shown or w.startswith(shown + ' ') for w in why), change['result']['actions']
        assert after['id'] != before['id']
    else:
        suffix = ' live' if update == 'live' else ''
        assert change['result']['actions'] == ['updated %s of container %s%s' % (shown, name, suffix)], change['result']['actions']
        assert (after['id'], after['state']['pid']) == (before['id'], before['state']['pid']), 'not updated in place'
    predicted, real = check['result']['diff']['after'], change['result']['diff']['after']
    assert {k: predicted.get(k) for k in ('exists', 'status', 'running', 'config')} == \
        {k: real.get(k) for k in ('exists', 'status', 'running', 'config')}, 'check mode predicted another container'
    assert after['state']['running']
    _assert_seen(case, rec['seen_b'], 'b')
    # left out: back to the default (a limit taken away recreates: a fresh cgroup has none)
    unset = rec['unset']
    assert unset['status'] == 'changed', unset
    recreated = unset['result']['actions'][0].startswith('recreated')
    assert recreated == (update in ('recreate', 'live')), unset['result']['actions']


def _assert_seen(case, seen, which):
    if case.probe:
        probe = seen['probe']
        assert not probe.get('failed'), probe
        accept = case.seen_a if which == 'a' else case.seen_b
        assert accept(probe['stdout'].strip()), 'the container did not get %s: %r' % (which, probe['stdout'])
    if case.cgroup:
        want = case.cgroup[2] if which == 'a' else case.cgroup[3]
        got = seen['cgroup']
        if case.cgroup[1] == 'blkio.bfq.weight':  # 'default 300' or '300', as the kernel's version writes it
            got, want = got.split()[-1:], want.split()[-1:]
        assert got == want, (case.cgroup[1], seen['cgroup'], want)
    if case.config:
        key, a, b = case.config
        value = seen['info']['config'][key]
        if isinstance(a, dict) and key == 'labels':
            value = {k: v for k, v in value.items() if k in a}
        assert value == (a if which == 'a' else b), (key, value)


def test_blkio_weight_without_a_weighting_scheduler(opt_host):
    """Where the host's I/O scheduler has no weights, blkio_weight fails clearly and leaves nothing."""
    if BLKIO_WEIGHT_FILE is not None:
        pytest.skip('this host has %s: the matrix covers blkio_weight' % BLKIO_WEIGHT_FILE)
    res = opt_host.run(name='io', blkio_weight=300, **BASE)
    assert res['_status'] == 'failed' and 'no blkio.weight or blkio.bfq.weight' in res['msg'], res
    assert opt_host.info('io') is None


def test_comparisons_relax_what_counts(opt_host):
    """community.docker's comparisons: ignored options and extra labels leave the container alone;
    when something else recreates it, it gets everything asked."""
    args = dict(BASE, name='cmp', labels={'a': '1', 'b': '2'}, memory='64m', env={'A': '1'})
    first = opt_host.run(**args)
    assert first['_status'] == 'changed', first
    relaxed = dict(BASE, name='cmp', labels={'a': '1'}, memory='96m', env={'A': '2'},
                   comparisons={'labels': 'allow_more_present', 'memory': 'ignore', 'env': 'ignore'})
    for check in (True, False):
        res = opt_host.run(check=check, **relaxed)
        assert res['_status'] == 'ok', res
    assert opt_host.cgroup_file(first['container']['id'], 'memory', 'memory.limit_in_bytes') == str(64 << 20)
    res = opt_host.run(**dict(relaxed, labels={'c': '3'}))  # a stored change: the ignored ones stay as they are
    assert res['actions'] == ['updated labels of container cmp'], res
    assert res['container']['config']['env'] == first['container']['config']['env']
    assert res['container']['config']['resources']['memory'] == first['container']['config']['resources']['memory']
    res = opt_host.run(**dict(relaxed, labels={'c': '3'}, init=True))  # recreated: now it gets all of it
    assert res['actions'][0] == 'recreated container cmp (init)', res
    assert 'A=2' in res['container']['config']['env']
    assert opt_host.cgroup_file(res['container']['id'], 'memory', 'memory.limit_in_bytes') == str(96 << 20)
    bad = opt_host.run(**dict(relaxed, comparisons={'memory': 'loose'}))
    assert bad['_status'] == 'failed' and 'comparisons memory' in bad['msg'], bad
    assert opt_host.run(name='cmp', state='absent', force_kill=True)['_status'] == 'changed'
