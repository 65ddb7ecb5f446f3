# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Links, addresses and routes through netlink (pyroute2), never by parsing ``ip`` output.

pyroute2 costs ~170 ms to import: it is imported inside these functions, so only the
networking path pays for it. What must happen inside a container's network namespace runs
in a forked child that joined it (``namespaces.run_in``): the caller's namespaces never change.
"""
from __future__ import annotations

import errno
import ipaddress
import os
import socket
import struct
import time

from ..errors import NsboxError
from ..kernel.namespaces import run_in

IFF_UP = 1
PEER_NAME = 'eth0'
MAC_PREFIX = (0x02, 0x42)  # locally administered, unicast: Docker's prefix for the same scheme
BR_STATE_FORWARDING = 3  # IFLA_BRPORT_STATE
ETH_P_ARP = 0x0806


class NetworkError(NsboxError):
    """A network could not be set up, changed or removed."""


def _iproute():
    try:
        # Imported here: pyroute2 costs ~170 ms to import; only the networking path pays it.
        from pyroute2 import IPRoute  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise NetworkError('use', 'netlink', 'the Python library pyroute2 is missing (Debian: python3-pyroute2; the host role installs it)') from None
    return IPRoute()


def _netlink_error(action, obj, exc):
    code = getattr(exc, 'code', None)
    cause = os.strerror(code) if isinstance(code, int) and code > 0 else str(exc)
    return NetworkError(action, obj, cause, errno=code if isinstance(code, int) else None)


def _index(ipr, name):
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def link_info(name):
    """{'index', 'kind', 'up', 'master', 'addresses': [cidr...]} of link ``name`` in this namespace, or None."""
    with _iproute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return None
        link = ipr.link('get', index=idx)[0]
        info = link.get_attr('IFLA_LINKINFO')
        kind = info.get_attr('IFLA_INFO_KIND') if info else None
        addrs = ['%s/%d' % (a.get_attr('IFA_ADDRESS'), a['prefixlen']) for a in ipr.get_addr(index=idx, family=2)]
        return {'index': idx, 'kind': kind, 'up': bool(link['flags'] & IFF_UP), 'master': link.get_attr('IFLA_MASTER'),
                'addresses': sorted(addrs), 'mtu': link.get_attr('IFLA_MTU')}


def ensure_bridge(name, gateway_cidr, check_mode=False):
    """The bridge ``name`` exists, holds ``gateway_cidr`` and is up; returns the actions (what changed)."""
    actions = []
    current = link_info(name)
    if current is not None and current['kind'] != 'bridge':
        raise NetworkError('create', 'bridge %s' % name, 'a link of that name exists and is a %s, not a bridge' % (current['kind'] or 'device'))
    if current is None:
        actions.append('created bridge %s' % name)
    if current is None or gateway_cidr not in current['addresses']:
        actions.append('added address %s to %s' % (gateway_cidr, name))
    if current is None or not current['up']:
        actions.append('set %s up' % name)
    if check_mode or not actions:
        return actions
    address, prefix = gateway_cidr.split('/')
    with _iproute() as ipr:
        try:
            if current is None:
                ipr.link('add', ifname=name, kind='bridge')
            idx = _index(ipr, name)
            if current is None or gateway_cidr not in current['addresses']:
                ipr.addr('add', index=idx, address=address, prefixlen=int(prefix))
            ipr.link('set', index=idx, state='up')
        except Exception as exc:  # pyroute2's NetlinkError and friends
            raise _netlink_error('set up', 'bridge %s' % name, exc) from None
    return actions


def remove_link(name):
    """Delete link ``name`` (a veth takes its peer along); True when there was one."""
    with _iproute() as ipr:
        idx = _index(ipr, name)
        if idx is None:
            return False
        try:
            ipr.link('del', index=idx)
        except Exception as exc:  # pylint: disable=broad-except
            if getattr(exc, 'code', None) == errno.ENODEV:
                return False
            raise _netlink_error('remove', 'link %s' % name, exc) from None
    return True


def links_with_prefix(prefix):
    """Names of the links in this namespace that start with ``prefix`` (our veths: left-overs are found by name)."""
    with _iproute() as ipr:
        return sorted(link.get_attr('IFLA_IFNAME') for link in ipr.get_links() if (link.get_attr('IFLA_IFNAME') or '').startswith(prefix))


def routes_overlapping(subnet, except_dev=None):
    """Routes of the host's main table that overlap ``subnet`` (other than through ``except_dev``): [(dst, dev)]."""
    net = ipaddress.ip_network(subnet)
    out = []
    with _iproute() as ipr:
        names = {link['index']: link.get_attr('IFLA_IFNAME') for link in ipr.get_links()}
        for route in ipr.get_routes(family=2, table=254):
            dst = route.get_attr('RTA_DST')
            if dst is None:
                continue  # the default route overlaps everything; it is not a conflict
            other = ipaddress.ip_network('%s/%d' % (dst, route['dst_len']), strict=False)
            dev = names.get(route.get_attr('RTA_OIF'))
            if other.overlaps(net) and dev != except_dev:
                out.append((str(other), dev))
    return out


def mac_for(address):
    """The MAC of a container's interface with IPv4 ``address``: 02:42 and the address's four bytes (Docker's scheme
    until moby#48808). The same address always gets the same MAC, so a peer's neighbour entry for it stays right
    when a container is recreated with its address; addresses are unique on a bridge, so are these MACs."""
    packed = ipaddress.IPv4Address(address).packed
    return ':'.join('%02x' % b for b in MAC_PREFIX + tuple(packed))


def attach(netns_path, host_name, bridge, address_cidr, gateway, mtu=None, inside_name=PEER_NAME, mac=None):
    """A veth pair: ``host_name`` on ``bridge`` (up), its peer in the namespace at ``netns_path`` as ``inside_name``
    with ``address_cidr`` and ``mac`` (None: the kernel's random one), up, a default route through ``gateway``
    (None: no route out), ``lo`` up; then the address is announced on the bridge (``announce``).
    Undoes itself when a step fails."""
    peer_tmp = 'p' + host_name[1:]  # unique like the host name, renamed eth0 once inside
    with _iproute() as ipr:
        br = _index(ipr, bridge)
        if br is None:
            raise NetworkError('attach', 'a container to bridge %s' % bridge, 'the bridge does not exist')
        try:
            ipr.link('add', ifname=host_name, kind='veth', peer=peer_tmp)
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                ipr.link('set', index=_index(ipr, peer_tmp), net_ns_fd=fd)
            finally:
                os.close(fd)
            idx = _index(ipr, host_name)
            kwargs = {'mtu': mtu} if mtu else {}
            ipr.link('set', index=idx, master=br, state='up', **kwargs)
        except Exception as exc:  # pylint: disable=broad-except
            for name in (host_name, peer_tmp):
                idx = _index(ipr, name)
                if idx is not None:
                    try:
                        ipr.link('del', index=idx)
                    except Exception:  # pylint: disable=broad-except
                        pass
            raise _netlink_error('create', 'veth pair %s' % host_name, exc) from None
    try:
        run_in({'net': netns_path}, _configure_inside, peer_tmp, address_cidr, gateway, mtu, inside_name, mac)
        with _iproute() as ipr:
            port_forwarding(ipr, host_name)
        run_in({'net': netns_path}, announce, inside_name, address_cidr.split('/')[0])
    except BaseException:
        remove_link(host_name)
        raise


def _configure_inside(peer_tmp, address_cidr, gateway, mtu, inside_name, mac=None):  # runs in a child inside the container's netns
    address, prefix = address_cidr.split('/')
    with _iproute() as ipr:
        idx = _index(ipr, peer_tmp)
        if idx is None:
            raise NetworkError('configure', 'the container\'s interface', 'no link %s in its namespace' % peer_tmp)
        kwargs = {'mtu': mtu} if mtu else {}
        if mac:
            kwargs['address'] = mac  # set while the link is down
        ipr.link('set', index=idx, ifname=inside_name, **kwargs)
        ipr.addr('add', index=idx, address=address, prefixlen=int(prefix))
        ipr.link('set', index=idx, state='up')
        lo = _index(ipr, 'lo')
        if lo is not None:
            ipr.link('set', index=lo, state='up')
        if gateway:
            ipr.route('add', dst='0.0.0.0/0', gateway=gateway)
    return True


def port_state(ipr, index):
    """The bridge port state of link ``index`` (3: forwarding), None when it is no bridge port."""
    link = ipr.link('get', index=index)[0]
    info = link.get_attr('IFLA_LINKINFO')
    data = info.get_attr('IFLA_INFO_SLAVE_DATA') if info else None
    return data.get_attr('IFLA_BRPORT_STATE') if data else None


def port_forwarding(ipr, port, timeout=1.0):
    """Wait until bridge port ``port`` forwards (True), at most ``timeout`` seconds (False: an STP bridge may take
    its forward delay, 15 s; the start does not wait for it). A bridge port is disabled until its carrier comes,
    which the kernel reports a moment after the container's end is up (linkwatch, asynchronously): a frame sent
    from the container before then is dropped at the bridge. Asked through netlink, not sysfs: /sys shows the
    links of the namespace it was mounted in, which need not be this process's."""
    deadline = time.monotonic() + timeout
    while True:
        idx = _index(ipr, port)
        if idx is not None and port_state(ipr, idx) == BR_STATE_FORWARDING:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.001)


def garp_frame(mac, address):
    """A gratuitous ARP request as the kernel's arp_notify and ``arping -U`` send it: broadcast, sender and target
    address both ``address``, target MAC zero (RFC 5227). A Linux peer that holds an entry for ``address`` takes
    the sender MAC at once (a gratuitous ARP overrides the entry's lock time; arp_accept only matters for
    making new entries, which is not needed)."""
    hw = bytes(int(x, 16) for x in mac.split(':')) if isinstance(mac, str) else bytes(mac)
    ip = ipaddress.IPv4Address(address).packed
    return b'\xff' * 6 + hw + struct.pack('!H', ETH_P_ARP) + struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + hw + ip + b'\0' * 6 + ip


def announce(ifname, address):  # runs in a child inside the container's netns
    """Send a gratuitous ARP for ``address`` from ``ifname`` (up, with its address), with the interface's own MAC:
    the neighbour entries of the peers on the bridge (and the host's) take the new MAC at once, whatever it is
    (a derived one, a user's, a random one of a container made before the derived ones).

    By hand on a packet socket rather than through net.ipv4.conf.<if>.arp_notify=1: the kernel sends that one
    while bringing the link up, before the bridge port forwards, and the bridge drops it (measured: 0 of 15
    peers updated; moby#49364 found the same and waits for the port state, as ``attach`` does here)."""
    try:
        with socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as sock:  # protocol 0: sends, receives nothing
            sock.bind((ifname, 0))
            sock.send(garp_frame(sock.getsockname()[4], address))
    except OSError as exc:
        raise NetworkError.from_oserror('announce', 'address %s on %s (gratuitous ARP)' % (address, ifname), exc) from None
    return True


def read_sysctl(name):
    try:
        with open('/proc/sys/' + name.replace('.', '/')) as f:
            return f.read().strip()
    except OSError:
        return None


def write_sysctl(name, value):
    path = '/proc/sys/' + name.replace('.', '/')
    try:
        with open(path, 'w') as f:
            f.write(str(value))
    except OSError as exc:
        raise NetworkError.from_oserror('set', 'sysctl %s' % name, exc) from None
