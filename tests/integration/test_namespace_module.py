# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The namespace module over SSH: namespaces persisted in the test host's own mount namespace.

The test host's sshd runs in a private mount namespace with an overlay on /run, so the
persisted files (bind mounts under /run/nsbox/ns) exist there only, and every check runs
inside it over SSH (``nsenter --net=/run/nsbox/ns/NAME/net ...``). After each test every
holder process the test's module runs started is killed by its recorded pid, and every
mount under /run/nsbox is undone, even when the test failed.
"""
from __future__ import annotations

import json
import shlex

import pytest

NS = '/run/nsbox/ns'
MAP = [{'container_id': 0, 'host_id': 100000, 'size': 65536}]
LIB = '/usr/local/lib/nsbox/current'


def _holders(host):
    """Recorded holders (pid, name) that are still the process recorded: started by this test's runs."""
    code = ('import glob, json\n'
            'for f in glob.glob("%s/*/holder.json"):\n'
            '    r = json.load(open(f))\n'
            '    try:\n'
            '        stat = open("/proc/%%d/stat" %% r["pid"]).read().rpartition(")")[2].split()\n'
            '    except OSError:\n'
            '        continue\n'
            '    if int(stat[19]) == r["start_time"] and stat[0] != "Z":\n'
            '        print(r["pid"], r["name"])\n' % NS)
    out = host.ssh('python3 -c %s' % shlex.quote(code)).stdout
    return [(int(p), n) for p, n in (line.split() for line in out.splitlines())]


def _mounts(host, under='/run/nsbox'):
    out = host.ssh('grep -F " %s" /proc/self/mountinfo || true' % under).stdout
    return [line.split()[4] for line in out.splitlines() if line.split()[4].startswith(under)]


def cleanup(host):
    for pid, _name in _holders(host):
        host.ssh('kill -9 %d' % pid, check=False)
    for target in sorted(_mounts(host), key=len, reverse=True):
        host.ssh('umount -l %s' % target, check=False)
    host.ssh('rm -rf /run/nsbox /run/nsbox-test')


@pytest.fixture
def host(fresh_host, ansible):
    yield fresh_host
    try:
        assert _holders(fresh_host) == [], 'a holder process was left running'
        assert _mounts(fresh_host) == [], 'a mount was left under /run/nsbox'
    finally:
        cleanup(fresh_host)


def ns(ansible, check=False, diff=False, **args):
    return ansible.module('nsbox.runtime.namespace', args, check=check, diff=diff)


def sh(host, cmd):
    return host.ssh(cmd).stdout.strip()


def inode(host, path):
    return int(sh(host, 'stat -L -c %%i %s' % path))


def test_net_uts_ipc_lifecycle(ansible, host):
    args = {'name': 'web', 'types': ['net', 'uts', 'ipc'], 'loopback_up': True}
    predicted = ns(ansible, check=True, diff=True, **args)
    assert predicted['_status'] == 'changed', predicted
    assert predicted['actions'] == ['created namespaces uts, ipc, net of web', 'brought up lo in the net namespace of web']
    assert predicted['diff']['after']['types'] == {'ipc': '(new)', 'net': '(new)', 'uts': '(new)'}
    assert _mounts(host) == [] and host.ssh('test -e %s' % NS, check=False).returncode == 1  # check mode wrote nothing

    res = ns(ansible, diff=True, **args)
    assert res['_status'] == 'changed', res
    types = res['namespace']['types']
    assert sorted(types) == ['ipc', 'net', 'uts'] and types['net']['loopback_up'] is True
    for ns_type, info in types.items():
        assert info['path'] == '%s/web/%s' % (NS, ns_type) and inode(host, info['path']) == info['inode']
        assert info['inode'] != inode(host, '/proc/self/ns/%s' % ns_type)
    assert res['diff']['before']['types'] == {} and res['diff']['after']['types'] == {t: i['inode'] for t, i in types.items()}
    assert sorted(_mounts(host)) == [NS] + ['%s/web/%s' % (NS, t) for t in ('ipc', 'net', 'uts')]
    # The persisted ns dir does not propagate anywhere (the mnt-ns bind-mount loop needs that).
    assert 'shared:' not in sh(host, 'grep -F " %s " /proc/self/mountinfo' % NS)

    # Joined: a process sees only its own lo, up; its namespace is the persisted one.
    links = sh(host, 'nsenter --net=%s/web/net ip -o link' % NS).splitlines()
    assert len(links) == 1 and links[0].startswith('1: lo: <LOOPBACK,UP,LOWER_UP>'), links
    assert sh(host, 'nsenter --net=%s/web/net readlink /proc/self/ns/net' % NS) == 'net:[%d]' % types['net']['inode']
    # uts: a hostname set inside stays there, and only there.
    outside = sh(host, 'hostname')
    host.ssh('nsenter --uts=%s/web/uts hostname nsbox-inside' % NS)
    assert sh(host, 'nsenter --uts=%s/web/uts hostname' % NS) == 'nsbox-inside' and sh(host, 'hostname') == outside
    # ipc: a message queue made inside is seen inside only.
    key = sh(host, 'nsenter --ipc=%s/web/ipc sh -c "ipcmk -Q >/dev/null && ipcs -q"' % NS).splitlines()[-1].split()[0]
    assert key.startswith('0x') and key not in sh(host, 'ipcs -q')
    assert key in sh(host, 'nsenter --ipc=%s/web/ipc ipcs -q' % NS)

    again = ns(ansible, diff=True, **args)
    assert again['_status'] == 'ok' and again['actions'] == [], again
    assert again['diff']['before'] == again['diff']['after'] and again['namespace']['types'] == types

    # Fewer types: the others go, net stays the very same namespace.
    fewer = ns(ansible, name='web', types=['net'])
    assert fewer['_status'] == 'changed' and fewer['actions'] == ['removed the uts namespace of web', 'removed the ipc namespace of web']
    assert fewer['namespace']['types']['net']['inode'] == types['net']['inode']
    assert sh(host, 'ls %s/web' % NS) == 'net'

    assert ns(ansible, check=True, name='web', state='absent')['_status'] == 'changed' and len(_mounts(host)) == 2
    gone = ns(ansible, name='web', state='absent', diff=True)
    assert gone['_status'] == 'changed' and gone['diff']['before']['types'] == {'net': types['net']['inode']}
    assert _mounts(host) == [] and sh(host, 'ls -A %s' % NS) == ''
    assert ns(ansible, name='web', state='absent')['_status'] == 'ok'


def test_user_namespace_with_maps(ansible, host):
    args = {'name': 'rootless', 'types': ['user', 'uts', 'mnt'], 'uid_map': MAP, 'gid_map': MAP}
    res = ns(ansible, **args)
    assert res['_status'] == 'changed', res
    assert res['namespace']['uid_map'] == MAP and res['namespace']['gid_map'] == MAP
    user = '%s/rootless/user' % NS
    # A process joined to it sees the map; what it creates is owned by the mapped ids on the host.
    assert sh(host, 'nsenter --user=%s cat /proc/self/uid_map' % user).split() == ['0', '100000', '65536']
    assert sh(host, 'nsenter --user=%s cat /proc/self/gid_map' % user).split() == ['0', '100000', '65536']
    host.ssh('mkdir -p -m 1777 /run/nsbox-test')
    host.ssh('nsenter --user=%s sh -c "id -u; touch /run/nsbox-test/made-inside"' % user)
    assert sh(host, 'stat -c %u:%g /run/nsbox-test/made-inside') == '100000:100000'
    assert sh(host, 'nsenter --user=%s stat -c %%u:%%g /run/nsbox-test/made-inside' % user) == '0:0'
    # The uts and mnt namespaces belong to it: joined with it, root inside may change them.
    host.ssh('nsenter --user=%s --uts=%s/rootless/uts hostname rootless-inside' % (user, NS))
    assert sh(host, 'nsenter --uts=%s/rootless/uts hostname' % NS) == 'rootless-inside'

    assert ns(ansible, **args)['_status'] == 'ok'
    # A type added later is made inside the existing user namespace, owned by it.
    more = ns(ansible, **{**args, 'types': ['user', 'uts', 'mnt', 'ipc']})
    assert more['_status'] == 'changed' and more['namespace']['types']['user'] == res['namespace']['types']['user'], more
    owner = 'import fcntl, os; print(os.readlink("/proc/self/fd/%%d" %% fcntl.ioctl(os.open("%s/rootless/ipc", os.O_RDONLY), 0xb701)))' % NS
    assert sh(host, 'python3 -c %s' % shlex.quote(owner)) == 'user:[%d]' % res['namespace']['types']['user']['inode']  # NS_GET_USERNS
    # A map cannot change once written: a clear failure, nothing touched.
    other = ns(ansible, **{**args, 'uid_map': [{'container_id': 0, 'host_id': 200000, 'size': 1000}]})
    assert other['_status'] == 'failed' and other['msg'].startswith('failed to change the uid_map of the user namespace of rootless'), other
    assert inode(host, user) == res['namespace']['types']['user']['inode']
    assert ns(ansible, name='rootless', state='absent')['_status'] == 'changed'


def test_pid_namespace_holder(ansible, host):
    res = ns(ansible, name='box', types=['pid', 'time'])
    assert res['_status'] == 'changed' and 'with a holder process' in res['actions'][0], res
    holder = res['namespace']['holder']['pid']
    assert _holders(host) == [(holder, 'box')]
    pid_file = '%s/box/pid' % NS
    # The holder is pid 1 of the namespace: its NSpid ends in 1; its argv is the installed library's.
    assert sh(host, 'grep NSpid /proc/%d/status' % holder).split()[1:] == [str(holder), '1']
    assert 'nsbox' in sh(host, 'readlink -f %s' % LIB) and ' ns-hold box ' in sh(host, 'ps -o args= -p %d' % holder) + ' '
    assert sh(host, 'readlink /proc/%d/ns/pid' % holder) == 'pid:[%d]' % res['namespace']['types']['pid']['inode']
    # Joined, a process is a member (pid > 1) and sees pid 1 in a /proc of that namespace.
    ps = sh(host, 'nsenter --pid=%s unshare --mount --propagation private --mount-proc ps -eo pid=,args=' % pid_file)
    rows = {int(line.split(None, 1)[0]): line.split(None, 1)[1] for line in ps.splitlines()}
    assert 'ns-hold box' in rows[1] and holder not in rows, ps
    # Its time namespace is the persisted one too (a time namespace needs no holder of its own).
    assert sh(host, 'readlink /proc/%d/ns/time' % holder) == 'time:[%d]' % res['namespace']['types']['time']['inode']

    assert ns(ansible, name='box', types=['pid', 'time'])['_status'] == 'ok'
    # A dead holder is seen (the namespace is gone with its pid 1) and replaced.
    host.ssh('kill -9 %d' % holder)
    predicted = ns(ansible, check=True, name='box', types=['pid', 'time'])
    assert predicted['_status'] == 'changed' and predicted['actions'][0].startswith('removed the stale pid namespace file of box'), predicted
    again = ns(ansible, name='box', types=['pid', 'time'])
    assert again['_status'] == 'changed' and again['namespace']['holder']['pid'] != holder
    assert again['namespace']['types']['time'] == res['namespace']['types']['time']
    new_holder = again['namespace']['holder']['pid']

    gone = ns(ansible, name='box', state='absent')
    assert gone['_status'] == 'changed' and 'stopped holder process %d' % new_holder in gone['actions']
    assert _holders(host) == [] and _mounts(host) == []
    state = host.ssh('cat /proc/%d/stat 2>/dev/null || true' % new_holder).stdout
    assert state == '' or state.rpartition(')')[2].split()[0] == 'Z'


def test_all_types_at_once(ansible, host):
    args = {'name': 'full', 'types': ['mnt', 'uts', 'ipc', 'net', 'pid', 'user', 'cgroup', 'time'],
            'uid_map': MAP, 'gid_map': MAP, 'loopback_up': True}
    res = ns(ansible, **args)
    assert res['_status'] == 'changed', res
    types = res['namespace']['types']
    assert sorted(types) == sorted(args['types'])
    for ns_type, info in types.items():
        assert inode(host, info['path']) == info['inode']
    # The holder is in every one of them (made with them), and pid 1 of the pid one.
    holder = res['namespace']['holder']['pid']
    for ns_type, info in types.items():
        assert sh(host, 'readlink /proc/%d/ns/%s' % (holder, ns_type)) == '%s:[%d]' % (ns_type, info['inode'])
    # The new mount namespace does not hold the state dir's mounts (nor other names' namespaces).
    assert NS not in sh(host, 'nsenter --mount=%s cat /proc/self/mountinfo' % types['mnt']['path'])
    assert ns(ansible, **args)['_status'] == 'ok'
    assert ns(ansible, name='full', state='absent')['_status'] == 'changed'


@pytest.mark.parametrize('args, message', [
    ({'name': 'a/b', 'types': ['net']}, "failed to validate namespace name 'a/b'"),
    ({'name': 'x', 'types': ['net'], 'uid_map': MAP}, 'uid_map and gid_map need the user type'),
    ({'name': 'x', 'types': ['user'], 'uid_map': MAP + [{'container_id': 1000, 'host_id': 5, 'size': 10}]},
     'failed to validate uid_map: entries 1 and 2 overlap in container ids (0-65535 and 1000-1009)'),
    ({'name': 'x', 'types': ['uts'], 'loopback_up': True}, 'loopback_up needs the net type'),
    ({'name': 'x', 'types': ['netns']}, 'value of types must be one or more of'),
    ({'name': 'x'}, 'state is present but all of the following are missing: types'),
])
def test_bad_input_creates_nothing(ansible, host, args, message):
    res = ns(ansible, **args)
    assert res['_status'] == 'failed' and message in res['msg'], res
    assert _mounts(host) == [] and host.ssh('ls -A %s 2>/dev/null || true' % NS).stdout == ''


def test_a_failure_midway_undoes_everything(ansible, host):
    """The library on the host, made to fail after persisting some types and starting the holder."""
    assert ns(ansible, name='first', types=['uts'])['_status'] == 'changed'  # installs the library; another name stays
    code = '\n'.join([
        'import json, sys',
        'sys.path.insert(0, %r)' % LIB,
        'from nsbox_runtime.named import store as ns',
        'store = ns.NamespaceStore("/run/nsbox")',
        'real = store._bind',
        'def bind(source, target, ns_type, name):',
        '    if ns_type == "pid":',
        '        raise ns.NamespaceError("persist", "the pid namespace of half", "injected failure")',
        '    real(source, target, ns_type, name)',
        'store._bind = bind',
        'try:',
        '    with store.lock():',
        '        store.create("half", ["mnt", "net", "pid", "user"], [(0, 100000, 10)], [(0, 100000, 10)])',
        'except ns.NamespaceError as exc:',
        '    print(json.dumps(exc.message))',
    ])
    out = host.ssh('python3 -I -c %s' % shlex.quote(code)).stdout
    assert json.loads(out) == 'failed to persist the pid namespace of half: injected failure'
    assert sh(host, 'ls -A %s' % NS) == 'first' and _mounts(host) == [NS, '%s/first/uts' % NS]
    assert 'ns-hold half' not in sh(host, 'ps -eo args')  # the holder had started: it is gone again
    assert ns(ansible, name='first', state='absent')['_status'] == 'changed'


def test_mount_namespaces_persist_whatever_the_cpus(ansible, host):
    """Linux 6.18 numbers namespaces from per-CPU batches, and mount(2) refuses to bind a mount
    namespace numbered below the caller's own (a reference-loop guard): a namespace made on one
    CPU could not be persisted from a namespace made on another, at random. Every pair of CPUs:
    the persisting mount namespace made on one, the creator started on the other."""
    assert ns(ansible, name='first', types=['uts'])['_status'] == 'changed'  # installs the library
    code = '\n'.join([
        'import os, sys',
        'sys.path.insert(0, %r)' % LIB,
        'from nsbox_runtime.named import store as ns',
        'from nsbox_runtime.kernel import syscall',
        'cpus = sorted(os.sched_getaffinity(0))',
        'for w in cpus:',
        '    for c in cpus:',
        '        pid = os.fork()',
        '        if pid == 0:',
        '            try:',
        '                os.sched_setaffinity(0, {w})',
        '                syscall.unshare(syscall.CLONE_NEWNS)  # the persisting mount namespace, made on CPU w',
        '                os.sched_setaffinity(0, {c})  # the creator starts on CPU c',
        '                store = ns.NamespaceStore("/run/nsbox")',
        '                with store.lock():',
        '                    store.create("cpu", ["mnt"])',
        '                    store.remove("cpu")',
        '                os._exit(0)',
        '            except BaseException as exc:',
        '                print(w, c, exc, flush=True)',
        '                os._exit(1)',
        '        assert os.waitpid(pid, 0)[1] == 0',
        'print(len(cpus))',
    ])
    assert int(host.ssh('python3 -I -c %s' % shlex.quote(code)).stdout) >= 1
    assert sh(host, 'ls -A %s' % NS) == 'first'
    assert ns(ansible, name='first', state='absent')['_status'] == 'changed'
