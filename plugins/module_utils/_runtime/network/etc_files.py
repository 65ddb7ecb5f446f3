# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's /etc/hosts and /etc/resolv.conf, as Docker writes them (no netlink here: every
container's start reads this, bridged or not)."""
from __future__ import annotations


def hosts_text(config, hostname, attachment=None, peers=()):
    """A container's /etc/hosts: localhost, its own address and hostname, extra_hosts, then (user networks) its peers."""
    lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback']
    endpoints = (attachment or {}).get('endpoints') or []
    if endpoints:
        lines.append('%s\t%s' % (endpoints[0]['address'], hostname))
    else:
        lines.append('127.0.1.1\t%s' % hostname)
    for host, address in sorted((config.get('extra_hosts') or {}).items()):
        lines.append('%s\t%s' % (address, host))
    for peer in peers:
        lines.append('%s\t%s' % (peer[0], ' '.join(peer[1:])))
    return '\n'.join(lines) + '\n'


def peers_of(store, cid, attachment=None, attachments=None):
    """(address, name, aliases...) of the other containers on ``cid``'s user-defined networks."""
    attachments = attachments if attachments is not None else store.attachments()
    mine = attachment or attachments.get(cid) or {}
    nets = {ep['network'] for ep in mine.get('endpoints') or () if ep.get('default_names')}
    out = []
    for other, att in sorted(attachments.items(), key=lambda kv: kv[1].get('name', '')):
        if other == cid:
            continue
        for ep in att.get('endpoints') or ():
            if ep['network'] in nets:
                out.append(tuple([ep['address'], att['name']] + list(ep.get('aliases') or [])))
    return out


def resolv_text(config, host_resolv):
    """``dns``/``dns_search``/``dns_options`` over the host's resolv.conf (loopback name servers dropped, as Docker)."""
    lines = host_resolv.splitlines()
    servers = [ln.split()[1] for ln in lines if ln.split()[:1] == ['nameserver'] and len(ln.split()) > 1
               and not (ln.split()[1].startswith('127.') or ln.split()[1] == '::1')]
    search = next((ln.split()[1:] for ln in lines if ln.split()[:1] in (['search'], ['domain'])), [])
    opts = next((ln.split()[1:] for ln in lines if ln.split()[:1] == ['options']), [])
    servers = list(config.get('dns') or servers)
    search = list(config.get('dns_search') or search)
    opts = list(config.get('dns_options') or opts)
    out = ['nameserver %s' % s for s in servers]
    if search:
        out.append('search %s' % ' '.join(search))
    if opts:
        out.append('options %s' % ' '.join(opts))
    return '\n'.join(out) + '\n'


def host_resolv_conf():
    try:
        with open('/etc/resolv.conf') as f:
            return f.read()
    except OSError:
        return ''
