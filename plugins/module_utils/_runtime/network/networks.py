# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bridge networks: the ``network`` and ``network_info`` modules' logic, and a container's attachment.

A network is a Linux bridge holding the gateway address, masquerading (unless ``internal``)
and forwarding rules in nsbox's nftables table. A container on it gets a veth pair: one end
on the bridge, the other as eth0 in the container's own network namespace (made before its
init, ``netns.py``), an address leased under the network lock, a default route through the
first network's gateway. Published ports are DNAT rules to it. Containers on the same
user-defined network find each other by name through their /etc/hosts (rewritten in place,
as the file is bind-mounted, whenever a container joins or leaves); the default network, as
Docker's, has no names.
"""
from __future__ import annotations

import ipaddress
import os
import socket
import time

from ..errors import ConfigError
from . import links, netns, nft
from .links import NetworkError
from .etc_files import hosts_text, peers_of
from .store import NetworkStore, parse
from ..kernel.fsutil import read_json, write_json

VETH_PREFIX = 'nsv'


def veth_name(cid, index):
    return '%s%s%d' % (VETH_PREFIX, cid[:11], index)  # 15 characters, the most a link name has


def _sysctl_state_path(cfg):
    return os.path.join(cfg.data_root, 'networks', '.host-sysctls.json')


def _ensure_forwarding(cfg, check_mode=False):
    """net.ipv4.ip_forward=1 (needed by any non-internal network); its value before is recorded once."""
    if links.read_sysctl('net.ipv4.ip_forward') == '1':
        return []
    if not check_mode:
        path = _sysctl_state_path(cfg)
        before = read_json(path, 'the host sysctls nsbox changed', 1) or {'schema_version': 1, 'before': {}}
        before['before'].setdefault('net.ipv4.ip_forward', links.read_sysctl('net.ipv4.ip_forward'))
        write_json(path, before, 0o644)
        links.write_sysctl('net.ipv4.ip_forward', '1')
    return ['set net.ipv4.ip_forward=1']


def _restore_forwarding(cfg):
    """The last network is gone: net.ipv4.ip_forward back to what it was before nsbox set it."""
    path = _sysctl_state_path(cfg)
    before = (read_json(path, 'the host sysctls nsbox changed', 1) or {}).get('before') or {}
    actions = []
    for name, value in sorted(before.items()):
        if value is not None and links.read_sysctl(name) != value:
            links.write_sysctl(name, value)
            actions.append('set %s=%s (as before nsbox)' % (name, value))
    if os.path.exists(path):
        os.unlink(path)
    return actions


def _route_localnet(bridge):
    """Published on 127.0.0.1: DNAT'ed packets leave through the bridge with a loopback source."""
    name = 'net.ipv4.conf.%s.route_localnet' % bridge
    if links.read_sysctl(name) != '1':
        links.write_sysctl(name, '1')
        return ['set %s=1' % name]
    return []


def _sync_firewall(cfg, store, check_mode=False):
    networks = store.all()
    ports = []
    for cid, att in store.attachments().items():
        address = att['endpoints'][0]['address'] if att.get('endpoints') else None
        for port in att.get('ports') or ():
            ports.append(dict(port, container=cid, ip=address))
    if not networks:
        if not check_mode:
            nft.remove(cfg.state_dir)
        return []
    return ['updated nftables table inet nsbox'] if nft.sync(networks, ports, cfg.state_dir, check_mode) else []


def _check_overlap(store, net):
    subnet = ipaddress.ip_network(net['subnet'])
    for other in store.all():
        if other['name'] != net['name'] and ipaddress.ip_network(other['subnet']).overlaps(subnet):
            raise NetworkError('create', 'network %s (%s)' % (net['name'], net['subnet']),
                               'it overlaps network %s (%s)' % (other['name'], other['subnet']))
    clash = links.routes_overlapping(net['subnet'], except_dev=net['bridge'])
    if clash:
        raise NetworkError('create', 'network %s (%s)' % (net['name'], net['subnet']),
                           'it overlaps the host\'s route to %s (dev %s): choose another subnet' % clash[0])


def _bring_up(cfg, store, net, check_mode):
    actions = links.ensure_bridge(net['bridge'], '%s/%d' % (net['gateway'], ipaddress.ip_network(net['subnet']).prefixlen), check_mode)
    if not net['internal']:
        actions += _ensure_forwarding(cfg, check_mode)
    return actions


def _warnings():
    blockers = nft.forward_blockers()
    if not blockers:
        return []
    return ['forwarded traffic may be dropped by %s (a forward chain with policy drop: firewalld, ufw or Docker\'s '
            'iptables); every table must accept it, so allow the nsbox bridges there' % ', '.join(blockers)]


def view(store, net):
    out = {k: net[k] for k in ('name', 'id', 'driver', 'bridge', 'subnet', 'gateway', 'internal', 'labels')}
    out['containers'] = store.users(net['name'])
    return out


def ensure(cfg, name, subnet=None, gateway=None, internal=False, labels=None, driver='bridge', state='present', check_mode=False):
    """Converge network ``name``: {'changed', 'actions', 'network', 'diff', 'warnings'}."""
    store = NetworkStore(cfg)
    default_name = store.default['name']
    if state not in ('present', 'absent'):
        raise ConfigError('use', 'state %r' % (state,), 'expected present or absent')
    if state == 'present':
        if subnet is None:
            if name != default_name:
                raise ConfigError('use', 'network %s' % name, 'give subnet (e.g. 10.78.0.0/24)')
            subnet = store.default['subnet']
        wanted = parse(name, subnet, gateway, internal, labels, driver, default_name)
    with store.lock():
        current = store.get(name)
        before = dict(view(store, current), exists=True) if current else {'exists': False}
        if state == 'absent':
            if current is None:
                return {'changed': False, 'actions': [], 'network': None, 'diff': {'before': before, 'after': {'exists': False}}, 'warnings': []}
            users = store.users(name)
            if users:
                raise NetworkError('remove', 'network %s' % name, 'containers are attached to it: %s (remove or stop them first)'
                                   % ', '.join(u[:12] for u in users))
            actions = ['removed network %s' % name, 'removed bridge %s' % current['bridge']]
            if not check_mode:
                store.delete(name)
                links.remove_link(current['bridge'])
                _sync_firewall(cfg, store)
                if not store.all():
                    actions += _restore_forwarding(cfg)
            return {'changed': True, 'actions': actions, 'network': None, 'diff': {'before': before, 'after': {'exists': False}},
                    'warnings': []}
        actions = []
        if current is None:
            _check_overlap(store, wanted)
            actions.append('created network %s (%s)' % (name, wanted['subnet']))
        else:
            changed = [k for k in ('driver', 'subnet', 'gateway', 'internal') if current.get(k) != wanted[k]]
            if changed:
                users = store.users(name)
                if users:
                    raise NetworkError('change', 'network %s (%s)' % (name, ', '.join(changed)),
                                       'containers are attached to it: %s (stop them first)' % ', '.join(u[:12] for u in users))
                _check_overlap(store, wanted)
                actions.append('recreated network %s (%s)' % (name, ', '.join(changed)))
            elif current.get('labels') != wanted['labels']:
                actions.append('updated labels of network %s' % name)
        if not check_mode and actions:
            if current is not None and current['bridge'] == wanted['bridge'] and current['subnet'] != wanted['subnet']:
                links.remove_link(current['bridge'])  # its old gateway address goes with it
            store.save(wanted)
        actions += _bring_up(cfg, store, wanted, check_mode)
        actions += _sync_firewall(cfg, store, check_mode)
        after = dict(view(store, wanted), exists=True)
        return {'changed': bool(actions), 'actions': actions, 'network': after, 'diff': {'before': before, 'after': after},
                'warnings': _warnings() if not wanted['internal'] else []}


def info(cfg, names=None):
    store = NetworkStore(cfg)
    found = store.all() if not names else [n for n in (store.get(x) for x in names) if n]
    return {'networks': [view(store, n) for n in found], 'missing': [x for x in (names or []) if store.get(x) is None]}


def prune(cfg, *, refs):
    """Remove the networks no container uses (attached, or named in a container's config); the host's
    default network stays (it is made again on first use anyway). The names removed."""
    store = NetworkStore(cfg)
    named = refs.networks()
    gone = []
    for net in store.all():
        if net['name'] == store.default['name'] or net['name'] in named or store.users(net['name']):
            continue
        if ensure(cfg, net['name'], state='absent')['changed']:
            gone.append(net['name'])
    return gone


# -- containers ---------------------------------------------------------------------------------
def check_ports_free(store, cid, ports):
    """Published ports not taken by another container nor by a socket of the host (a bind test, released at once)."""
    for other, att in store.attachments().items():
        if other == cid:
            continue
        for theirs in att.get('ports') or ():
            for mine in ports:
                if (mine['host_port'], mine['protocol']) == (theirs['host_port'], theirs['protocol']) and \
                        (mine['host_ip'] in (None, '0.0.0.0') or theirs['host_ip'] in (None, '0.0.0.0') or mine['host_ip'] == theirs['host_ip']):
                    raise NetworkError('publish', 'port %s:%d/%s' % (mine['host_ip'] or '0.0.0.0', mine['host_port'], mine['protocol']),
                                       'container %s publishes it already' % att.get('name', other[:12]))
    for mine in ports:
        kind = socket.SOCK_STREAM if mine['protocol'] == 'tcp' else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((mine['host_ip'] or '0.0.0.0', mine['host_port']))
            except OSError as exc:
                raise NetworkError('publish', 'port %s:%d/%s' % (mine['host_ip'] or '0.0.0.0', mine['host_port'], mine['protocol']),
                                   'a process of the host uses it (%s)' % (exc.strerror or exc)) from None


def attach(cfg, container, netns_path, containers):
    """Connect a starting container's network namespace to its networks; returns its attachment record.
    Anything left by an earlier start (a crash) is removed first; a failure undoes what was done.
    ``containers``: as for ``refresh_hosts``."""
    store = NetworkStore(cfg)
    config = container.config
    with store.lock():
        _detach_locked(cfg, store, container.id)
        for orphan in [cid for cid in store.attachments() if not os.path.isdir(os.path.join(cfg.data_root, 'containers', cid))]:
            _detach_locked(cfg, store, orphan, os.path.join(store.run_root, orphan, 'netns'))  # its container is gone (a crash)
        endpoints, actions = [], []
        try:
            for index, want in enumerate(config.get('networks') or ()):
                net = store.get(want['name'])
                if net is None and want['name'] == store.default['name']:
                    net = store.default_definition()  # the default network comes into being on first use
                    _check_overlap(store, net)
                    store.save(net)
                if net is None:
                    raise NetworkError('attach', 'container %s to network %s' % (config['name'], want['name']),
                                       'no such network (create it with nsbox.runtime.network)')
                address = store.allocate(net, container.id, want.get('ipv4_address'))
                endpoints.append({'network': net['name'], 'address': address, 'prefixlen': ipaddress.ip_network(net['subnet']).prefixlen,
                                  'mac': want.get('mac_address') or links.mac_for(address),  # mac_address: not an option yet
                                  'gateway': net['gateway'], 'bridge': net['bridge'], 'veth': veth_name(container.id, index),
                                  'aliases': list(want.get('aliases') or []), 'default_names': net['name'] != store.default['name']})
                store.record(container.id, {'name': config['name'], 'endpoints': endpoints, 'ports': [], 'netns': netns_path})
                actions += _bring_up(cfg, store, net, False)
            ports = list(config.get('published_ports') or ())
            check_ports_free(store, container.id, ports)
            record = {'name': config['name'], 'endpoints': endpoints, 'ports': ports, 'netns': netns_path}
            store.record(container.id, record)
            for index, ep in enumerate(endpoints):
                net = store.get(ep['network'])
                links.attach(netns_path, ep['veth'], ep['bridge'], '%s/%d' % (ep['address'], ep['prefixlen']),
                             ep['gateway'] if index == 0 and not net['internal'] else None, inside_name='eth%d' % index, mac=ep['mac'])
            if any(p['host_ip'] in (None, '0.0.0.0', '127.0.0.1') for p in ports) and endpoints:
                _route_localnet(endpoints[0]['bridge'])
            if ports or actions or not os.path.exists(os.path.join(cfg.state_dir, 'nftables.sha256')):
                _sync_firewall(cfg, store)  # else the table holds what it must already (nothing of this container)
        except BaseException:
            _detach_locked(cfg, store, container.id)
            raise
    refresh_hosts(cfg, containers, store, exclude=container.id)
    return record


def _has_link(name, net_dev='/proc/self/net/dev'):
    """Whether link ``name`` is in this process's network namespace. /proc/self/net is this process's namespace;
    /sys/class/net is the one sysfs was mounted in, which need not be (a mount namespace made apart from it)."""
    with open(net_dev) as f:
        return any(line.split(':', 1)[0].strip() == name for line in f.readlines()[2:])


def _gone(name, timeout):
    """Whether link ``name`` left this namespace (no netlink needed) within ``timeout`` seconds. The old veth must be
    gone before a new container takes its address: the new one has the same MAC (``links.mac_for``)."""
    deadline = time.monotonic() + timeout
    while _has_link(name):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.005)
    return True


def _detach_locked(cfg, store, cid, netns_path=None):
    """Take the container's links, record, leases and rules away: a failure keeps the record (the next
    teardown tries again). With the container's namespace unmounted first, its veths go with it (the
    kernel removes a pair when its namespace ends): netlink is needed only for what lingers."""
    att = store.attachment(cid)
    if att is None:
        return None
    if netns_path:
        netns.remove(netns_path)
    for ep in att.get('endpoints') or ():
        if not _gone(ep['veth'], 1.0 if netns_path else 0):
            links.remove_link(ep['veth'])
    store.release(cid)
    if att.get('ports'):
        _sync_firewall(cfg, store)
    return att


def detach(cfg, cid, containers, netns_path=None):
    """Take a container off its networks (its veths, leases, ports); safe to repeat. Returns whether it had an
    attachment. ``netns_path``: the container's persisted namespace, removed first (its init has ended)."""
    store = NetworkStore(cfg)
    if not store.attachment(cid):
        return False
    with store.lock():
        att = _detach_locked(cfg, store, cid, netns_path)
    if att:
        refresh_hosts(cfg, containers, store)
    return bool(att)


# -- /etc/hosts of the attached containers ---------------------------------------------------------
def refresh_hosts(cfg, containers, store=None, exclude=None):
    """Rewrite the /etc/hosts of every attached container in place (the file is bind-mounted: the inode stays).

    ``containers``: a function giving {id: container} (``config`` and ``path('hosts')``), called once: the
    container room reads its store, this room never imports it."""
    store = store or NetworkStore(cfg)
    attachments = store.attachments()
    containers = containers()  # one read of the store, not one per attachment
    for cid, att in attachments.items():
        if cid == exclude:
            continue
        container = containers.get(cid)
        if container is None:
            continue
        text = hosts_text(container.config, container.config.get('hostname') or cid[:12], att, peers_of(store, cid, att, attachments))
        try:
            with open(container.path('hosts'), 'r+') as f:
                if f.read() != text:
                    f.seek(0)
                    f.write(text)
                    f.truncate()
        except OSError:
            continue
