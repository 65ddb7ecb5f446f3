# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""NAT and published ports in an nftables table of nsbox's own, ``inet nsbox``, through libnftables'
JSON API (python3-nftables). No other table is ever touched.

The table is generated whole from what the data-root says (networks, running containers'
ports) and replaced in one transaction (add, delete, add again, chains, rules: atomic, so no
packet sees half a ruleset). A hash of what was written is kept in the state dir: when it
matches and the table is there with as many rules, nothing is written (an unchanged converge
touches no rule). Chains:

- ``postrouting`` (nat): masquerade what leaves a non-internal network's subnet through another
  interface; and what was sent from 127.0.0.0/8 to a published port (route_localnet).
- ``prerouting`` and ``output`` (nat): packets for a local address go to ``ports``, which DNATs
  each published port to its container.
- ``forward`` (filter): replies; a non-internal bridge's outgoing traffic and DNAT'ed incoming
  traffic; traffic inside a bridge; everything else in or out of an internal bridge dropped.
"""
from __future__ import annotations

import hashlib
import json
import os

from ..errors import NsboxError
from ..kernel.fsutil import atomic_write

FAMILY, TABLE = 'inet', 'nsbox'


class FirewallError(NsboxError):
    """nftables refused something, or is not usable here."""


def _nft():
    try:
        # Imported here: an optional system binding (python3-nftables), needed only to publish ports and NAT.
        import nftables  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise FirewallError('use', 'nftables', 'the Python binding of libnftables is missing (Debian: python3-nftables; '
                                               'the host role installs it)') from None
    nft = nftables.Nftables()
    nft.set_json_output(True)
    nft.set_handle_output(False)
    return nft


def _run(nft, cmds, what):
    rc, out, err = nft.json_cmd({'nftables': cmds})
    if rc != 0:
        raise FirewallError('apply', what, (err or 'nft failed (rc %d)' % rc).strip())
    return out


# -- expressions --------------------------------------------------------------------------------
def _match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def _meta(key):
    return {'meta': {'key': key}}


def _payload(protocol, field):
    return {'payload': {'protocol': protocol, 'field': field}}


def _prefix(cidr):
    addr, length = cidr.split('/')
    return {'prefix': {'addr': addr, 'len': int(length)}}


def _rule(chain, expr, comment):
    return {'add': {'rule': {'family': FAMILY, 'table': TABLE, 'chain': chain, 'expr': expr, 'comment': comment[:128]}}}


def ruleset(networks, ports):
    """The table's commands. ``networks``: [{name, bridge, subnet, internal}]; ``ports``: [{container, ip,
    host_ip, host_port, container_port, protocol}] (running containers' published ports)."""
    cmds = [{'add': {'table': {'family': FAMILY, 'name': TABLE}}}]
    for name, kind, hook, prio in (('postrouting', 'nat', 'postrouting', 100), ('prerouting', 'nat', 'prerouting', -100),
                                   ('output', 'nat', 'output', -100), ('forward', 'filter', 'forward', 0)):
        cmds.append({'add': {'chain': {'family': FAMILY, 'table': TABLE, 'name': name, 'type': kind, 'hook': hook,
                                       'prio': prio, 'policy': 'accept'}}})
    cmds.append({'add': {'chain': {'family': FAMILY, 'table': TABLE, 'name': 'ports'}}})
    local = _match({'fib': {'result': 'type', 'flags': ['daddr']}}, 'local')
    cmds.append(_rule('prerouting', [local, {'jump': {'target': 'ports'}}], 'published ports'))
    cmds.append(_rule('output', [local, {'jump': {'target': 'ports'}}], 'published ports, from the host'))
    cmds.append(_rule('forward', [_match({'ct': {'key': 'state'}}, ['established', 'related'], op='in'), {'accept': None}], 'replies'))
    for net in sorted(networks, key=lambda n: n['name']):
        br, tag = net['bridge'], 'network %s' % net['name']
        cmds.append(_rule('forward', [_match(_meta('iifname'), br), _match(_meta('oifname'), br), {'accept': None}], tag))
        if net.get('internal'):
            cmds.append(_rule('forward', [_match(_meta('iifname'), br), {'drop': None}], tag + ' (internal)'))
            cmds.append(_rule('forward', [_match(_meta('oifname'), br), {'drop': None}], tag + ' (internal)'))
            continue
        cmds.append(_rule('postrouting', [_match(_payload('ip', 'saddr'), _prefix(net['subnet'])),
                                          _match(_meta('oifname'), br, op='!='), {'masquerade': None}], tag))
        cmds.append(_rule('postrouting', [_match(_payload('ip', 'saddr'), _prefix('127.0.0.0/8')),
                                          _match(_meta('oifname'), br), {'masquerade': None}], tag + ' (published on loopback)'))
        cmds.append(_rule('forward', [_match(_meta('iifname'), br), {'accept': None}], tag))
        cmds.append(_rule('forward', [_match(_meta('oifname'), br), _match({'ct': {'key': 'status'}}, 'dnat', op='in'),
                                      {'accept': None}], tag + ' (published ports)'))
    for port in sorted(ports, key=lambda p: (p['host_port'], p['protocol'], p['host_ip'] or '', p['container'])):
        expr = [_match(_meta('nfproto'), 'ipv4')]
        if port['host_ip'] and port['host_ip'] != '0.0.0.0':
            expr.append(_match(_payload('ip', 'daddr'), port['host_ip']))
        expr.append(_match(_payload(port['protocol'], 'dport'), port['host_port']))
        expr.append({'dnat': {'family': 'ip', 'addr': port['ip'], 'port': port['container_port']}})
        comment = 'container %s %s:%d/%s' % (port['container'][:12], port['host_ip'] or '0.0.0.0', port['host_port'], port['protocol'])
        cmds.append(_rule('ports', expr, comment))
    return cmds


def _hash(cmds):
    return hashlib.sha256(json.dumps(cmds, sort_keys=True).encode()).hexdigest()


def _items(out):
    """The ``nftables`` list of a JSON answer (libnftables gives a dict, or text on older bindings)."""
    return (json.loads(out) if isinstance(out, str) else out).get('nftables', [])


def current_rule_count(nft=None):
    """Rules in our table, or None when there is no table."""
    nft = nft or _nft()
    rc, out, _err = nft.json_cmd({'nftables': [{'list': {'table': {'family': FAMILY, 'name': TABLE}}}]})
    if rc != 0:
        return None
    return sum(1 for item in _items(out) if 'rule' in item)


def sync(networks, ports, state_dir, check_mode=False):
    """Make the table what ``networks`` and ``ports`` say; returns True when it was (or would be) rewritten."""
    cmds = ruleset(networks, ports)
    digest = _hash(cmds)
    marker = os.path.join(state_dir, 'nftables.sha256')
    try:
        with open(marker) as f:
            recorded = f.read().strip()
    except OSError:
        recorded = None
    nft = _nft()
    want_rules = sum(1 for c in cmds if 'rule' in c['add'])
    if recorded == digest and current_rule_count(nft) == want_rules:
        return False
    if check_mode:
        return True
    table = {'family': FAMILY, 'name': TABLE}
    _run(nft, [{'add': {'table': dict(table)}}, {'delete': {'table': dict(table)}}] + cmds, 'the nftables table inet nsbox')
    os.makedirs(state_dir, 0o700, exist_ok=True)
    atomic_write(marker, (digest + '\n').encode(), 0o600)
    return True


def remove(state_dir):
    """Delete our table (when no network is left)."""
    nft = _nft()
    if current_rule_count(nft) is not None:
        table = {'family': FAMILY, 'name': TABLE}
        _run(nft, [{'delete': {'table': table}}], 'the nftables table inet nsbox')
    try:
        os.unlink(os.path.join(state_dir, 'nftables.sha256'))
    except FileNotFoundError:
        pass


def forward_blockers():
    """Other tables' forward chains that drop by default (firewalld, ufw, Docker's iptables): a packet must be
    accepted by every base chain on its hook, so ours accepting it is not enough. [(family table chain)]"""
    nft = _nft()
    rc, out, _err = nft.json_cmd({'nftables': [{'list': {'ruleset': None}}]})
    if rc != 0:
        return []
    found = []
    for item in _items(out):
        chain = item.get('chain')
        if chain and chain.get('hook') == 'forward' and chain.get('policy') == 'drop' and chain.get('table') != TABLE:
            found.append('%s %s %s' % (chain['family'], chain['table'], chain['name']))
    return found
