# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container lifecycle over SSH, for real: busybox containers from the fixture image.

Every test's containers live under a cgroup parent of its own (``/nsbox-test-<hex>``, set in
the host config) and are removed by the test; the fixture then kills whatever is left in that
parent by pid, removes it, unmounts what is left under the data-root, and checks that nothing
the runtime started is still alive (the harness is a child subreaper: see conftest).
"""
from __future__ import annotations

import os
import re
import secrets
import signal
import time

import pytest

from harness.containers import DATA_ROOT, LAYOUT, NOTHING, V1_ONLY, mounts, setup, supervisors, teardown
from harness.testhost import TestHost


@pytest.fixture(scope='module')
def container_host(testhost, ansible, fixtures):
    """The test host set up once per module (host config with a cgroup parent of its own, the busybox image)."""
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive})
    teardown(testhost, parent)


@pytest.fixture
def box(container_host, reaper):
    """Per test: afterwards nothing of a container may be left (supervisor, mount, files), nor any orphan process."""
    yield container_host
    left = teardown(container_host.host, container_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)


# -- the tests ---------------------------------------------------------------------------------------
def test_run_to_exit_with_exit_code_and_logs(box):
    res = box.run(name='job', image='busybox', command=['sh', '-c', 'echo out; echo err >&2; exit 3'])
    assert res['_status'] == 'changed', res
    assert res['actions'] == ['created container job from busybox', 'started container job']
    info = box.wait_exited('job')
    assert info['state']['status'] == 'exited' and info['state']['exit_code'] == 3, info
    assert not info['state']['oom_killed'] and info['state']['finished_at']
    assert [(e['stream'], e['log']) for e in info['logs']] in ([('stdout', 'out\n'), ('stderr', 'err\n')],
                                                               [('stderr', 'err\n'), ('stdout', 'out\n')])
    assert all(re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$', e['time']) for e in info['logs'])
    # Nothing of the exited container is mounted or left in its cgroup.
    assert box.info('job')['state']['pid'] is None and mounts(box.host) == []
    assert not any(os.path.isdir(d) for d in box.cgroup_dirs(info['id']))
    assert box.run(name='job', state='absent')['_status'] == 'changed'


def test_long_running_lifecycle(box):
    args = {'name': 'web', 'image': 'busybox', 'command': 'sleep 1000', 'memory': '64m', 'env': {'A': '1'}, 'stop_timeout': 1}
    res = box.run(check=True, **args)
    assert res['_status'] == 'changed' and box.info('web') is None  # check mode: predicted, nothing made
    res = box.run(**args)
    assert res['_status'] == 'changed', res
    st = res['container']['state']
    pid, cid = st['pid'], res['container']['id']
    assert st['running'] and st['supervised'] and os.path.exists('/proc/%d' % pid)
    # The task returned while the container runs (Ansible did not wait for it), and it outlives the run.
    assert box.info('web')['state']['pid'] == pid
    assert box.run(**args)['_status'] == 'ok'                      # unchanged
    assert box.run(check=True, **args)['_status'] == 'ok'

    # memory: predicted in check mode, then written live (same pid)
    res = box.run(check=True, diff=True, **dict(args, memory='128m'))
    assert res['_status'] == 'changed' and res['actions'] == ['updated memory of container web live']
    mem = [d for d in box.cgroup_dirs(cid) if '/memory/' in d or d.startswith('/sys/fs/cgroup/memory')]
    assert open(os.path.join(mem[0], 'memory.limit_in_bytes')).read().strip() == str(64 << 20)
    res = box.run(**dict(args, memory='128m'))
    assert res['_status'] == 'changed' and res['container']['state']['pid'] == pid
    assert open(os.path.join(mem[0], 'memory.limit_in_bytes')).read().strip() == str(128 << 20)
    args['memory'] = '128m'
    # a limit changed behind the runtime's back is read from the cgroup and put right, live
    with open(os.path.join(mem[0], 'memory.limit_in_bytes'), 'w') as f:
        f.write(str(96 << 20))
    res = box.run(**args)
    assert res['_status'] == 'changed' and res['container']['state']['pid'] == pid
    assert open(os.path.join(mem[0], 'memory.limit_in_bytes')).read().strip() == str(128 << 20)

    # env: a recreate (new id, new process), predicted first
    res = box.run(check=True, **dict(args, env={'A': '2'}))
    assert res['_status'] == 'changed' and res['actions'][0].startswith('recreated container web (env)')
    assert box.info('web')['state']['pid'] == pid
    res = box.run(**dict(args, env={'A': '2'}))
    assert res['_status'] == 'changed', res
    assert res['container']['id'] != cid and res['container']['state']['pid'] != pid
    args['env'] = {'A': '2'}
    assert not os.path.exists('/proc/%d' % pid) or open('/proc/%d/stat' % pid).read().split()[2] == 'Z'

    # stop and restart predicted in check mode: nothing happens
    pid = res['container']['state']['pid']
    assert box.run(check=True, **dict(args, state='stopped'))['_status'] == 'changed'
    assert box.run(check=True, **dict(args, state='restarted'))['_status'] == 'changed'
    assert box.info('web')['state']['pid'] == pid
    # stop: sleep as pid 1 ignores SIGTERM, so SIGKILL after stop_timeout (1 s)
    res = box.run(**dict(args, state='stopped'))
    assert res['_status'] == 'changed', res
    info = box.info('web')
    assert info['state']['status'] == 'exited' and info['state']['exit_code'] == 137
    assert box.run(**dict(args, state='stopped'))['_status'] == 'ok'
    # started again, then restarted: always a new process
    pid = box.run(**args)['container']['state']['pid']
    res = box.run(**dict(args, state='restarted'))
    assert res['_status'] == 'changed' and res['container']['state']['pid'] != pid
    # absent: no mount, cgroup, state file or process left
    cid = res['container']['id']
    pid = res['container']['state']['pid']
    res = box.run(name='web', state='absent', check=True)
    assert res['_status'] == 'changed' and box.info('web') is not None
    assert box.run(name='web', state='absent')['_status'] == 'changed'
    assert box.info('web') is None and mounts(box.host) == [] and supervisors(box.host) == []
    assert not os.path.exists('/proc/%d' % pid) or open('/proc/%d/stat' % pid).read().split()[2] == 'Z'
    assert not any(os.path.isdir(d) for d in box.cgroup_dirs(cid))
    assert box.sh('ls %s/containers | grep -v "^.lock$" || true' % DATA_ROOT) == ''
    assert box.run(name='web', state='absent')['_status'] == 'ok'


def test_a_failed_recreate_leaves_the_service_running(box):
    """Issue 19 item 6: a recreate whose new container cannot start (a user the image lacks) used to delete the running
    container; a cpuset the host lacks failed with ERANGE naming no option. Neither takes the service down now."""
    args = {'name': 't6', 'image': 'busybox', 'command': 'sleep 1000', 'env': {'A': '1'}, 'stop_timeout': 0}
    first = box.run(**args)['container']
    res = box.run(**dict(args, env={'A': '2'}, cpuset_cpus='0-9999'))
    assert res['_status'] == 'failed' and 'cpuset_cpus 0-9999' in res['msg'] and 'this host has CPUs' in res['msg'], res
    info = box.info('t6')
    assert (info['id'], info['state']['pid'], info['state']['running']) == (first['id'], first['state']['pid'], True)  # untouched
    res = box.run(**dict(args, env={'A': '2'}, user='nosuchuser'))  # found in the image's layers before anything stops
    assert res['_status'] == 'failed' and "user 'nosuchuser'" in res['msg'] and 'container t6:' not in res['msg'], res
    info = box.info('t6')
    assert (info['id'], info['state']['pid'], info['state']['running']) == (first['id'], first['state']['pid'], True)
    res = box.run(**dict(args, env={'A': '2'}, command='/nonexistent'))  # found only at the start: the old one is put back
    assert res['_status'] == 'failed' and 'runs on as it was' in res['msg'], res
    info = box.info('t6')
    assert info['id'] == first['id'] and info['state']['running'] and info['config']['env'] == first['config']['env'], info
    names = box.sh("python3 -c 'import glob, json, sys; print(sorted(json.load(open(p))[\"name\"] for p in glob.glob(sys.argv[1])))' "
                   "'%s/containers/*/config.json'" % DATA_ROOT)
    assert names == "['t6']", names  # the new one taken back, nothing set aside left
    res = box.run(**dict(args, env={'A': '2'}))  # a good recreate: replaced once the new one runs
    assert res['_status'] == 'changed' and res['container']['id'] != first['id'] and res['container']['state']['running'], res
    assert box.run(**dict(args, env={'A': '2'}))['_status'] == 'ok'
    assert box.run(name='t6', state='absent')['_status'] == 'changed'


def test_a_recreate_killed_midway_is_settled_by_the_next_run(box):
    """A run killed after the old container was set aside (renamed, stopped) and before the new one ran: the next
    converge puts the old one back under its name and goes on."""
    args = {'name': 't7', 'image': 'busybox', 'command': 'sleep 1000', 'stop_timeout': 0}
    first = box.run(**args)['container']
    assert box.run(**dict(args, state='stopped'))['_status'] == 'changed'
    config = '%s/containers/%s/config.json' % (DATA_ROOT, first['id'])
    box.sh("python3 -c 'import json, os, sys; p = sys.argv[1]; c = json.load(open(p)); c[\"name\"] = \"t7.replaced-%s\"; "
           "open(p + \".t\", \"w\").write(json.dumps(c)); os.rename(p + \".t\", p)' %s" % (first['id'][:12], config))
    assert box.info('t7') is None
    res = box.run(**args)
    assert res['_status'] == 'changed' and res['actions'][0] == 'put back container t7 (a recreate of it had been interrupted)', res
    assert res['container']['id'] == first['id'] and res['container']['state']['running'], res
    assert box.run(name='t7', state='absent')['_status'] == 'changed'


def test_stop_signal_reaches_the_process_with_init(box):
    """With init: true (catatonit as pid 1) SIGTERM is forwarded: the container ends by it, no SIGKILL."""
    res = box.run(name='svc', image='busybox', command='sleep 1000', init=True, stop_timeout=30)
    assert res['_status'] == 'changed', res
    assert box.exec('svc', 'cat /proc/1/cmdline')['stdout'].startswith('/dev/init')
    res = box.run(name='svc', image='busybox', command='sleep 1000', init=True, stop_timeout=30, state='stopped')
    assert res['actions'] == ['stopped container svc'] and box.info('svc')['state']['exit_code'] == 143
    # force_kill: SIGKILL at once, no wait for stop_timeout (30 s here)
    box.run(name='svc', image='busybox', command='sleep 1000', init=True, stop_timeout=30)
    t = time.monotonic()
    box.run(name='svc', image='busybox', command='sleep 1000', init=True, stop_timeout=30, state='stopped', force_kill=True)
    assert box.info('svc')['state']['exit_code'] == 137 and time.monotonic() - t < 25
    box.run(name='svc', state='absent')


def test_exec_sees_the_container(box):
    box.run(name='iso', image='busybox', command='sleep 1000', hostname='isolated', stop_timeout=0)
    ns_types = ('mnt', 'uts', 'ipc', 'net', 'pid', 'cgroup')
    r = box.execs('iso', {
        'hostname': ('hostname', {}),
        'pid1': ('cat /proc/1/cmdline', {}),
        'ps': ('ps -o pid,comm', {}),
        'bin': ('ls /bin', {}),
        'no-host-files': ('test -e /usr/bin/python3', {}),
        'stdin': ('cat', {'stdin': 'fed'}),
        'exit7': (['sh', '-c', 'echo no >&2; exit 7'], {}),
        'user': ('id -u', {'user': '65534'}),
        'env': ('sh -c "echo $X"', {'env': {'X': 'y'}}),
        'workdir': ('pwd', {'workdir': '/tmp'}),
        'ns': (['sh', '-c', 'for t in %s; do stat -L -c "$t %%i" /proc/self/ns/$t; done' % ' '.join(ns_types)], {}),
        'status': ('cat /proc/self/status', {}),
        'proc-sys': ('sh -c "echo 1 > /proc/sys/kernel/shm_rmid_forced"', {}),
        'masked': ('cat /proc/timer_list', {}),
        'creates-there': ('touch /tmp/ran', {'creates': '/bin/sh'}),  # there: skipped (issue 20 item 10)
        'creates-missing': ('touch /tmp/ran', {'creates': '/tmp/ran'}),  # not there yet: run
        'removes-missing': ('touch /tmp/ran2', {'removes': '/nonexistent'}),  # not there: skipped
        'ran': ('ls /tmp', {}),
    })
    assert r['creates-there']['_status'] == 'ok' and r['creates-there']['stdout'] == 'skipped, since /bin/sh exists', r['creates-there']
    assert r['creates-missing']['_status'] == 'changed' and r['removes-missing']['_status'] == 'ok'
    assert r['ran']['stdout'].split() == ['ran']
    assert r['hostname']['stdout'] == 'isolated\n' and r['pid1']['stdout'] == 'sleep\x001000\x00'
    # ps inside: the container's processes only (sleep as pid 1, then the ps itself)
    ps = r['ps']['stdout'].split('\n')[1:]
    assert [line.split() for line in ps if line.strip()] == [['1', 'sleep'], [ps[1].split()[0], 'ps']]
    assert 'busybox' in r['bin']['stdout'] and r['no-host-files']['rc'] == 1
    assert r['stdin']['stdout'] == 'fed'
    # A non-zero code fails the task, as with ansible.builtin.command; rc and output are returned.
    assert r['exit7']['_status'] in ('failed', 'ignored') and r['exit7']['rc'] == 7 and r['exit7']['stderr'] == 'no\n'
    assert r['user']['stdout'] == '65534\n' and r['env']['stdout'] == 'y\n' and r['workdir']['stdout'] == '/tmp\n'
    host_ns = {t: os.stat('/proc/self/ns/%s' % t).st_ino for t in ns_types}
    inside = {t: int(i) for t, i in (line.split() for line in r['ns']['stdout'].splitlines())}
    assert all(inside[t] != host_ns[t] for t in host_ns), (inside, host_ns)
    # The default hardening: 14 capabilities, no_new_privs, /proc/sys read-only, masked paths
    status = r['status']['stdout']
    assert re.search(r'^CapEff:\s+00000000a80425fb$', status, re.M) and re.search(r'^NoNewPrivs:\s+1$', status, re.M)
    assert r['proc-sys']['rc'] != 0 and 'Read-only file system' in r['proc-sys']['stderr'], r['proc-sys']
    # /proc/timer_list (present on this kernel; /proc/kcore is not) is masked by /dev/null
    assert r['masked']['stdout'] == '' and open('/proc/timer_list').read(100)
    box.run(name='iso', state='absent')


def test_pod_shares_a_persisted_net_namespace(box):
    assert box.ansible.module('nsbox.runtime.namespace', {'name': 'pod1', 'types': ['net', 'uts'], 'loopback_up': True})['_status'] == 'changed'
    common = {'image': 'busybox', 'network_mode': 'ns:pod1', 'stop_timeout': 0}
    box.run(name='server', command=['sh', '-c', 'mkdir -p /www && echo pod-page > /www/index.html && httpd -f -p 127.0.0.1:8080 -h /www'],
            **common)
    box.run(name='client', command='sleep 1000', **common)
    net = int(box.sh('stat -L -c %i /run/nsbox/ns/pod1/net'))
    for name in ('server', 'client'):
        assert int(box.exec(name, 'stat -L -c %i /proc/self/ns/net')['stdout']) == net
    deadline = time.monotonic() + 10
    while True:
        res = box.ansible.module('nsbox.runtime.container_exec', {'container': 'client', 'command': 'wget -q -O - http://127.0.0.1:8080/'})
        if res.get('rc') == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert res['stdout'] == 'pod-page\n', res
    for name in ('server', 'client'):
        box.run(name=name, state='absent')
    box.ansible.module('nsbox.runtime.namespace', {'name': 'pod1', 'state': 'absent'})


def test_memory_hog_is_oom_killed(box):
    box.run(name='hog', image='busybox', command=['sh', '-c', 'echo start; tail /dev/zero'], memory='16m')
    info = box.wait_exited('hog', 60)
    assert info['state']['status'] == 'exited' and info['state']['oom_killed'] is True, info
    assert info['state']['exit_code'] == 137
    box.run(name='hog', state='absent')


def test_a_dead_supervisor_is_seen_and_repaired(box):
    args = {'name': 'orphan', 'image': 'busybox', 'command': 'sleep 1000', 'stop_timeout': 0}
    pid = box.run(**args)['container']['state']['pid']
    sup = supervisors(box.host)
    assert len(sup) == 1
    os.kill(sup[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists('/proc/%d' % sup[0]) and open('/proc/%d/stat' % sup[0]).read().split()[2] != 'Z' and time.monotonic() < deadline:
        time.sleep(0.05)
    st = box.info('orphan')['state']
    assert st['status'] == 'running' and st['running'] and not st['supervised'] and st['pid'] == pid
    res = box.run(check=True, **args)
    assert res['_status'] == 'changed' and res['actions'] == ['adopted running container orphan (its supervisor had died)']
    res = box.run(**args)
    assert res['_status'] == 'changed' and res['container']['state']['supervised'] and res['container']['state']['pid'] == pid
    assert box.run(**args)['_status'] == 'ok'
    box.run(**dict(args, state='stopped'))
    st = box.info('orphan')['state']
    assert st['status'] == 'exited' and st['exit_code'] is None  # adopted: not its child, the code is unknown
    # A container whose process died with nothing watching it reads exited, never a stale running.
    box.run(**dict(args, state='started'))
    sup = supervisors(box.host)
    os.kill(sup[0], signal.SIGKILL)
    os.kill(box.info('orphan')['state']['pid'], signal.SIGKILL)
    time.sleep(0.3)
    st = box.info('orphan')['state']
    assert st['status'] == 'exited' and not st['running'] and st['exit_code'] is None and 'unknown' in st['error']
    assert box.run(**dict(args, state='started'))['_status'] == 'changed'
    box.run(name='orphan', state='absent')


@pytest.mark.parametrize('args, message', [
    ({'image': 'nosuch:1'}, 'not in the store'),
    ({'image': 'busybox', 'network_mode': 'nosuchnet'}, 'network nosuchnet: no such network'),
    ({'image': 'busybox', 'user': 'nobody-here'}, "no matching entry in the image's /etc/passwd"),
    ({'image': 'busybox', 'command': '/no/such/binary'}, '/no/such/binary'),
    ({'image': 'busybox', 'ports': ['80:80']}, 'Unsupported parameters'),
    ({'image': 'busybox', 'network_mode': 'container:ghost'}, 'does not exist or is not running'),
])
def test_bad_input_is_refused_and_leaves_nothing(box, args, message):
    res = box.run(name='bad', **args)
    assert res['_status'] == 'failed' and message in res['msg'], res
    assert box.info('bad') is None and mounts(box.host) == [] and supervisors(box.host) == []


def test_adhoc_command(box):
    """The README's ad-hoc line: ansible all -i INV -m nsbox.runtime.container -a '...'."""
    res = box.ansible.adhoc('nsbox.runtime.container', "name=web image=busybox command='httpd -f -p 8080' state=started")
    assert res.returncode == 0 and 'CHANGED' in res.stdout, (res.stdout, res.stderr)
    assert box.info('web')['state']['running']
    box.run(name='web', state='absent')


@pytest.fixture
def shared_host(fixtures, ansible_for, reaper):
    """A second test host whose mount namespace has shared propagation, as systemd hosts mount /."""
    with TestHost('shared', propagation='shared') as host:
        runner = ansible_for(host)
        parent = '/nsbox-test-%s' % secrets.token_hex(4)
        yield setup(host, runner, parent, {'busybox': fixtures.docker_archive})
        left = teardown(host, parent)
        assert left == NOTHING, left
    reaper.check()


def test_lifecycle_under_shared_propagation(shared_host):
    b = shared_host
    assert 'shared:' in b.sh('grep " / / " /proc/self/mountinfo')
    before = b.sh('cat /proc/self/mountinfo')
    res = b.run(name='web', image='busybox', command='sleep 1000', stop_timeout=0, mounts=[{'type': 'tmpfs', 'target': '/scratch'}])
    assert res['_status'] == 'changed', res
    # Only the rootfs mount (made on purpose in the host's namespace) is new; nothing of the container's own propagated back.
    after = b.sh('cat /proc/self/mountinfo')
    new = [line for line in after.splitlines() if line not in before.splitlines()]
    # (the data-root is a bind mount here, so under shared propagation its peer shows the same overlay too)
    merged = '/containers/%s/merged' % res['container']['id']
    assert new and all(line.split()[4].endswith(merged) and ' - overlay ' in line for line in new), new
    assert b.exec('web', 'cat /proc/1/cmdline')['stdout'] == 'sleep\x001000\x00'
    assert b.run(name='web', state='absent')['_status'] == 'changed'
    assert b.sh('cat /proc/self/mountinfo') == before


def test_options_reach_the_container(box, tmp_path):
    """Each option as the container sees it: working_dir, user, labels (stored), mounts, read_only,
    limits in the cgroup, host and container namespaces, log rotation."""
    data = box.sh('mktemp -d /var/lib/nsbox/bind-XXXXXX')
    box.sh('chmod 755 %s && echo from-host > %s/file' % (data, data))
    args = {'name': 'opts', 'image': 'busybox', 'command': 'sleep 1000', 'stop_timeout': 0, 'working_dir': '/work/dir',
            'user': 'nobody', 'labels': {'tier': 'web'}, 'read_only': True, 'cpus': 0.5, 'pids_limit': 50,
            'volumes': ['%s:/data:ro' % data],
            'mounts': [{'type': 'bind', 'source': data, 'target': '/rw'}, {'type': 'tmpfs', 'target': '/scratch', 'tmpfs_size': '1m'}]}
    res = box.run(**args)
    assert res['_status'] == 'changed', res
    cid, pid = res['container']['id'], res['container']['state']['pid']
    r = box.execs('opts', {
        'pwd': ('pwd', {}), 'id': ('id', {}), 'ro-read': ('cat /data/file', {}), 'ro-write': ('touch /data/x', {'user': '0'}),
        'rw-write': ('touch /rw/written', {'user': '0'}), 'tmpfs': ('touch /scratch/ok', {}),
        'root-write': ('touch /rootfs-write', {'user': '0'}),
    })
    assert r['pwd']['stdout'] == '/work/dir\n' and r['id']['stdout'].startswith('uid=65534(nobody) gid=65534(nogroup)')
    assert r['ro-read']['stdout'] == 'from-host\n' and r['ro-write']['rc'] == 1
    assert r['rw-write']['rc'] == 0 and box.sh('ls %s' % data).split() == ['file', 'written']
    assert r['tmpfs']['rc'] == 0 and r['root-write']['rc'] == 1
    cpu = [d for d in box.cgroup_dirs(cid) if '/cpu/' in d or '/cpu,' in d][0]
    pids = [d for d in box.cgroup_dirs(cid) if '/pids/' in d][0]
    assert open(cpu + '/cpu.cfs_quota_us').read().strip() == '50000' and open(pids + '/pids.max').read().strip() == '50'
    # labels are stored (no recreate); the same pid after the change
    res = box.run(**dict(args, labels={'tier': 'db'}))
    assert res['_status'] == 'changed' and res['container']['state']['pid'] == pid and res['container']['config']['labels']['tier'] == 'db'
    # host and container namespaces
    box.run(name='hostnet', image='busybox', command='sleep 1000', network_mode='host', pid_mode='host', stop_timeout=0)
    out = box.exec('hostnet', 'stat -L -c %i /proc/self/ns/net')['stdout']
    assert int(out) == os.stat('/proc/self/ns/net').st_ino
    assert box.exec('hostnet', 'cat /proc/1/comm')['stdout'] != 'sleep\n'
    box.run(name='joined', image='busybox', command='sleep 1000', network_mode='container:opts', ipc_mode='container:opts', stop_timeout=0)
    assert box.exec('joined', 'stat -L -c %i /proc/self/ns/net')['stdout'] == box.exec('opts', 'stat -L -c %i /proc/self/ns/net')['stdout']
    # json-file rotation
    box.run(name='chatty', image='busybox', command=['sh', '-c', 'i=0; while [ $i -lt 400 ]; do echo line-$i; i=$((i+1)); done'],
            log={'max_size': '4k', 'max_files': 2})
    info = box.wait_exited('chatty')
    logdir = '/var/lib/nsbox/containers/%s/logs' % info['id']
    files = box.sh('ls %s' % logdir).split()
    assert files == ['%s-json.log' % info['id'], '%s-json.log.1' % info['id']], files
    assert all(int(box.sh('stat -c %%s %s/%s' % (logdir, f))) <= 4096 for f in files)
    assert info['logs'][-1]['log'] == 'line-399\n'
    for name in ('joined', 'hostnet', 'opts', 'chatty'):
        box.run(name=name, state='absent')
    box.sh('rm -rf %s' % data)


def test_interactive_keeps_stdin_open_and_tty_gives_a_terminal(box):
    """As docker run -i and -t: with interactive, sh waits on stdin (a FIFO in the state dir that a
    writer can feed); without, it reads end-of-file and ends; with tty, the init has a controlling
    terminal and its output is logged as stdout."""
    read = ['sh', '-c', 'read line; echo "got $line"']
    res = box.ansible.tasks([
        {'name': 'i', 'nsbox.runtime.container': {'name': 'i', 'image': 'busybox', 'command': read, 'interactive': True, 'stop_timeout': 0}},
        {'name': 'n', 'nsbox.runtime.container': {'name': 'n', 'image': 'busybox', 'command': read}},
        {'name': 't', 'nsbox.runtime.container': {'name': 't', 'image': 'busybox', 'tty': True,
                                                  'command': ['sh', '-c', 'test -t 0 && test -t 1 && echo "on a tty $(stat -L -c %t /proc/self/fd/0)"; '
                                                              'grep -q "^[0-9]* (sh) [A-Z] [0-9]* $$ $$ " /proc/$$/stat && echo "session leader"']}},
    ])
    assert res.rc == 0, res
    n, t = box.wait_exited('n'), box.wait_exited('t')
    assert n['state']['exit_code'] == 0 and [e['log'] for e in n['logs']] == ['got \n']
    assert [(e['stream'], e['log']) for e in t['logs']] == [('stdout', 'on a tty 88\r\n'), ('stdout', 'session leader\r\n')], t['logs']
    i = box.info('i')
    assert i['state']['running'], i
    box.sh('echo hello > /run/nsbox/containers/%s/stdin' % i['id'])
    i = box.wait_exited('i')
    assert i['state']['exit_code'] == 0 and [e['log'] for e in i['logs']] == ['got hello\n'], i
    for name in ('i', 'n', 't'):
        box.run(name=name, state='absent')
