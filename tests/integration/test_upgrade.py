# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Issue 18, "must not change": a data-root made by the previous release keeps working after an upgrade.

The previous release is this repository's collection at ``PREVIOUS`` (``git archive``), run as a
release is run: its own modules, over SSH, by Ansible, on a test host of this file's own. It installs
its own library tree under ``/usr/local/lib/nsbox``, and the containers it starts are supervised by
that tree's processes, which keep running the old code after the upgrade (as on a real host).

With it: an image (loaded), a named volume, a user network, and containers with a broad set of
options: two running (one serving on a published port, with a healthcheck), one created and never
started, one exited. Then this checkout's collection: the host module installs the new library
(the only change), and converging the same image, volume, network and containers changes nothing,
for real and (the containers) in check mode; the containers keep their ids and init pids (no restart, no recreate);
the *_info modules and ``nsbox ps`` read everything; the containers still reach each other and the
published port; a memory change is applied in place; stop, start (by the new code) and removal
work; and every record of the data-root, the state dir and the host config keeps its schema_version.

Needs the repository's git history (CI runs from a clone with it): without PREVIOUS the test fails and
says so. When a release is cut, PREVIOUS moves to it.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import tempfile
import time

import pytest

from harness.containers import DATA_ROOT, LAYOUT, NOTHING, V1_ONLY, Box, setup, supervisors, teardown
from harness.runner import REPO, AnsibleRunner
from harness.testhost import TestHost

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

PREVIOUS = '8d3a1dc'  # the library before the typed-spec refactor (issue 18): the release whose data-root is upgraded
COLLECTION_FILES = ('plugins', 'meta', 'galaxy.yml')  # what Ansible loads of a collection
LIB_DIR = '/usr/local/lib/nsbox'
# Records with a schema_version: the data-root, the state dir, the host config (content-addressed blobs are never rewritten).
RECORDS = ('/var/lib/nsbox', '/run/nsbox', '/etc/nsbox')
# Not records: blobs, file trees (layers, containers' layers and mounts, volumes' data); nor a FIFO (opened, it would wait).
RECORD_SKIP = ('blobs', 'diff', 'upper', 'work', 'rootfs', 'merged', '_data')
HTTPD = ['sh', '-c', 'echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www']
FETCH = '/usr/bin/python3 -c "import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())" '

NETWORK = {'name': 'appnet', 'subnet': '10.93.0.0/24', 'labels': {'team': 'upgrade'}}
VOLUME = {'name': 'appdata', 'labels': {'keep': 'yes'}}
CONTAINERS = {
    # Serves its volume on the user network and on a published port; limits, a healthcheck, a read-only root.
    'web': dict(
        image='busybox', command=HTTPD, hostname='web', stop_timeout=1, stop_signal='SIGTERM',
        networks=[{'name': 'appnet', 'aliases': ['www']}], published_ports=['18093:80'],
        env={'GREETING': 'hello'}, labels={'tier': 'front'}, annotations={'owner': 'ops'},
        memory='64m', cpus=0.5, pids_limit=64, ulimits=['nofile:1024:2048'], sysctls={'net.core.somaxconn': 512},
        mounts=[{'type': 'volume', 'source': 'appdata', 'target': '/www'},
                {'type': 'tmpfs', 'target': '/scratch', 'tmpfs_size': '1m'}],
        volumes=['/etc/nsbox:/hostcfg:ro'], read_only=True,
        healthcheck={'test': ['CMD', 'wget', '-q', '-O', '/dev/null', 'http://127.0.0.1/'], 'interval': '2s', 'retries': 3},
        restart_policy='unless-stopped', cap_add=['NET_ADMIN'], cap_drop=['MKNOD'],
        dns=['10.93.0.1'], dns_search=['app.lan'], extra_hosts={'gw': '10.93.0.1'}),
    # A fixed address, another user and directory, catatonit as pid 1, everything dropped.
    'worker': dict(
        image='busybox', command=['sleep', '3600'], stop_timeout=1, stop_signal='SIGINT',
        networks=[{'name': 'appnet', 'ipv4_address': '10.93.0.20'}], user='1000:1000', group_add=['10'], working_dir='/work',
        env={'ROLE': 'worker'}, labels={'tier': 'back'}, memory_reservation='16m', cpu_shares=512, shm_size='16m',
        mounts=[{'type': 'volume', 'source': 'appdata', 'target': '/shared', 'read_only': True}],
        init=True, oom_score_adj=100, security_opt=['no-new-privileges'], cap_drop=['ALL'],
        restart_policy='on-failure', restart_retries=3, dns_options=['ndots:2'], log={'max_size': '1m', 'max_files': 2}),
    # Created, never started.
    'idle': dict(image='busybox', command='sleep 3600', network_mode='none', env={'IDLE': '1'}, pid_mode='private',
                 mounts=[{'type': 'tmpfs', 'target': '/tmp'}], state='stopped'),
    # Ran and exited with code 3.
    'done': dict(image='busybox', command=['sh', '-c', 'echo bye; exit 3'], network_mode='none', restart_policy='no'),
}
# The state each is converged with afterwards (the exited one stays as it is with present).
CONVERGE_STATE = {'web': 'started', 'worker': 'started', 'idle': 'stopped', 'done': 'present'}


def previous_collection(workdir):
    """The collection at PREVIOUS as a collections path under ``workdir``; the test fails clearly without git history."""
    def git(*args, **kwargs):
        return subprocess.run(['git', '-C', REPO] + list(args), check=False, **kwargs)
    found = git('rev-parse', '--verify', '--quiet', PREVIOUS + '^{commit}', capture_output=True, text=True)
    if found.returncode != 0:
        pytest.fail('the upgrade test runs the previous release, commit %s of this repository, and %s has no such commit (%s): '
                    'run it from a git checkout with history (git fetch --unshallow)'
                    % (PREVIOUS, REPO, found.stderr.strip() or 'git knows no such commit'), pytrace=False)
    dest = os.path.join(workdir, 'ansible_collections', 'nsbox', 'runtime')
    os.makedirs(dest)
    archive = git('archive', '--format=tar', PREVIOUS, *COLLECTION_FILES, stdout=subprocess.PIPE)
    if archive.returncode != 0:
        pytest.fail('git archive %s %s failed (exit %d)' % (PREVIOUS, ' '.join(COLLECTION_FILES), archive.returncode), pytrace=False)
    subprocess.run(['tar', '-x', '-C', dest], input=archive.stdout, check=True)
    return workdir


def tree_name(collections):
    """The library tree name (``<version>-<sha12>``) the collection under ``collections`` installs: from its own bundle and version."""
    runtime = os.path.join(collections, 'ansible_collections', 'nsbox', 'runtime', 'plugins', 'module_utils', '_runtime')
    spec = importlib.util.spec_from_file_location('nsbox_previous_bundle', os.path.join(runtime, 'bundle.py'))
    bundle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle)  # imports nothing of the library (its own docstring says so)

    def read(name):
        with open(os.path.join(runtime, name + '.py'), 'rb') as f:
            return f.read()
    with open(os.path.join(runtime, 'version.py')) as f:
        version = re.search(r"^VERSION = '([^']+)'$", f.read(), re.M).group(1)
    return '%s-%s' % (version, bundle.source_digest(read)[:12])


def schema_command():
    """A shell command printing {path: schema_version} of every JSON record under RECORDS on the host, as JSON."""
    code = ('import json, os, stat, sys\n'
            'out = {}\n'
            'for top in sys.argv[1:]:\n'
            '    for d, dirs, files in os.walk(top):\n'
            '        dirs[:] = [x for x in dirs if x not in SKIP and not os.path.ismount(os.path.join(d, x))]\n'
            '        for n in files:\n'
            '            p = os.path.join(d, n)\n'
            '            try:\n'
            '                if not n.endswith(".json") or not stat.S_ISREG(os.lstat(p).st_mode):\n'
            '                    continue\n'
            '                with open(p) as f:\n'
            '                    data = json.load(f)\n'
            '            except (OSError, ValueError):\n'
            '                continue\n'
            '            if isinstance(data, dict) and "schema_version" in data:\n'
            '                out[p] = data["schema_version"]\n'
            'print(json.dumps(out))\n').replace('SKIP', repr(RECORD_SKIP))
    return 'python3 -c %s %s' % (shlex.quote(code), ' '.join(RECORDS))


def assert_schema_kept(records, now):
    """Each record of ``records`` ({path: schema_version}) is in ``now`` with the same schema_version."""
    assert {p: now.get(p) for p in records} == records, 'records whose schema_version changed or that are gone: %r' % {
        p: (v, now.get(p)) for p, v in records.items() if now.get(p) != v}


def tasks(fixtures, states, prefix='', image=True, **extra):
    """The image, volume, network and containers as tasks named ``prefix`` + what (container states from ``states``)."""
    out = [{'name': prefix + 'image', 'nsbox.runtime.image': {'name': 'busybox', 'source': 'load', 'path': fixtures.docker_archive}}] * image
    out += [{'name': prefix + 'volume', 'nsbox.runtime.volume': VOLUME},
            {'name': prefix + 'network', 'nsbox.runtime.network': NETWORK}]
    for name, args in CONTAINERS.items():
        out.append({'name': prefix + name, 'nsbox.runtime.container': dict(args, name=name, state=states.get(name, args.get('state', 'started')))})
    return [dict(t, **extra) for t in out]


INFO_TASKS = [{'name': 'containers', 'nsbox.runtime.container_info': {'name': list(CONTAINERS)}},
              {'name': 'images', 'nsbox.runtime.image_info': {}},
              {'name': 'volumes', 'nsbox.runtime.volume_info': {}},
              {'name': 'networks', 'nsbox.runtime.network_info': {}}]


def infos(res):
    """{kind: {name: record}} from the INFO_TASKS of a play."""
    out = {}
    for kind in ('containers', 'images', 'volumes', 'networks'):
        records = res.task(kind)[kind]
        out[kind] = {r.get('name') or r.get('Name') or r['id']: r for r in records}  # volumes as Docker's, Name
    return out


def not_ok(res, prefix=''):
    """{task: what it did or why it failed} of the tasks named ``prefix``... that did not end ok (unchanged)."""
    return {r['task']: r['result'].get('actions') or r['result'].get('changes') or r['result'].get('msg')
            for r in res.records if r['task'].startswith(prefix) and r['status'] != 'ok'}


def assert_kept(old, new, where):
    """Every field the previous release returned is there, with the same value (the new one may return more)."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key, value in old.items():
            assert key in new, '%s.%s: returned by the previous release, missing now' % (where, key)
            assert_kept(value, new[key], '%s.%s' % (where, key))
    else:
        assert old == new, '%s: %r before the upgrade, %r after' % (where, old, new)


def kept_state(info):
    st = info['state']
    return {k: st.get(k) for k in ('status', 'running', 'pid', 'started_at', 'finished_at', 'exit_code', 'oom_killed')}


def exec_task(name, container, command):
    return {'name': name, 'nsbox.runtime.container_exec': {'container': container, 'command': command}}


@pytest.fixture(scope='module')
def upgrade_host(fixtures, reaper):
    """A test host (network namespace of its own) set up by the previous release: host config and the image.

    Yields (old Box, new Box, collections path of the previous release). Afterwards whatever is left is
    removed by this checkout's modules, then by pid and path (teardown); nothing may be left, nor an orphan."""
    if os.geteuid() != 0:
        pytest.skip('root only')
    old_collections = tempfile.mkdtemp(prefix='nsbox-previous-', dir='/tmp')
    host = TestHost('upgradehost', netns=True)
    runners = []
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    left = None
    try:
        previous_collection(old_collections)
        host.start()
        old = AnsibleRunner([host], collections=old_collections)
        runners.append(old)
        new = AnsibleRunner([host])
        runners.append(new)
        old_box = setup(host, old, parent, {'busybox': fixtures.docker_archive}, default_network_mode='none')
        yield old_box, Box(host, new, parent), old_collections
        if host.ssh('ls -A %s/containers %s/volumes %s/networks | grep -v "^\\.\\|^/\\|^$"' % ((DATA_ROOT,) * 3), check=False).stdout:
            # The test ended before its removal: the modules remove what is left, as a user would (teardown checks it).
            new.tasks([{'nsbox.runtime.container': {'name': n, 'state': 'absent', 'force_kill': True}, 'ignore_errors': True}
                       for n in CONTAINERS]
                      + [{'nsbox.runtime.network': {'name': n, 'state': 'absent'}, 'ignore_errors': True} for n in ('appnet', 'nsbox0')]
                      + [{'nsbox.runtime.volume': {'name': 'appdata', 'state': 'absent'}, 'ignore_errors': True}])
    finally:
        if host.proc is not None:
            left = teardown(host, parent)
        for runner in runners:
            runner.close()
        host.stop()
        shutil.rmtree(old_collections, ignore_errors=True)
    reaper.check()
    assert left == NOTHING, 'the test left these behind: %r' % left


def make_previous(old_box, fixtures):
    """The previous release's data-root: image, volume, network, four containers (one exited); their infos.

    Its own converge of the same tasks is not run again here: PREVIOUS is fixed, and it is the library this test
    was written against (main at the time), whose converge of them the test found a no-op. So a change seen
    after the upgrade is the upgrade's."""
    res = old_box.ansible.tasks(tasks(fixtures, {'web': 'healthy'}, image=False))  # loaded by setup()
    assert res.rc == 0 and not res.failed, res
    for name in ('volume', 'network') + tuple(CONTAINERS):
        assert res.task(name)['_status'] == 'changed', res.task(name)
    until_exited = {'name': 'exited', 'nsbox.runtime.container_info': {'name': ['done']}, 'register': 'done',
                    'until': "done.containers[0].state.status == 'exited'", 'retries': 30, 'delay': 1}
    res = old_box.ansible.tasks([until_exited] + INFO_TASKS)
    assert res.rc == 0 and not res.failed, res
    before = infos(res)
    st = {n: c['state'] for n, c in before['containers'].items()}
    assert st['web']['status'] == 'running' and st['web']['health']['status'] == 'healthy', st['web']
    assert st['worker']['status'] == 'running' and st['idle']['status'] == 'created', st
    assert st['done']['status'] == 'exited' and st['done']['exit_code'] == 3, st['done']
    return before


def test_upgrade_in_place(upgrade_host, fixtures):
    old_box, box, old_collections = upgrade_host
    laps = [('', time.monotonic())]
    before = make_previous(old_box, fixtures)
    old_tree = box.sh('readlink %s/current' % LIB_DIR)
    assert old_tree == tree_name(old_collections), 'the previous release installed %s, not its own tree' % old_tree
    old_supervisors = supervisors(box.host)
    assert len(old_supervisors) == 2, old_supervisors  # web's and worker's
    records = json.loads(box.sh(schema_command()))
    kinds = {'store.json', 'index.json', 'meta.json', 'config.json', 'state.json', 'health.json', 'network.json', 'volume.json', 'appnet.json'}
    assert kinds <= {os.path.basename(p) for p in records}, 'records not found: %s' % (kinds - {os.path.basename(p) for p in records})
    laps.append(('made by the previous release', time.monotonic()))

    # The upgrade, in one play: this checkout's host module installs its library (nothing else changes); converging
    # the same things changes nothing, predicted (check mode, the containers) and for real; the info modules; execs in the old containers.
    host_args = {'cgroup_parent': box.parent, 'default_network_mode': 'none'}
    res = box.ansible.tasks(
        [{'name': 'upgrade', 'nsbox.runtime.host': host_args}]
        + [t for t in tasks(fixtures, CONVERGE_STATE, prefix='check ', check_mode=True) if 'nsbox.runtime.container' in t]  # predictions
        + tasks(fixtures, CONVERGE_STATE, prefix='converge ')
        + INFO_TASKS
        + [exec_task('worker', 'worker', ['sh', '-c', 'wget -q -O - http://www/; cat /shared/index.html; id -u; id -g; pwd; cat /proc/1/comm']),
           exec_task('inside web', 'web', ['sh', '-c', 'touch /x 2>/dev/null && echo rw || echo ro; echo $GREETING; cat /proc/sys/net/core/somaxconn'])])
    assert res.rc == 0 and not res.failed, res
    upgrade = res.task('upgrade')
    assert all(LIB_DIR in c or '/usr/local/bin/' in c for c in upgrade['changes']), 'the upgrade changed more than the library: %r' % upgrade['changes']
    new_tree = box.sh('readlink %s/current' % LIB_DIR)
    assert new_tree == os.path.basename(upgrade['library']['path']), (new_tree, upgrade['library'])
    assert box.sh('test -d %s/%s && echo kept' % (LIB_DIR, old_tree)) == 'kept'  # the old supervisors still run it
    for prefix in ('check ', 'converge '):
        assert not not_ok(res, prefix), 'converging the previous release\'s data-root (%s) changed: %r' % (prefix.strip(), not_ok(res, prefix))

    # Read back: same containers (id, init pid, start time, exit code), same image, volume and network.
    after = infos(res)
    for kind in ('containers', 'images', 'volumes', 'networks'):
        assert sorted(after[kind]) == sorted(before[kind]), (kind, sorted(before[kind]), sorted(after[kind]))
        for key, old in before[kind].items():
            live = ('state', 'stats') if kind == 'containers' else ()  # measured now (state: compared below)
            assert_kept({k: v for k, v in old.items() if k not in live}, after[kind][key], '%s[%s]' % (kind, key))
    for name in CONTAINERS:
        old, new = before['containers'][name], after['containers'][name]
        assert kept_state(new) == kept_state(old), (name, kept_state(old), kept_state(new))
    assert after['containers']['web']['state']['health']['status'] == 'healthy', after['containers']['web']['state']
    assert sorted(supervisors(box.host)) == sorted(old_supervisors)  # still the previous release's, running its tree
    assert box.sh('cat /proc/%d/cmdline | tr "\\0" " "' % old_supervisors[0]).count('%s/%s' % (LIB_DIR, old_tree)) == 1

    # They still work: names and aliases on the network, the volume, the options inside, the published port.
    assert res.task('worker')['stdout'].split('\n') == ['hello from web'] * 2 + ['1000', '1000', '/work', 'init', ''], res.task('worker')
    assert res.task('inside web')['stdout'].split() == ['ro', 'hello', '512'], res.task('inside web')
    assert box.sh(FETCH + 'http://127.0.0.1:18093/') == 'hello from web'
    laps.append(('upgrade, converge, info, exec', time.monotonic()))

    # The host command of the new release lists and inspects them as they are.
    rows = {r['name']: r for r in json.loads(box.sh('nsbox ps -a --format json'))}
    assert {n: (r['id'], r['status']) for n, r in rows.items()} == {
        n: (c['id'], c['state']['status']) for n, c in before['containers'].items()}, rows
    inspected = {c['name']: c for c in json.loads(box.sh('nsbox inspect ' + ' '.join(CONTAINERS)))}
    assert {n: (c['id'], c['state']['pid']) for n, c in inspected.items()} == {
        n: (c['id'], c['state']['pid']) for n, c in before['containers'].items()}, inspected

    # Nothing converged or read rewrote a record's schema_version.
    assert_schema_kept(records, json.loads(box.sh(schema_command())))
    laps.append(('nsbox ps, schema versions', time.monotonic()))

    # A live update of an old container: the new memory limit in its cgroup, the same init.
    web = before['containers']['web']
    res = box.ansible.tasks([{'name': 'update', 'nsbox.runtime.container': dict(CONTAINERS['web'], name='web', memory='96m')},
                             {'name': 'again', 'nsbox.runtime.container': dict(CONTAINERS['web'], name='web', memory='96m')}])
    assert res.rc == 0 and not res.failed, res
    update = res.task('update')
    assert update['_status'] == 'changed' and update['container']['id'] == web['id'], update
    assert update['container']['state']['pid'] == web['state']['pid'], update['container']['state']
    assert res.task('again')['_status'] == 'ok', res.task('again')
    assert box.cgroup_file(web['id'], 'memory', 'memory.limit_in_bytes') == str(96 << 20)
    laps.append(('live update', time.monotonic()))

    # Stop it (its supervisor is the previous release's), start it with the new code and reach it; then remove everything.
    res = box.ansible.tasks([{'name': 'stop', 'nsbox.runtime.container': dict(CONTAINERS['web'], name='web', memory='96m', state='stopped')},
                             {'name': 'start', 'nsbox.runtime.container': dict(CONTAINERS['web'], name='web', memory='96m')},
                             exec_task('reach', 'worker', ['wget', '-q', '-O', '-', 'http://www/']),
                             {'name': 'records', 'ansible.builtin.shell': schema_command()}]
                            + [{'name': 'remove ' + n, 'nsbox.runtime.container': {'name': n, 'state': 'absent'}} for n in CONTAINERS]
                            + [{'name': 'remove network', 'nsbox.runtime.network': {'name': 'appnet', 'state': 'absent'}},
                               {'name': 'remove volume', 'nsbox.runtime.volume': {'name': 'appdata', 'state': 'absent'}}])
    assert res.rc == 0 and not res.failed, res
    stop, start = res.task('stop'), res.task('start')
    assert stop['_status'] == 'changed' and stop['container']['state']['status'] == 'exited', stop
    assert start['_status'] == 'changed' and start['container']['id'] == web['id'], start
    assert start['container']['state']['pid'] != web['state']['pid'], start['container']['state']
    assert res.task('reach')['stdout'] == 'hello from web\n', res.task('reach')
    assert_schema_kept(records, json.loads(res.task('records')['stdout']))  # config.json and state.json rewritten by the new code
    assert [r['task'] for r in res.records if r['task'].startswith('remove ') and r['status'] != 'changed'] == [], res
    assert supervisors(box.host) == []
    laps.append(('stop, start, removal', time.monotonic()))
    print('upgrade test steps: ' + ', '.join('%s %.1fs' % (name, t - laps[i][1]) for i, (name, t) in enumerate(laps[1:])))
