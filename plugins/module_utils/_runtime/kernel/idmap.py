# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""uid/gid maps of user namespaces: parsed from options, checked as the kernel checks them,
formatted for /proc/<pid>/uid_map and read back from it.

One place for the rules (no overlap on either side, ids below (uid_t)-1, at most 340 lines
in less than a page), used by the namespace layer now and by idmapped mounts later.
"""
from __future__ import annotations

from ..errors import ConfigError

MAP_FIELDS = ('container_id', 'host_id', 'size')
MAP_MAX_LINES = 340           # the kernel's limit of extents per uid_map/gid_map (4.15+)
ID_LIMIT = 4294967295         # (uid_t)-1 is no id: first + size may reach it, not pass it
MAP_PAGE = 4096               # a map is written in one write(2) of less than a page


class IdMapEntry(tuple):
    """One line of uid_map/gid_map: ``size`` ids from ``container_id`` map to ``host_id`` on."""

    __slots__ = ()

    def __new__(cls, container_id, host_id, size):
        return tuple.__new__(cls, (container_id, host_id, size))

    container_id = property(lambda self: self[0])
    host_id = property(lambda self: self[1])
    size = property(lambda self: self[2])

    def to_dict(self):
        return dict(zip(MAP_FIELDS, self))


def _map_int(value, what, index, field):
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError('validate', what, 'entry %d: %s must be a non-negative integer, got %r' % (index + 1, field, value))
    if value < 0:
        raise ConfigError('validate', what, 'entry %d: %s must not be negative, got %d' % (index + 1, field, value))
    return value


def _map_fields(item, what, index):
    if isinstance(item, str):
        parts = item.split()
        if len(parts) != 3:
            raise ConfigError('validate', what, 'entry %d: expected "container_id host_id size", got %r' % (index + 1, item))
        return dict(zip(MAP_FIELDS, parts))
    if isinstance(item, dict):
        unknown = sorted(set(item) - set(MAP_FIELDS), key=str)
        missing = [f for f in MAP_FIELDS if item.get(f) is None]
        if unknown or missing:
            raise ConfigError('validate', what, 'entry %d: %s' % (index + 1, '; '.join(
                (['unknown keys %s' % ', '.join(map(str, unknown))] if unknown else []) +
                (['missing %s' % ', '.join(missing)] if missing else []))))
        return item
    if isinstance(item, (list, tuple)) and len(item) == 3:
        return dict(zip(MAP_FIELDS, item))
    raise ConfigError('validate', what, 'entry %d: expected a mapping {container_id, host_id, size}, got %r' % (index + 1, item))


def _check_overlap(entries, what, key, label):
    ordered = sorted(range(len(entries)), key=lambda i: entries[i][key])
    for a, b in zip(ordered, ordered[1:]):
        if entries[a][key] + entries[a].size > entries[b][key]:
            lo, hi = sorted((a, b))
            raise ConfigError('validate', what, 'entries %d and %d overlap in %s ids (%d-%d and %d-%d)' % (
                lo + 1, hi + 1, label, entries[lo][key], entries[lo][key] + entries[lo].size - 1,
                entries[hi][key], entries[hi][key] + entries[hi].size - 1))


def parse_id_map(value, what='uid_map'):
    """A uid/gid map option as a tuple of :class:`IdMapEntry`, checked as the kernel checks it.

    Takes a list of mappings (the module's form), of ``"c h s"`` strings or 3-sequences,
    or text in the /proc form. ``None`` stays None (not asked); ``[]`` is "no map".
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = [line for line in value.splitlines() if line.strip()]
    if not isinstance(value, (list, tuple)):
        raise ConfigError('validate', what, 'expected a list of {container_id, host_id, size}, got %s' % type(value).__name__)
    if len(value) > MAP_MAX_LINES:
        raise ConfigError('validate', what, '%d entries: the kernel takes at most %d' % (len(value), MAP_MAX_LINES))
    entries = []
    for index, item in enumerate(value):
        fields = _map_fields(item, what, index)
        cid, hid, size = (_map_int(fields[f], what, index, f) for f in MAP_FIELDS)
        if size < 1:
            raise ConfigError('validate', what, 'entry %d: size must be at least 1' % (index + 1))
        for field, first in (('container_id', cid), ('host_id', hid)):
            if first + size > ID_LIMIT:
                raise ConfigError('validate', what, 'entry %d: %s %d + size %d passes the largest id %d' % (
                    index + 1, field, first, size, ID_LIMIT - 1))
        entries.append(IdMapEntry(cid, hid, size))
    _check_overlap(entries, what, 0, 'container')
    _check_overlap(entries, what, 1, 'host')
    size = len(format_id_map(entries))
    if size >= MAP_PAGE:
        raise ConfigError('validate', what, 'its text is %d bytes: the kernel takes less than %d in its one write' % (size, MAP_PAGE))
    return tuple(entries)


def format_id_map(entries):
    """The text written to /proc/<pid>/uid_map: one write, one line per entry."""
    return ''.join('%d %d %d\n' % tuple(e) for e in entries)


def parse_id_map_text(text):
    """/proc/<pid>/uid_map as read (``container_id host_id size`` columns) -> entries."""
    return tuple(IdMapEntry(*(int(x) for x in line.split())) for line in text.splitlines() if line.strip())


def map_dicts(entries):
    return None if entries is None else [e.to_dict() for e in entries]
