# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the ``nsbox`` host command prints: rows made from the library's public forms, as text.

Pure functions of their input (``now`` is a parameter), so every table is unit-tested without a
host. Durations and sizes read as Docker prints them (``Up 3 minutes``, ``12.3MB``, ``1.5MiB``).
"""
from __future__ import annotations

import calendar
import time


def parse_time(stamp):
    """Seconds since the epoch of an RFC 3339 UTC time as the store writes it (None when absent or unreadable)."""
    if not stamp:
        return None
    try:
        whole = calendar.timegm(time.strptime(stamp[:19], '%Y-%m-%dT%H:%M:%S'))
    except ValueError:
        return None
    frac = stamp[19:].rstrip('Z')
    if frac.startswith('.') and frac[1:].isdigit():
        whole += float('0' + frac[:10])
    return whole


def human_duration(seconds):
    """Docker's HumanDuration: 'Less than a second', '5 seconds', 'About a minute', '3 hours', '2 weeks'."""
    seconds = max(0, int(seconds))
    if seconds < 1:
        return 'Less than a second'
    if seconds == 1:
        return '1 second'
    if seconds < 60:
        return '%d seconds' % seconds
    minutes = seconds // 60
    if minutes == 1:
        return 'About a minute'
    if minutes < 60:
        return '%d minutes' % minutes
    hours = minutes // 60
    if hours == 1:
        return 'About an hour'
    if hours < 48:
        return '%d hours' % hours
    if hours < 24 * 7 * 2:
        return '%d days' % (hours // 24)
    if hours < 24 * 30 * 2:
        return '%d weeks' % (hours // (24 * 7))
    if hours < 24 * 365 * 2:
        return '%d months' % (hours // (24 * 30))
    return '%d years' % (hours // (24 * 365))


def _size(value, base, units):
    value = float(value)
    i = 0
    while value >= base and i < len(units) - 1:
        value /= base
        i += 1
    return '%.4g%s' % (value, units[i])


def human_size(value):
    """Decimal units, as ``docker images`` shows SIZE: 5.2MB."""
    return _size(value, 1000.0, ('B', 'kB', 'MB', 'GB', 'TB', 'PB'))


def bytes_size(value):
    """Binary units, as ``docker stats`` shows memory: 1.5MiB."""
    return _size(value, 1024.0, ('B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'))


def status_text(state, now):
    """The STATUS column: 'Up 3 minutes', 'Up 3 minutes (healthy, unsupervised)' (its supervisor died: its restart policy,
    healthcheck and log are off until ``nsbox start`` or a converge adopts it), 'Exited (3) 2 minutes ago',
    'Restarting (1) 4 seconds ago', 'Created'."""
    status = state.get('status')
    if state.get('running'):
        started = parse_time(state.get('started_at'))
        text = 'Up %s' % human_duration(now - started) if started is not None else 'Up'
        health = (state.get('health') or {}).get('status') if isinstance(state.get('health'), dict) else state.get('health')
        notes = [n for n in (health, 'unsupervised' if state.get('supervised') is False else None) if n]
        return '%s (%s)' % (text, ', '.join(notes)) if notes else text
    finished = parse_time(state.get('finished_at'))
    ago = ' %s ago' % human_duration(now - finished) if finished is not None else ''
    code = state.get('exit_code')
    code = '?' if code is None else code
    if status == 'restarting':
        return 'Restarting (%s)%s' % (code, ago)
    if status == 'exited':
        return 'Exited (%s)%s' % (code, ago)
    return (status or 'unknown').capitalize()


def table(headers, rows):
    """Columns padded to their widest cell, three spaces apart (the last one unpadded)."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    out = []
    for r in [list(headers)] + rows:
        cells = [c.ljust(w) for c, w in zip(r[:-1], widths[:-1])] + [r[-1]]
        out.append('   '.join(cells).rstrip())
    return '\n'.join(out)


def image_name(image):
    """A container's image as stored ({'name', 'digest', 'id'}): its name, else its short id."""
    if isinstance(image, dict):
        return image.get('name') or short_id(image.get('id') or '')
    return str(image or '')


def short_id(digest, length=12):
    return (digest or '').split(':', 1)[-1][:length]


def ps_rows(containers, now):
    """``nsbox ps`` as data: one dict per container (what --format json prints)."""
    out = []
    for c in containers:
        st = c['state']
        out.append({'id': c['id'], 'name': c['name'], 'image': image_name(c['image']), 'status': st.get('status'),
                    'status_text': status_text(st, now), 'running': bool(st.get('running')), 'exit_code': st.get('exit_code'),
                    'ports': list(st.get('ports') or []), 'pid': st.get('pid'),
                    'started_at': st.get('started_at'), 'finished_at': st.get('finished_at')})
    return out


def ps_table(rows):
    return table(('NAME', 'IMAGE', 'STATUS', 'PORTS', 'PID'),
                 [(r['name'], r['image'], r['status_text'], ', '.join(r['ports']), r['pid'] or '-') for r in rows])


def image_rows(images):
    """``nsbox images`` as data: one row per reference (an untagged image once, as <none>)."""
    out = []
    for img in images:
        for ref in img.get('references') or ['<none>']:
            out.append({'reference': ref, 'id': img['id'], 'digest': img['digest'], 'size': img.get('size') or 0,
                        'created': img.get('created')})
    return sorted(out, key=lambda r: r['reference'])


def images_table(rows):
    return table(('REPOSITORY:TAG', 'DIGEST', 'SIZE'),
                 [(r['reference'], short_id(r['digest']), human_size(r['size'])) for r in rows])


def cpu_percent(before, after, seconds):
    """CPU use between two stats samples as a percentage of one CPU (Docker's way: 200% is two CPUs busy)."""
    if not before or not after or seconds <= 0:
        return None
    a = (before.get('cpu') or {}).get('usage_usec')
    b = (after.get('cpu') or {}).get('usage_usec')
    if a is None or b is None:
        return None
    return max(0.0, (b - a) / 1e6 / seconds * 100.0)


def stats_rows(samples):
    """``nsbox stats`` as data from [(name, stats before, stats after, seconds between, memory limit or None)]."""
    out = []
    for name, before, after, seconds, limit in samples:
        mem = (after or {}).get('memory') or {}
        out.append({'name': name, 'cpu_percent': cpu_percent(before, after, seconds), 'memory_usage': mem.get('usage'),
                    'memory_limit': limit, 'pids': (after or {}).get('pids')})
    return out


def stats_table(rows):
    def cpu(r):
        return '--' if r['cpu_percent'] is None else '%.2f%%' % r['cpu_percent']

    def mem(r):
        usage = '--' if r['memory_usage'] is None else bytes_size(r['memory_usage'])
        return '%s / %s' % (usage, bytes_size(r['memory_limit']) if r['memory_limit'] else 'unlimited')
    return table(('NAME', 'CPU %', 'MEM USAGE / LIMIT', 'PIDS'),
                 [(r['name'], cpu(r), mem(r), '--' if r['pids'] is None else r['pids']) for r in rows])


def network_table(networks):
    return table(('NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'CONTAINERS'),
                 [(n['name'], n.get('driver') or '-', n.get('subnet') or '-', n.get('gateway') or '-', len(n.get('containers') or ()))
                  for n in networks])


def volume_table(volumes):
    return table(('NAME', 'DRIVER', 'CONTAINERS'),
                 [(v['Name'], v.get('Driver') or 'local', ', '.join(v.get('UsedBy') or ()) or '-') for v in volumes])


# -- nsbox pull ------------------------------------------------------------------------------------
PULL_STATUS = {'exists': 'Already exists', 'downloading': 'Downloading', 'downloaded': 'Download complete', 'unpacked': 'Pull complete'}


def pull_line(digest, status, done, total, width=30):
    """One layer's line, as ``docker pull`` draws it: ``3f4a1c2b9e0d: Downloading [=====>    ] 1.2MB/3.4MB``."""
    text = '%s: %s' % (short_id(digest), PULL_STATUS.get(status, status))
    if status != 'downloading':
        return text
    if not total:
        return '%s %s' % (text, human_size(done))
    filled = min(width, int(width * done / total))
    drawn = '=' * filled + ('>' if filled < width else '') + ' ' * max(0, width - filled - 1)
    return '%s [%s] %s/%s' % (text, drawn, human_size(done), human_size(total))


def pull_plain(digest, status, done, total):
    """Without a terminal: one line per layer and step (no per-chunk lines), or None for a chunk."""
    if status == 'downloading':
        return None
    line = pull_line(digest, status, done, total)
    return '%s (%s)' % (line, human_size(total)) if status == 'downloaded' else line


def pull_summary(ref, digest, changed):
    return ['Digest: %s' % digest, 'Status: %s for %s' % ('Downloaded newer image' if changed else 'Image is up to date', ref)]


# -- nsbox prune -----------------------------------------------------------------------------------
def prune_warning(all_images, volumes):
    items = ['all stopped containers', 'all unused networks (not the default one)',
             'all images without at least one container using them' if all_images else 'all dangling (untagged, unused) images',
             'the image layers and blobs nothing refers to then']
    if volumes:
        items.append('all volumes not used by at least one container')
    return 'WARNING! This will remove:\n' + ''.join('  - %s\n' % i for i in items)


def prune_text(out):
    """What ``nsbox prune`` removed, by kind, and the space reclaimed (``docker system prune``'s form)."""
    lines = []

    def section(title, items):
        if items:
            lines.extend(['%s:' % title] + list(items) + [''])
    section('Deleted containers', ['%s (%s)' % (c['name'], short_id(c['id'])) for c in out['containers']])
    section('Untagged images', out['images']['untagged'])
    section('Deleted images', out['images']['images'])
    section('Deleted layers', out['images']['layers'])
    section('Deleted blobs', [short_id(b) for b in out['images']['blobs']])
    section('Deleted networks', out['networks'])
    section('Deleted volumes', [v['name'] for v in out['volumes']])
    lines.append('Total reclaimed space: %s' % human_size(out['reclaimed']))
    return '\n'.join(lines)
