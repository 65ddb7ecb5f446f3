# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networking's pure parts: container network options, network definitions, leases, /etc files,
the nftables ruleset. The kernel side is proven in tests/integration/test_network_module.py."""
from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host.config import HostConfig
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, NsboxError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.network import etc_files, links, nft, store as nstore

IMAGE = {'name': 'busybox', 'digest': 'sha256:' + 'a' * 64, 'id': 'sha256:' + 'b' * 64}
DEFAULTS = {'network_mode': 'bridge', 'network': 'nsbox0'}


def resolved(**opts):
    return options.resolve('web', options.check(opts, DEFAULTS), IMAGE, {'Cmd': ['sh']})


def test_network_mode_defaults_and_forms():
    cfg = resolved()
    assert cfg['namespaces']['network'] == 'bridge' and cfg['networks'] == [{'name': 'nsbox0', 'ipv4_address': None, 'aliases': []}]
    assert options.resolve('web', options.check({}, {'network_mode': 'none'}), IMAGE, {'Cmd': ['sh']})['namespaces']['network'] == 'none'
    cfg = resolved(network_mode='backend')  # docker run --network backend
    assert cfg['networks'] == [{'name': 'backend', 'ipv4_address': None, 'aliases': []}]
    cfg = resolved(networks=['front', {'name': 'back', 'ipv4_address': '10.1.0.9', 'aliases': ['db', 'pg']}])
    assert cfg['namespaces']['network'] == 'bridge'
    assert cfg['networks'][1] == {'name': 'back', 'ipv4_address': '10.1.0.9', 'aliases': ['db', 'pg']}
    assert resolved(network_mode='host')['networks'] == []
    # A config stored before networking compares equal to one without these options.
    old = resolved(network_mode='none')
    for key in ('networks', 'published_ports', 'dns', 'dns_search', 'dns_options', 'extra_hosts'):
        del old[key]
    assert options.differences(old, resolved(network_mode='none')) == {}


def test_published_ports_forms():
    ports = options.check({'published_ports': ['8080:80', '127.0.0.1:5353:53/udp', '9000-9001:7000-7001']}, DEFAULTS)['published_ports']
    assert ports == [
        {'host_ip': '127.0.0.1', 'host_port': 5353, 'container_port': 53, 'protocol': 'udp'},
        {'host_ip': '0.0.0.0', 'host_port': 8080, 'container_port': 80, 'protocol': 'tcp'},
        {'host_ip': '0.0.0.0', 'host_port': 9000, 'container_port': 7000, 'protocol': 'tcp'},
        {'host_ip': '0.0.0.0', 'host_port': 9001, 'container_port': 7001, 'protocol': 'tcp'},
    ]
    assert options.check({'published_ports': ['53:53/udp', '53:53/tcp']}, DEFAULTS)['published_ports'][0]['protocol'] == 'tcp'


def test_dns_and_extra_hosts():
    out = options.check({'dns': ['10.0.0.53'], 'dns_search': ['lan'], 'dns_options': ['ndots:2'],
                         'extra_hosts': ['db:10.0.0.5', 'cache:10.0.0.6']}, DEFAULTS)
    assert out['extra_hosts'] == {'cache': '10.0.0.6', 'db': '10.0.0.5'}
    assert options.check({'extra_hosts': {'db': '10.0.0.5'}}, DEFAULTS)['extra_hosts'] == {'db': '10.0.0.5'}
    text = etc_files.resolv_text({'dns': ['10.0.0.53'], 'dns_search': ['lan'], 'dns_options': ['ndots:2']},
                                 'nameserver 127.0.0.53\nsearch example.org\n')
    assert text == '# nsbox: name servers from the dns option\nnameserver 10.0.0.53\nsearch lan\noptions ndots:2\n'
    assert etc_files.resolv_text({}, 'nameserver 127.0.0.53\nnameserver 192.0.2.1\nsearch example.org\noptions edns0\n') == \
        '# nsbox: name servers from /etc/resolv.conf\nnameserver 192.0.2.1\nsearch example.org\noptions edns0\n'


# /etc/resolv.conf as Ubuntu's systemd-resolved writes it (its stub), and its upstream file, captured from hosts.
RESOLVED_STUB = '''# This is /run/systemd/resolve/stub-resolv.conf managed by man:systemd-resolved(8).
# Do not edit.
nameserver 127.0.0.53
options edns0 trust-ad
search lan
'''
RESOLVED_UPSTREAM = '''# This is /run/systemd/resolve/resolv.conf managed by man:systemd-resolved(8).
nameserver 192.168.1.1
nameserver 2001:db8::1
search lan
'''


def test_a_host_with_systemd_resolved_gives_its_upstream_servers(tmp_path):
    """Issue 20 item 3: the stub (127.0.0.53) was dropped as loopback and nothing was left: no DNS in containers."""
    etc, upstream = tmp_path / 'resolv.conf', tmp_path / 'upstream.conf'
    etc.write_text(RESOLVED_STUB)
    upstream.write_text(RESOLVED_UPSTREAM)
    text, source = etc_files.host_resolv_conf(str(etc), str(upstream))
    assert source == str(upstream)
    out = etc_files.resolv_text({}, text, source)
    assert out.splitlines() == ['# nsbox: name servers from %s' % upstream, 'nameserver 192.168.1.1', 'nameserver 2001:db8::1', 'search lan']
    assert etc_files.dns_source(out) == str(upstream)
    # Without resolved's file: Docker's fallback servers, and said so.
    text, source = etc_files.host_resolv_conf(str(etc), str(tmp_path / 'none'))
    out = etc_files.resolv_text({}, text, source)
    assert out.splitlines()[1:3] == ['nameserver 8.8.8.8', 'nameserver 8.8.4.4'] and 'fallback' in etc_files.dns_source(out)
    # A container on the host's network reaches the stub itself.
    assert 'nameserver 127.0.0.53' in etc_files.resolv_text({}, RESOLVED_STUB, str(etc), keep_loopback=True)
    assert etc_files.dns_source('nameserver 1.1.1.1\n') is None  # written by an older nsbox


def test_hosts_file_names_peers_on_user_networks_only():
    att = {'endpoints': [{'network': 'back', 'address': '10.1.0.2', 'default_names': True}]}
    text = etc_files.hosts_text({'extra_hosts': {'db': '10.0.0.5'}}, 'web', att, [('10.1.0.3', 'api', 'api-alias')])
    assert text.splitlines() == ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback', '10.1.0.2\tweb',
                                 '10.0.0.5\tdb', '10.1.0.3\tapi api-alias']


class _Store(nstore.NetworkStore):
    pass


@pytest.fixture
def store(tmp_path):
    cfg = HostConfig({'data_root': str(tmp_path / 'data'), 'state_dir': str(tmp_path / 'run')})
    return nstore.NetworkStore(cfg)


def _attach(store, cid, net, address):
    store.record(cid, {'name': cid[:4], 'endpoints': [{'network': net['name'], 'address': address}], 'ports': []})


def test_network_definitions():
    net = nstore.parse('back', '10.1.0.0/24')
    assert (net['gateway'], net['bridge'], net['internal']) == ('10.1.0.1', net['bridge'], False)
    assert net['bridge'].startswith('nsbr-') and len(net['bridge']) == 15
    assert nstore.parse('nsbox0', '10.77.0.0/16')['bridge'] == 'nsbox0'
    for args, words in ((('x y', '10.1.0.0/24'), '1-63 of'), (('a', '10.1.0.1/24'), 'host bits'), (('a', '10.1.0.0/30'), 'too small'),
                        (('a', '10.1.0.0/24', '10.2.0.1'), 'not a host address'), (('a', 'fd00::/64'), 'IPv6'),
                        (('host', '10.1.0.0/24'), 'is a network_mode')):
        with pytest.raises(ConfigError, match=words):
            nstore.parse(*args)


def test_leases_lowest_free_static_and_never_twice(store):
    net = nstore.parse('back', '10.1.0.0/29')  # hosts .1-.6, the gateway .1
    a, b = 'a' * 64, 'b' * 64
    with store.lock():
        assert store.allocate(net, a) == '10.1.0.2'
        _attach(store, a, net, '10.1.0.2')
        assert store.allocate(net, b, '10.1.0.6') == '10.1.0.6'
        _attach(store, b, net, '10.1.0.6')
        with pytest.raises(NsboxError, match='taken'):
            store.allocate(net, 'c' * 64, '10.1.0.2')
        with pytest.raises(ConfigError, match='not a host address'):
            store.allocate(net, 'c' * 64, '10.1.0.7')
        # A lease whose container never recorded its attachment (a crash in between) is not valid.
        assert store.allocate(net, 'c' * 64) == '10.1.0.3'
        assert store.allocate(net, 'd' * 64) == '10.1.0.3'
        _attach(store, 'd' * 64, net, '10.1.0.3')
        for cid in ('e', 'f'):
            _attach(store, cid * 64, net, store.allocate(net, cid * 64))
        with pytest.raises(NsboxError, match='all of 10.1.0.0/29 are taken'):
            store.allocate(net, '0' * 64)
        store.release(a)
        assert store.allocate(net, '0' * 64) == '10.1.0.2'
    assert sorted(store.leases('back')) == ['10.1.0.3', '10.1.0.4', '10.1.0.5', '10.1.0.6']


def test_ruleset_is_ours_only_and_deterministic():
    nets = [{'name': 'nsbox0', 'bridge': 'nsbox0', 'subnet': '10.77.0.0/16', 'internal': False},
            {'name': 'int', 'bridge': 'nsbr-1', 'subnet': '10.78.0.0/24', 'internal': True}]
    ports = [{'container': 'c' * 64, 'ip': '10.77.0.2', 'host_ip': '127.0.0.1', 'host_port': 8080, 'container_port': 80, 'protocol': 'tcp'}]
    cmds = nft.ruleset(nets, ports)
    assert all(list(c['add'].values())[0].get('table', 'nsbox') == 'nsbox' for c in cmds)
    assert cmds == nft.ruleset(list(reversed(nets)), ports)
    masq = [c for c in cmds if 'rule' in c['add'] and any('masquerade' in e for e in c['add']['rule']['expr'])]
    assert [c['add']['rule']['comment'] for c in masq] == ['network nsbox0', 'network nsbox0 (published on loopback)']
    dnat = [c['add']['rule'] for c in cmds if 'rule' in c['add'] and c['add']['rule']['chain'] == 'ports']
    assert dnat[0]['expr'][-1] == {'dnat': {'family': 'ip', 'addr': '10.77.0.2', 'port': 80}}


def test_mac_is_derived_from_the_address():
    """Docker's scheme: 02:42 and the four bytes of the IPv4 address; locally administered, unicast, one per address."""
    assert links.mac_for('10.81.0.10') == '02:42:0a:51:00:0a'
    assert links.mac_for('172.17.0.2') == '02:42:ac:11:00:02'  # what Docker gave that address until moby#48808
    assert links.mac_for('10.77.255.254') == links.mac_for('10.77.255.254')
    first = int(links.mac_for('10.0.0.1').split(':', maxsplit=1)[0], 16)
    assert first & 0x02 and not first & 0x01
    subnet = nstore.parse('lab', '10.78.0.0/22')['subnet']
    macs = {links.mac_for(str(a)) for a in ipaddress.ip_network(subnet).hosts()}
    assert len(macs) == 1022
    with pytest.raises(ValueError):
        links.mac_for('fd00::1')  # IPv6 has no room in a MAC: another scheme when it lands


def test_gratuitous_arp_frame():
    frame = links.garp_frame('02:42:0a:51:00:0a', '10.81.0.10')
    mac, ip = bytes.fromhex('02420a51000a'), bytes([10, 81, 0, 10])
    assert len(frame) == 42
    assert frame[:6] == b'\xff' * 6 and frame[6:12] == mac and frame[12:14] == b'\x08\x06'
    assert frame[14:22] == bytes.fromhex('0001080006040001')  # Ethernet, IPv4, 6, 4, request
    assert frame[22:28] == mac and frame[28:32] == ip and frame[32:38] == b'\0' * 6 and frame[38:42] == ip
    assert links.garp_frame(mac, '10.81.0.10') == frame  # the MAC as a packet socket reports it


class _Attrs(dict):
    def get_attr(self, name):
        return self.get(name)


class _PortIPRoute:
    """A netlink stand-in: one bridge port whose state goes through ``states`` (one per read, the last stays)."""

    def __init__(self, states):
        self.states = list(states)

    def link_lookup(self, ifname):
        return [7] if ifname == 'nsv0' else []

    def link(self, cmd, index):
        assert (cmd, index) == ('get', 7)
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return [_Attrs(IFLA_LINKINFO=_Attrs(IFLA_INFO_SLAVE_KIND='bridge', IFLA_INFO_SLAVE_DATA=_Attrs(IFLA_BRPORT_STATE=state)))]


def test_port_forwarding_waits_for_the_bridge_port():
    ipr = _PortIPRoute([0, 0, 3])  # disabled until the carrier comes, then forwarding
    assert links.port_forwarding(ipr, 'nsv0') and ipr.states == [3]
    assert not links.port_forwarding(_PortIPRoute([0]), 'nsv0', timeout=0.02)
    assert not links.port_forwarding(_PortIPRoute([3]), 'gone', timeout=0)
