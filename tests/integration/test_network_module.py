# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bridge networking for real, over SSH, on a test host with a network namespace of its own
(TestHost netns=True: its bridges, veths, nftables table and sysctls go with it).

Two containers on a user network reach each other by name; a published port serves busybox
httpd to the host (127.0.0.1) and to a "client host" (a second network namespace on a veth,
made by the test); an internal network has no way out; a port conflict fails clearly and
leaves nothing; removal leaves no link, lease or rule; a crashed start is repaired by the next run;
a server recreated with its address is reached again at once (its MAC comes from the address, and it
announces itself).
"""
from __future__ import annotations

import glob
import json
import os
import secrets
import signal
import subprocess
import threading
import time

import pytest

from harness import images
from harness.containers import FIXTURE_CACHE, LAYOUT, NOTHING, V1_ONLY, setup, supervisors, teardown
from harness.runner import AnsibleRunner
from harness.testhost import TestHost

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

HTTPD = ['sh', '-c', 'mkdir -p /www && echo "hello from $(hostname)" > /www/index.html && exec httpd -f -p 80 -h /www']
CLIENT_NS = 'nsbox-client'
NFT_CMD = "/usr/bin/python3 -c 'import nftables,sys; rc,out,err=nftables.Nftables().cmd(sys.argv[1]); sys.exit(rc and err)' '%s'"
NFT_RULES = ('/usr/bin/python3 -c "import nftables,json; n=nftables.Nftables(); n.set_json_output(True); '
             'rc,out,err=n.cmd(\'list table inet nsbox\'); '
             'print(json.dumps([i[\'rule\'].get(\'comment\') for i in (json.loads(out)[\'nftables\'] if rc == 0 else []) if \'rule\' in i]))"')


@pytest.fixture(scope='module')
def net_host(reaper):
    if os.geteuid() != 0:
        pytest.skip('root only')
    host = TestHost('nethost', netns=True).start()
    ansible = AnsibleRunner([host])
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    try:
        box = setup(host, ansible, parent, {'busybox': images.FixtureImages(FIXTURE_CACHE).build().docker_archive})
        # The "client host": a network namespace of its own on a veth to the test host (192.168.231.0/30).
        host.ssh('ip netns add %s && ip link add nsbox-cl0 type veth peer name nsbox-cl1 netns %s && '
                 'ip addr add 192.168.231.1/30 dev nsbox-cl0 && ip link set nsbox-cl0 up && '
                 'ip -n %s addr add 192.168.231.2/30 dev nsbox-cl1 && ip -n %s link set nsbox-cl1 up && ip -n %s link set lo up'
                 % ((CLIENT_NS,) * 5))
        yield box
        gone = ansible.module('nsbox.runtime.network', {'name': 'nsbox0', 'state': 'absent'})  # made on first use
        assert gone['_status'] in ('changed', 'ok'), gone
    finally:
        left = teardown(host, parent)
        ansible.close()
        host.stop()  # the namespace goes with its last process: bridges, veths, the table, the client
    reaper.check()
    assert left == NOTHING, 'the tests left these behind: %r' % left


def links(box, prefix):
    out = box.sh("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1")
    return sorted(name for name in out.split() if name.startswith(prefix))


def rules(box):
    return json.loads(box.sh(NFT_RULES))


def run(box, **args):
    return box.ansible.module('nsbox.runtime.network', args)


def test_network_lifecycle_idempotent_check_mode_and_errors(net_host):
    box = net_host
    res = run(box, name='lab', subnet='10.78.0.0/24', labels={'team': 'a'})
    assert res['_status'] == 'changed', res
    bridge = res['network']['bridge']
    assert res['network']['gateway'] == '10.78.0.1' and bridge.startswith('nsbr-')
    assert '10.78.0.1/24' in box.sh('ip -o addr show dev %s' % bridge)
    assert box.sh('cat /proc/sys/net/ipv4/ip_forward') == '1'
    assert run(box, name='lab', subnet='10.78.0.0/24', labels={'team': 'a'})['_status'] == 'ok'
    # Another table that drops forwarded packets (as Docker's iptables rules or ufw do): said, not fixed.
    box.sh(NFT_CMD % 'add table ip filter; add chain ip filter FORWARD { type filter hook forward priority 0; policy drop; }')
    try:
        warned = run(box, name='lab', subnet='10.78.0.0/24', labels={'team': 'a'})
        assert warned['_status'] == 'ok' and any('ip filter FORWARD' in w for w in warned.get('warnings', [])), warned
    finally:
        box.sh(NFT_CMD % 'delete table ip filter')
    check = box.ansible.module('nsbox.runtime.network', {'name': 'lab', 'subnet': '10.78.0.0/24', 'labels': {'team': 'b'}}, check=True)
    assert check['_status'] == 'changed' and check['actions'] == ['updated labels of network lab'], check
    res = run(box, name='lab', subnet='10.78.0.0/24', labels={'team': 'b'})
    assert res['actions'] == ['updated labels of network lab'] and res['network']['labels'] == {'team': 'b'}, res
    clash = run(box, name='other', subnet='10.78.0.128/25')
    assert clash['_status'] == 'failed' and 'overlaps network lab' in clash['msg'], clash
    route = run(box, name='other', subnet='192.168.231.0/24')
    assert route['_status'] == 'failed' and "overlaps the host's route to 192.168.231.0/30" in route['msg'], route
    info = box.ansible.module('nsbox.runtime.network_info', {'name': ['lab', 'nope']})
    assert [n['name'] for n in info['networks']] == ['lab'] and info['missing'] == ['nope']
    assert run(box, name='lab', state='absent')['_status'] == 'changed'
    assert links(box, 'nsbr-') == [] and box.ansible.module('nsbox.runtime.network_info', {})['networks'] == []


def test_names_published_ports_and_removal(net_host):
    box = net_host
    assert run(box, name='backend', subnet='10.79.0.0/24')['_status'] == 'changed'
    api = dict(name='api', image='busybox', command=HTTPD, hostname='api', stop_timeout=0, published_ports=['8080:80'],
               networks=[{'name': 'backend', 'aliases': ['www']}])
    res = box.run(**api)
    assert res['_status'] == 'changed', res
    st = res['container']['state']
    assert st['networks']['backend']['address'] == '10.79.0.2' and st['ports'] == ['0.0.0.0:8080->80/tcp'], st
    assert box.run(**api)['_status'] == 'ok'
    client = dict(name='client', image='busybox', command='sleep 3600', stop_timeout=0, networks=['backend'], dns=['10.79.0.1'],
                  extra_hosts={'gw': '10.79.0.1'})
    assert box.run(**client)['_status'] == 'changed'
    out = box.execs('client', {
        'ping': (['ping', '-c', '1', '-W', '3', 'api'], {}),
        'alias': (['wget', '-q', '-O', '-', 'http://www/'], {}),
        'hosts': (['cat', '/etc/hosts', '/etc/resolv.conf'], {}),
    })
    assert out['ping']['rc'] == 0, out['ping']
    assert out['alias']['stdout'] == 'hello from api\n', out['alias']
    assert '10.79.0.2\tapi www' in out['hosts']['stdout'] and '10.79.0.1\tgw' in out['hosts']['stdout']
    assert 'nameserver 10.79.0.1' in out['hosts']['stdout']
    # api learnt client's name when client came (its hosts file rewritten in place).
    assert '10.79.0.3\tclient' in box.exec('api', ['cat', '/etc/hosts'])['stdout']
    # The published port: from the test host itself (loopback and its own address) and from the client host.
    fetch = "/usr/bin/python3 -c \"import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())\" "
    assert box.sh(fetch + 'http://127.0.0.1:8080/') == 'hello from api'
    assert box.sh('ip netns exec %s %s http://192.168.231.1:8080/' % (CLIENT_NS, fetch)) == 'hello from api'
    # The default network: outbound NAT to the client host, which sees the test host's address.
    assert box.run(name='out', image='busybox', command='sleep 3600', stop_timeout=0)['_status'] == 'changed'
    assert box.exec('out', ['ping', '-c', '1', '-W', '3', '192.168.231.2'])['rc'] == 0
    # A port conflict: a clear error and nothing left of the container.
    conflict = box.run(name='dup', image='busybox', command=HTTPD, networks=['backend'], published_ports=['8080:80'])
    assert conflict['_status'] == 'failed' and 'container api publishes it already' in conflict['msg'], conflict
    assert box.info('dup') is None
    held = box.run(name='dup', image='busybox', command=HTTPD, networks=['backend'], published_ports=['2222:80'])
    assert held['_status'] == 'changed', held  # nothing listens on 2222 in the test host's namespace...
    assert box.run(name='dup', state='absent')['_status'] == 'changed'
    # A network in use is not removed.
    busy = run(box, name='backend', state='absent')
    assert busy['_status'] == 'failed' and 'containers are attached to it' in busy['msg'], busy
    assert any(c and c.startswith('container ') for c in rules(box))
    for name in ('api', 'client', 'out'):
        assert box.run(name=name, state='absent')['_status'] == 'changed'
    assert links(box, 'nsv') == [] and not any(c and c.startswith('container ') for c in rules(box))
    assert box.ansible.module('nsbox.runtime.network_info', {'name': ['backend']})['networks'][0]['containers'] == []
    assert run(box, name='backend', state='absent')['_status'] == 'changed'


def test_a_lost_state_dir_gives_no_address_twice(net_host):
    """Issue 19 item 5: the state dir removed while a bridged container runs (a tmpfs emptied, a crash of the machine)
    made the next container get the running one's address and dropped its published port. The running container's
    attachment is rebuilt from its copy in the data-root before anything is allocated."""
    box = net_host
    assert run(box, name='lost', subnet='10.81.0.0/24')['_status'] == 'changed'
    first = box.run(name='la', image='busybox', command=HTTPD, hostname='la', stop_timeout=0, published_ports=['8081:80'], networks=['lost'])
    assert first['container']['state']['networks']['lost']['address'] == '10.81.0.2', first
    # rm -rf of the whole state dir: what it can take (mounted namespace files stay, as rm leaves mount points).
    box.sh('rm -rf /run/nsbox 2>/dev/null; true')
    second = box.run(name='lb', image='busybox', command='sleep 3600', stop_timeout=0, networks=['lost'])
    assert second['_status'] == 'changed', second
    assert second['container']['state']['networks']['lost']['address'] == '10.81.0.3', second  # not la's again
    assert any(c and c.startswith('container %s ' % first['container']['id'][:12]) and ':8081/tcp' in c for c in rules(box)), rules(box)
    fetch = "/usr/bin/python3 -c \"import urllib.request,sys; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode().strip())\" "
    assert box.sh(fetch + 'http://127.0.0.1:8081/') == 'hello from la'
    for name in ('lb', 'la'):
        assert box.run(name=name, state='absent')['_status'] == 'changed'
    assert links(box, 'nsv') == [] and not any(c and c.startswith('container ') for c in rules(box))
    assert run(box, name='lost', state='absent')['_status'] == 'changed'


def test_internal_network_has_no_way_out(net_host):
    box = net_host
    assert run(box, name='sealed', subnet='10.80.0.0/24', internal=True)['_status'] == 'changed'
    for name in ('a', 'b'):
        assert box.run(name=name, image='busybox', command='sleep 3600', stop_timeout=0, networks=['sealed'])['_status'] == 'changed'
    out = box.execs('a', {'peer': (['ping', '-c', '1', '-W', '2', 'b'], {}), 'out': (['ping', '-c', '1', '-W', '2', '192.168.231.2'], {}),
                          'route': (['ip', 'route'], {})})
    assert out['peer']['rc'] == 0, out['peer']
    assert out['out']['rc'] != 0 and 'default' not in out['route']['stdout'], out
    assert not any(c == 'network sealed' and 'masquerade' in c for c in rules(box))
    for name in ('a', 'b'):
        assert box.run(name=name, state='absent')['_status'] == 'changed'
    assert run(box, name='sealed', state='absent')['_status'] == 'changed'


def test_a_crashed_start_is_repaired_by_the_next_run(net_host):
    """Supervisor and init killed with SIGKILL (as a crash mid-start would leave it): the veth, lease and
    namespace stay behind; the next converge removes them before it starts the container again."""
    box = net_host
    args = dict(name='crash', image='busybox', command='sleep 3600', stop_timeout=0)
    first = box.run(**args)['container']['state']
    for pid in supervisors(box.host):
        os.kill(pid, signal.SIGKILL)
    os.kill(first['pid'], signal.SIGKILL)
    assert len(links(box, 'nsv')) == 1  # left behind
    again = box.run(**args)
    assert again['_status'] == 'changed' and again['container']['state']['running'], again
    assert again['container']['state']['networks']['nsbox0']['address'] == first['networks']['nsbox0']['address']
    assert len(links(box, 'nsv')) == 1
    assert box.run(name='crash', state='absent')['_status'] == 'changed'
    assert links(box, 'nsv') == []


def _links_in(host, prefix):
    """The test host's links, read from its sshd's /proc entry (its namespace's table): fast enough to race a start."""
    with open('/proc/%d/net/dev' % host.proc.pid) as f:
        return [line.split(':')[0].strip() for line in f.readlines()[2:] if line.strip().startswith(prefix)]


def _local_supervisors(host):
    """This test host's supervisors, found in /proc here (no SSH round trip: a race needs speed)."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            argv = open('/proc/%s/cmdline' % entry, 'rb').read().split(b'\0')
            same = os.readlink('/proc/%s/ns/mnt' % entry) == host.mnt_ns
        except OSError:
            continue
        if same and any(a.startswith(b'/usr/local/lib/nsbox/') and b in (b'supervise', b'monitor') for a, b in zip(argv, argv[1:])):
            found.append(int(entry))
    return found


def test_kill_9_during_create_leaves_no_stray_veth(net_host):
    """The supervisor killed with SIGKILL as soon as the container's network attachment is recorded (its veth
    about to be made, mid-start): the task fails and takes the container back, or (when the kill comes late)
    the container runs unsupervised; either way the next converge leaves exactly one veth, and removal none."""
    box = net_host
    args = dict(name='k9', image='busybox', command='sleep 3600', stop_timeout=0)
    done = {}
    worker = threading.Thread(target=lambda: done.update(res=box.run(**args)))
    worker.start()
    deadline = time.monotonic() + 60
    killed = []
    while worker.is_alive() and time.monotonic() < deadline and not killed:
        if glob.glob('/proc/%d/root/run/nsbox/containers/*/network.json' % box.host.proc.pid):
            for pid in _local_supervisors(box.host):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.002)
    worker.join()
    assert killed, done
    again = box.run(**args)
    assert again['_status'] in ('changed', 'ok') and again['container']['state']['running'], again
    assert len(_links_in(box.host, 'nsv')) == 1
    assert box.run(name='k9', state='absent')['_status'] == 'changed'
    assert _links_in(box.host, 'nsv') == [] and links(box, 'nsv') == []


# -- a recreated container keeps its MAC (issue 28) ------------------------------------------------
# The server writes the uptime at which it starts into its page; the client (wget every 200 ms) logs
# "start end ok|fail page" per attempt, in uptime seconds (one clock: containers share the kernel).
SERVER = ['sh', '-c', 'mkdir -p /www && read up _ < /proc/uptime && echo "$up" > /www/index.html && exec httpd -f -p 5432 -h /www']
CLIENT = ['sh', '-c', 'while :; do read t0 _ < /proc/uptime; if out=$(timeout 3 wget -q -O - http://db:5432/ 2>/dev/null); then r=ok; else r=fail; fi; '
          'read t1 _ < /proc/uptime; echo "$t0 $t1 $r $out" >> /tmp/probe.log; sleep 0.2; done']
DB_ADDRESS, DB_MAC = '10.81.0.10', '02:42:0a:51:00:0a'


def _probe_log(pid):
    """The client's attempts [(start, end, ok, page)], read through /proc (no SSH round trip)."""
    try:
        with open('/proc/%d/root/tmp/probe.log' % pid) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) >= 3:
            out.append((float(parts[0]), float(parts[1]), parts[2] == 'ok', parts[3] if len(parts) > 3 else None))
    return out


def _served_by(pid, page, timeout=15):
    """The first attempt of the client answered by the server that wrote ``page`` (None: none within ``timeout``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hits = [a for a in _probe_log(pid) if a[2] and a[3] == page]
        if hits:
            return hits[0]
        time.sleep(0.1)
    return None


def _in_netns(pid, *cmd):
    """``ip`` in a container's network namespace (made by the test: nothing of the machine's)."""
    return subprocess.run(['nsenter', '--net=/proc/%d/ns/net' % pid, 'ip'] + list(cmd), check=True, capture_output=True, text=True).stdout


def _neighbour(pid, address):
    found = json.loads(_in_netns(pid, '-j', 'neigh', 'show', address, 'dev', 'eth0') or '[]')
    return found[0] if found else None


def _recreated(box, db, gen):
    """db recreated (an env change) with its address; (its init's pid, the page its server serves)."""
    res = box.run(**dict(db, env={'GEN': str(gen)}))
    assert res['_status'] == 'changed', res
    state = res['container']['state']
    assert state['networks']['pg']['address'] == DB_ADDRESS and state['networks']['pg']['mac_address'] == DB_MAC, state
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with open('/proc/%d/root/www/index.html' % state['pid']) as f:
                page = f.read().strip()
            if page:
                return state['pid'], page
        except FileNotFoundError:
            pass
        time.sleep(0.02)
    raise AssertionError('db wrote no page')


def test_a_recreated_server_is_reached_at_once(net_host):
    """Issue 28: a client connecting every 200 ms to a server that is recreated with the same address reaches the
    new one within 1 s of its start — the client's neighbour entry holds the address's MAC, which is the same again
    (derived from the address). Then the client's entry is made wrong on purpose (as a container started before
    the derived MACs, or a user's MAC, would leave it): the next recreate's gratuitous ARP puts it right."""
    box = net_host
    assert run(box, name='pg', subnet='10.81.0.0/24')['_status'] == 'changed'
    db = dict(name='db', image='busybox', command=SERVER, stop_timeout=0, networks=[{'name': 'pg', 'ipv4_address': DB_ADDRESS}])
    try:
        db_pid, page = _recreated(box, db, 1)
        # dns: nothing answers on its own 127.0.0.1:53, so while db is away (not in its hosts file) a lookup fails at
        # once (as Docker's embedded DNS would say "no such name") instead of waiting for the machine's resolver.
        app = box.run(name='app', image='busybox', command=CLIENT, stop_timeout=0, networks=['pg'], dns=['127.0.0.1'])
        assert app['_status'] == 'changed', app
        app_pid = app['container']['state']['pid']
        assert _served_by(app_pid, page), _probe_log(app_pid)
        assert json.loads(_in_netns(db_pid, '-j', 'link', 'show', 'eth0'))[0]['address'] == DB_MAC
        assert _neighbour(app_pid, DB_ADDRESS)['lladdr'] == DB_MAC
        for gen, poison in ((2, None), (3, '02:00:00:00:00:01')):
            if poison:  # REACHABLE with a MAC nobody has: only an announcement corrects it within the lock of 1 s
                _in_netns(app_pid, 'neigh', 'replace', DB_ADDRESS, 'lladdr', poison, 'dev', 'eth0', 'nud', 'reachable')
            db_pid, page = _recreated(box, db, gen)
            neighbour = _neighbour(app_pid, DB_ADDRESS)  # right after the recreate
            assert neighbour and neighbour['lladdr'] == DB_MAC, (gen, neighbour)
            assert json.loads(_in_netns(db_pid, '-j', 'link', 'show', 'eth0'))[0]['address'] == DB_MAC
            started = float(page)
            first = _served_by(app_pid, page)
            assert first and first[1] - started < 1.0, (gen, started, first, [a for a in _probe_log(app_pid) if a[1] >= started - 1])
    finally:
        for name in ('app', 'db'):
            box.run(name=name, state='absent', force_kill=True)
        run(box, name='pg', state='absent')
    assert links(box, 'nsv') == []
