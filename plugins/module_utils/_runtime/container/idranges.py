# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's user namespace options, and the pool of host ids that ``userns_mode: auto`` draws from.

Options: ``userns_mode`` ``host`` (the default: no user namespace) or ``auto`` (a range of
:data:`BLOCK` ids of its own); ``uidmap``/``gidmap`` (Docker/podman's ``container_id:host_id:size``)
give the maps explicitly and imply a user namespace (``gidmap`` defaults to ``uidmap``). Stored
as ``userns: {mode: host|auto|private, uid_map, gid_map}``; an auto container's maps are not in
its config (they are allocated, not asked for), so an unchanged task compares equal.

The pool is the host config's ``userns.pool``: ``start:count`` ranges, as the lines of
/etc/subuid without a name; the default lies above 2^31, clear of the ids of users and of
podman's and Docker's usual subordinate ranges. uids and gids come from the same range.

Allocation: ``<data_root>/userns/ranges.json`` ({container id: first host id}) changed under
``<data_root>/userns/.lock`` (lock order: store -> image -> container -> **userns** -> volume ->
network). An entry is valid only while the container's record (``containers/<id>/config.json``)
exists and asks for ``auto``: a crash between the record and the entry leaves an entry that
the next allocation drops, a removal frees the range even if the file is not rewritten, and a
range is never handed out twice. Explicit maps may not overlap the pool, nor map host id 0.
"""
from __future__ import annotations

import contextlib
import os

from ..host.config import DEFAULTS
from ..errors import ConfigError, NsboxError
from ..kernel.fsutil import locked, read_json, write_json
from ..kernel.idmap import IdMapEntry, map_dicts, parse_id_map

SCHEMA = 1
BLOCK = 65536
MODES = ('host', 'auto')
DEFAULT_POOL = tuple(DEFAULTS['userns']['pool'])
HOST = {'mode': 'host', 'uid_map': None, 'gid_map': None}


class RangeError(NsboxError):
    """No range of host ids could be allocated."""


# -- options ------------------------------------------------------------------------------------
def parse_pool(value):
    """The pool as [(start, count)], sorted; "start:count" strings (or pairs)."""
    out = []
    for item in value or ():
        parts = item.split(':') if isinstance(item, str) else list(item) if isinstance(item, (list, tuple)) else []
        try:
            start, count = (int(p) for p in parts)
        except (TypeError, ValueError):
            raise ConfigError('validate', 'host config', 'userns.pool: expected "start:count", not %r' % (item,)) from None
        if start < 1 or count < BLOCK or start + count > 4294967295:
            raise ConfigError('validate', 'host config', 'userns.pool %r: start above 0, at least %d ids, below 2^32 - 1' % (item, BLOCK))
        out.append((start, count))
    out.sort()
    for (a, n), (b, _m) in zip(out, out[1:]):
        if a + n > b:
            raise ConfigError('validate', 'host config', 'userns.pool: ranges %d:%d and %d overlap' % (a, n, b))
    return out


def _docker_map(value, what):
    """Docker/podman's ["0:100000:65536", ...] (or the forms idmap.parse_id_map takes) -> entries."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError('validate', what, 'expected a list of "container_id:host_id:size", not %r' % (value,))
    items = []
    for index, item in enumerate(value):
        if isinstance(item, str):
            parts = item.split(':')
            if len(parts) != 3:
                raise ConfigError('validate', what, 'entry %d: expected "container_id:host_id:size", got %r' % (index + 1, item))
            item = parts
        items.append(item)
    return parse_id_map(items, what)


def _overlaps(entries, pool):
    for e in entries:
        for start, count in pool:
            if e.host_id < start + count and start < e.host_id + e.size:
                return e, (start, count)
    return None


def parse_options(mode, uidmap, gidmap, pool=DEFAULT_POOL):
    """The stored ``userns`` from the options (None: not given); ConfigError naming the option."""
    if mode is not None and mode not in MODES:
        raise ConfigError('use', 'userns_mode %r' % (mode,), 'expected one of %s' % ', '.join(MODES))
    uid_map, gid_map = _docker_map(uidmap, 'uidmap'), _docker_map(gidmap, 'gidmap')
    if uid_map is None and gid_map is None:
        return dict(HOST, mode=mode or 'host')
    if mode is not None:
        raise ConfigError('use', 'uidmap and gidmap', 'they give the user namespace\'s maps: userns_mode %s would contradict them '
                          '(leave userns_mode out)' % mode)
    if uid_map is None:
        raise ConfigError('use', 'gidmap', 'give uidmap too (a gidmap alone would leave every uid unmapped)')
    gid_map = uid_map if gid_map is None else gid_map
    for what, entries in (('uidmap', uid_map), ('gidmap', gid_map)):
        if any(e.host_id == 0 for e in entries):
            raise ConfigError('use', what, 'it maps host id 0: root of the host in the container is what a user namespace avoids '
                              '(use userns_mode host)')
        hit = _overlaps(entries, parse_pool(pool))
        if hit:
            e, (start, count) = hit
            raise ConfigError('use', what, 'host ids %d-%d overlap the pool of userns_mode auto (%d-%d, host config userns.pool)'
                              % (e.host_id, e.host_id + e.size - 1, start, start + count - 1))
    return {'mode': 'private', 'uid_map': map_dicts(uid_map), 'gid_map': map_dicts(gid_map)}


def check_compatible(checked):
    """A user namespace with the rest of the config: every namespace but the network's is the container's own
    (proc, mqueue and sysctls need them owned by its user namespace), and privileged is the host's root."""
    if checked['userns']['mode'] == 'host':
        return
    if checked.get('privileged'):
        raise ConfigError('use', 'privileged with a user namespace', 'a privileged container is root of the host: use userns_mode host')
    for ns in ('pid', 'ipc', 'uts'):
        if checked['namespaces'][ns] != 'private':
            raise ConfigError('use', '%s_mode %s with a user namespace' % (ns, checked['namespaces'][ns]),
                              'a container with a user namespace has %s namespace of its own' % ns)
    if checked['namespaces']['network'] == 'host':
        raise ConfigError('use', 'network_mode host with a user namespace', 'the host\'s network namespace is not the container\'s to own')


def auto_maps(start):
    entries = (IdMapEntry(0, start, BLOCK),)
    return entries, entries


# -- the pool's allocations ---------------------------------------------------------------------
class RangeStore:
    """Allocations of ``userns_mode: auto`` ranges in one data-root."""

    def __init__(self, cfg):
        self.root = os.path.join(cfg.data_root, 'userns')
        self.path = os.path.join(self.root, 'ranges.json')
        self.containers = os.path.join(cfg.data_root, 'containers')
        self.pool = parse_pool((cfg.data.get('userns') or {}).get('pool') or DEFAULT_POOL)

    @contextlib.contextmanager
    def lock(self):
        os.makedirs(self.root, 0o700, exist_ok=True)
        with locked(os.path.join(self.root, '.lock')):
            yield

    def _wants_auto(self, cid):
        if not isinstance(cid, str) or len(cid) != 64 or '/' in cid:
            return False
        config = read_json(os.path.join(self.containers, cid, 'config.json'), 'the config of container %s' % cid[:12], None)
        return bool(config) and (config.get('userns') or {}).get('mode') == 'auto'

    def ranges(self):
        """The valid allocations: {container id: first host id} (see the module docstring)."""
        data = read_json(self.path, 'the user namespace ranges', SCHEMA) or {}
        return {cid: start for cid, start in (data.get('ranges') or {}).items() if isinstance(start, int) and self._wants_auto(cid)}

    def _write(self, ranges):
        write_json(self.path, {'schema_version': SCHEMA, 'block': BLOCK, 'ranges': dict(sorted(ranges.items()))}, 0o600)

    def get(self, cid):
        return self.ranges().get(cid)

    def allocate(self, cid):
        """The first host id of ``cid``'s range: its valid allocation, else the lowest free block of the pool (written
        before it is returned). Call for a container whose record exists."""
        with self.lock():
            ranges = self.ranges()
            if cid in ranges:
                return ranges[cid]
            taken = sorted(ranges.values())
            for start, count in self.pool:
                first = start
                while first + BLOCK <= start + count:
                    clash = next((t for t in taken if t < first + BLOCK and first < t + BLOCK), None)
                    if clash is None:
                        ranges[cid] = first
                        self._write(ranges)
                        return first
                    first = clash + BLOCK
            raise RangeError('allocate', 'a user namespace range for container %s' % cid[:12],
                             'the pool (%s) is used up by %d containers' % (
                                 ', '.join('%d:%d' % r for r in self.pool), len(ranges)))

    def release(self, cid):
        with self.lock():
            ranges = self.ranges()  # the removed container's entry is invalid already: rewriting drops it
            data = read_json(self.path, 'the user namespace ranges', SCHEMA) or {}
            if set(data.get('ranges') or {}) != set(ranges):
                self._write(ranges)


def maps_of(cfg, container):
    """(uid_map, gid_map) entries of ``container``, or None without a user namespace (auto: allocated now if it had
    none yet)."""
    userns = container.config.get('userns') or HOST
    if userns['mode'] == 'host':
        return None
    if userns['mode'] == 'auto':
        return auto_maps(RangeStore(cfg).allocate(container.id))
    return parse_id_map(userns['uid_map'], 'uidmap'), parse_id_map(userns['gid_map'], 'gidmap')
