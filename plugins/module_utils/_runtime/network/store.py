# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Networks and their address leases under the data-root (DESIGN D3).

``<data_root>/networks/<name>.json``  a network: name, id, driver, bridge, subnet, gateway, internal, labels
``<data_root>/networks/.lock``        every change of networks and leases (lock order: ... container -> network)
``<data_root>/ipam/<name>.json``      leases: {address: container id}
``<state_dir>/containers/<id>/network.json``  a running container's attachment (network, address, veth,
                                      ports), written under the network lock together with its lease
``<data_root>/containers/<id>/network.json``   its copy: a state dir lost while containers run (removed, a
                                      tmpfs emptied) is rebuilt from it for those whose init still runs

A lease is valid while the attachment file of its container names it: a crash between the
lease and the start leaves a lease that the next allocation drops (the state dir is a tmpfs:
after a reboot no lease is valid, and no container runs). An address is never handed out twice.
"""
from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import re

from ..errors import ConfigError
from ..kernel.fsutil import locked, read_json, write_json
from ..kernel.namespaces import Holder
from .links import NetworkError

SCHEMA = 1
NAME_RE = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z')
DRIVERS = ('bridge',)


def validate_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ConfigError('use', 'network name %r' % (name,), 'names are 1-63 of [A-Za-z0-9_.-], starting with a letter or digit')
    if name in ('none', 'host', 'bridge', 'default'):
        raise ConfigError('use', 'network name %r' % name, 'that name is a network_mode')
    return name


def bridge_name(name, default_name):
    """The default network's bridge is named as the network (nsbox0); others nsbr-<10 hex of the name's hash>."""
    if name == default_name:
        return name[:15]
    return 'nsbr-' + hashlib.sha256(name.encode()).hexdigest()[:10]


def parse(name, subnet, gateway=None, internal=False, labels=None, driver='bridge', default_name='nsbox0'):
    """A network definition from the module's options, checked."""
    validate_name(name)
    if driver not in DRIVERS:
        raise ConfigError('use', 'network driver %r' % (driver,), 'this version has %s' % ', '.join(DRIVERS))
    try:
        net = ipaddress.ip_network(str(subnet), strict=True)
    except ValueError as exc:
        raise ConfigError('use', 'subnet %r' % (subnet,), '%s (e.g. 10.78.0.0/24)' % exc) from None
    if net.version != 4:
        raise ConfigError('use', 'subnet %s' % subnet, 'IPv6 networks are not supported yet')
    if net.prefixlen > 29:
        raise ConfigError('use', 'subnet %s' % subnet, 'too small: at most /29 (a gateway and containers need room)')
    if gateway is None:
        gw = net.network_address + 1
    else:
        try:
            gw = ipaddress.ip_address(str(gateway))
        except ValueError as exc:
            raise ConfigError('use', 'gateway %r' % (gateway,), str(exc)) from None
        if gw not in net or gw in (net.network_address, net.broadcast_address):
            raise ConfigError('use', 'gateway %s' % gw, 'not a host address of subnet %s' % net)
    return {'schema_version': SCHEMA, 'name': name, 'id': hashlib.sha256(('nsbox-network:' + name).encode()).hexdigest(),
            'driver': driver, 'bridge': bridge_name(name, default_name), 'subnet': str(net), 'gateway': str(gw),
            'internal': bool(internal), 'labels': {str(k): str(v) for k, v in (labels or {}).items()}}


class NetworkStore:
    """The networks of one data-root and their leases."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.root = os.path.join(cfg.data_root, 'networks')
        self.ipam_root = os.path.join(cfg.data_root, 'ipam')
        self.run_root = os.path.join(cfg.state_dir, 'containers')
        self.containers_root = os.path.join(cfg.data_root, 'containers')
        self.default = dict(cfg['default_network'])

    @contextlib.contextmanager
    def lock(self):
        os.makedirs(self.root, 0o700, exist_ok=True)
        with locked(os.path.join(self.root, '.lock')):
            yield

    def path(self, name):
        return os.path.join(self.root, name + '.json')

    def get(self, name):
        return read_json(self.path(validate_name(name)), 'network %s' % name, SCHEMA)

    def all(self):
        try:
            names = sorted(n[:-5] for n in os.listdir(self.root) if n.endswith('.json') and not n.startswith('.'))
        except FileNotFoundError:
            return []
        return [n for n in (self.get(name) for name in names) if n]

    def save(self, net):
        os.makedirs(self.root, 0o700, exist_ok=True)
        write_json(self.path(net['name']), net, 0o644)

    def delete(self, name):
        for path in (self.path(name), os.path.join(self.ipam_root, name + '.json'), os.path.join(self.ipam_root, name + '.json.spare')):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def default_definition(self):
        return parse(self.default['name'], self.default['subnet'], default_name=self.default['name'])

    # -- attachments and leases ----------------------------------------------------------------
    def attachment_path(self, cid):
        return os.path.join(self.run_root, cid, 'network.json')

    def kept_path(self, cid):
        return os.path.join(self.containers_root, cid, 'network.json')

    def attachment(self, cid):
        att = read_json(self.attachment_path(cid), 'the network attachment of container %s' % cid[:12], SCHEMA)
        return att if att is not None else self._recovered(cid)

    def _recovered(self, cid):
        """The data-root's copy of a running container's attachment, where the state dir lost its own (removed, or a
        tmpfs emptied while containers ran): put back, so its address stays leased and its ports published."""
        kept = read_json(self.kept_path(cid), 'the network attachment of container %s' % cid[:12], SCHEMA)
        if kept is None or not self._runs(cid):
            return None
        self.record(cid, kept)
        return kept

    def _runs(self, cid):
        """Whether container ``cid``'s init runs: the pid its state.json records, with that start time, this boot."""
        state = read_json(os.path.join(self.containers_root, cid, 'state.json'), 'the state of container %s' % cid[:12], 1) or {}
        if state.get('status') != 'running' or not state.get('pid'):
            return False
        return Holder(state['pid'], state.get('pid_start'), state.get('boot_id')).alive()

    def attachments(self):
        out = {}
        seen = set()
        for root in (self.run_root, self.containers_root):
            try:
                seen.update(cid for cid in os.listdir(root) if len(cid) == 64)
            except FileNotFoundError:
                pass
        for cid in sorted(seen):
            att = self.attachment(cid)
            if att:
                out[cid] = att
        return out

    def leases(self, name):
        """The valid leases of network ``name``: {address: container id} (stale ones left out)."""
        data = read_json(os.path.join(self.ipam_root, name + '.json'), 'the leases of network %s' % name, SCHEMA) or {}
        valid = {}
        for address, cid in (data.get('leases') or {}).items():
            att = self.attachment(cid) if isinstance(cid, str) and len(cid) == 64 else None
            if att and any(e['network'] == name and e['address'] == address for e in att.get('endpoints') or ()):
                valid[address] = cid
        return valid

    def _write_leases(self, name, leases):
        os.makedirs(self.ipam_root, 0o700, exist_ok=True)
        write_json(os.path.join(self.ipam_root, name + '.json'), {'schema_version': SCHEMA, 'leases': dict(sorted(leases.items()))}, 0o600,
                   spare=True)  # a release (a stop, a removal) writes here on a full disk too

    def allocate(self, net, cid, wanted=None):
        """An address of ``net`` for container ``cid`` (call under lock(), then record the attachment before releasing it):
        ``wanted`` when free, else the lowest free one."""
        leases = self.leases(net['name'])
        subnet = ipaddress.ip_network(net['subnet'])
        taken = {ipaddress.ip_address(a) for a, owner in leases.items() if owner != cid} | {ipaddress.ip_address(net['gateway'])}
        if wanted is not None:
            address = ipaddress.ip_address(wanted)
            if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
                raise ConfigError('use', 'ipv4_address %s' % wanted, 'not a host address of network %s (%s)' % (net['name'], subnet))
            if address in taken:
                owner = leases.get(str(address))
                raise NetworkError('allocate', 'address %s on network %s' % (wanted, net['name']),
                                   'it is taken (%s)' % ('the gateway' if owner is None else 'by container %s' % owner[:12]))
        else:
            address = next((a for a in subnet.hosts() if a not in taken), None)
            if address is None:
                raise NetworkError('allocate', 'an address on network %s' % net['name'], 'all of %s are taken' % subnet)
        leases = {a: o for a, o in leases.items() if o != cid}
        leases[str(address)] = cid
        self._write_leases(net['name'], leases)
        return str(address)

    def record(self, cid, attachment):
        """The attachment in the state dir, and a copy beside the container's record in the data-root (what the state
        dir loses while the container runs is recovered from it: :meth:`attachment`)."""
        os.makedirs(os.path.dirname(self.attachment_path(cid)), 0o700, exist_ok=True)
        write_json(self.attachment_path(cid), dict(attachment, schema_version=SCHEMA), 0o600)
        if os.path.isdir(os.path.dirname(self.kept_path(cid))):
            write_json(self.kept_path(cid), dict(attachment, schema_version=SCHEMA), 0o600)

    def release(self, cid):
        """Drop the attachment record of ``cid`` (its leases go with it) and its leases; returns the record it had."""
        att = self.attachment(cid)
        for path in (self.attachment_path(cid), self.kept_path(cid)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for endpoint in (att or {}).get('endpoints') or ():
            leases = self.leases(endpoint['network'])
            if endpoint['address'] in leases:
                del leases[endpoint['address']]
            self._write_leases(endpoint['network'], leases)
        return att

    def users(self, name):
        """Containers with an endpoint on network ``name`` now, and those whose config names it."""
        return sorted(cid for cid, att in self.attachments().items() if any(e['network'] == name for e in att.get('endpoints') or ()))
