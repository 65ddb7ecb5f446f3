# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's /etc/hosts and /etc/resolv.conf, as Docker writes them (no netlink here: every
container's start reads this, bridged or not)."""
from __future__ import annotations

import os


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


RESOLVED = '/run/systemd/resolve/resolv.conf'  # systemd-resolved's upstream servers (its stub 127.0.0.53 is /etc's)
FALLBACK_SERVERS = ('8.8.8.8', '8.8.4.4')  # Docker's, when the host names only servers the container cannot reach
SOURCE_MARK = '# nsbox: name servers from '


def resolv_text(config, host_resolv, source='/etc/resolv.conf', keep_loopback=False):
    """``dns``/``dns_search``/``dns_options`` over the host's resolv.conf, as Docker: loopback name servers dropped
    (a container of its own network namespace cannot reach them; ``keep_loopback`` with the host's), and where none
    is left, Docker's fallback servers. The first line says where the servers came from (``container_info``)."""
    lines = host_resolv.splitlines()
    servers = [ln.split()[1] for ln in lines if ln.split()[:1] == ['nameserver'] and len(ln.split()) > 1
               and (keep_loopback or not _loopback(ln.split()[1]))]
    search = next((ln.split()[1:] for ln in lines if ln.split()[:1] in (['search'], ['domain'])), [])
    opts = next((ln.split()[1:] for ln in lines if ln.split()[:1] == ['options']), [])
    if config.get('dns'):
        servers, source = list(config['dns']), 'the dns option'
    elif not servers:
        servers, source = list(FALLBACK_SERVERS), "Docker's fallback (%s names none the container can reach)" % source
    search = list(config.get('dns_search') or search)
    opts = list(config.get('dns_options') or opts)
    out = [SOURCE_MARK + source] + ['nameserver %s' % s for s in servers]
    if search:
        out.append('search %s' % ' '.join(search))
    if opts:
        out.append('options %s' % ' '.join(opts))
    return '\n'.join(out) + '\n'


def _loopback(address):
    return address.startswith('127.') or address == '::1'


def host_resolv_conf(path='/etc/resolv.conf', resolved=RESOLVED):
    """(text, path) of the host's resolver configuration: systemd-resolved's upstream file where /etc/resolv.conf
    names only its stub (loopback) servers, as Docker reads it."""
    text = _read(path)
    servers = [ln.split()[1] for ln in text.splitlines() if ln.split()[:1] == ['nameserver'] and len(ln.split()) > 1]
    if servers and all(_loopback(s) for s in servers) and os.path.isfile(resolved):
        return _read(resolved), resolved
    return text, path


def dns_source(resolv_conf_text):
    """Where a container's name servers came from, as its resolv.conf's first line says (None: written before)."""
    first = resolv_conf_text.split('\n', 1)[0] if resolv_conf_text else ''
    return first[len(SOURCE_MARK):] if first.startswith(SOURCE_MARK) else None


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ''
