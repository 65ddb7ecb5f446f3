# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Converge one named namespace set: the ``namespace`` module's logic (and later the CLI's).

Read back from the kernel (persisted files, the mount table, the holder's /proc entry, the
user namespace's maps), compare with what is asked, and act only on the difference. Every
option is checked before anything is touched; what a failing run created is taken back.
"""
from __future__ import annotations

import contextlib

from ..errors import ConfigError, NsboxError
from ..kernel.idmap import map_dicts, parse_id_map
from ..kernel.namespaces import NamespaceError, have_pyroute2, loopback, run_in, validate_name, validate_types
from .store import NamespaceStore


def _summary(state, types=None):
    """The diff form: type -> inode (``(new)`` for one about to be made), plus maps when known."""
    out = {'types': dict(sorted((types if types is not None else state.types).items()))}
    if state.id_maps:
        out.update(state.id_maps)
    return out


def check_options(types, uid_map=None, gid_map=None, loopback_up=False):
    """Parse and check the options of ``state: present``; returns (types, uid entries, gid entries)."""
    want = validate_types(types)
    uid = parse_id_map(uid_map, 'uid_map')
    gid = parse_id_map(gid_map, 'gid_map')
    if (uid is not None or gid is not None) and 'user' not in want:
        raise ConfigError('validate', 'namespace options', 'uid_map and gid_map need the user type in types')
    if loopback_up and 'net' not in want:
        raise ConfigError('validate', 'namespace options', 'loopback_up needs the net type in types')
    if loopback_up and not have_pyroute2():
        raise NamespaceError('bring up', 'the loopback interface', 'the Python library pyroute2 is missing (Debian: python3-pyroute2)')
    return want, uid, gid


def _check_maps(name, state, uid, gid):
    """Maps are written once, when the user namespace is made: a different one cannot be applied."""
    for kind, want in (('uid_map', uid), ('gid_map', gid)):
        have = (state.id_maps or {}).get(kind) or []
        if want is not None and have != map_dicts(want):
            raise NamespaceError('change', 'the %s of the user namespace of %s' % (kind, name),
                                 'it is %s and a map cannot change once written; remove the namespaces (state: absent) '
                                 'and create them again' % (have or 'empty'))


def ensure(cfg, name, types=None, state='present', uid_map=None, gid_map=None, loopback_up=False, check_mode=False, store=None):
    """Make ``name`` have exactly ``types``, persisted and alive, or be gone (``state: absent``).

    Returns {'changed', 'actions', 'namespace', 'diff'}. Types that exist and are alive are
    kept as they are (same inode); files of dead ones are replaced; types not asked for go.
    """
    validate_name(name)
    store = store or NamespaceStore(cfg.state_dir, kernel=cfg.kernel)
    if state == 'absent':
        return _absent(store, name, check_mode)
    want, uid, gid = check_options(types, uid_map, gid_map, loopback_up)
    with contextlib.nullcontext() if check_mode else store.lock():
        cur = store.inspect(name, with_maps=True)
        keep = [t for t in want if t in cur.types]
        create = [t for t in want if t not in cur.types]
        extra = [t for t in cur.types if t not in want]
        if 'user' in create and keep:
            raise NamespaceError('create', 'a user namespace for %s' % name, 'its namespaces %s exist already and would not belong '
                                 'to it; remove them (state: absent) and create all together' % ', '.join(keep))
        if 'user' in keep:
            _check_maps(name, cur, uid, gid)
        lo_up = run_in({'net': store.path(name, 'net')}, loopback) if loopback_up and 'net' in keep else None
        actions = ['removed the stale %s namespace file of %s (%s)' % (t, name, why) for t, why in sorted(cur.stale.items())]
        if create:
            actions.append('created namespaces %s of %s' % (', '.join(create), name) +
                           (' with a holder process (pid 1 of its pid namespace)' if 'pid' in create else ''))
        if loopback_up and not lo_up:
            actions.append('brought up lo in the net namespace of %s' % name)
        actions += ['removed the %s namespace of %s' % (t, name) for t in extra]
        if not check_mode and actions:
            _apply(store, name, cur, create, extra, uid, gid, loopback_up and not lo_up)
    after = store.inspect(name, with_maps=True) if not check_mode else None
    predicted = {t: ino for t, ino in cur.types.items() if t in keep}
    predicted.update({t: '(new)' for t in create})
    described = after.describe() if after else dict(cur.describe(), types={t: {'path': store.path(name, t), 'inode': ino}
                                                                           for t, ino in sorted(predicted.items())})
    if loopback_up and 'net' in described['types']:
        described['types']['net']['loopback_up'] = lo_up if check_mode else True
    return {'changed': bool(actions), 'actions': actions, 'namespace': described,
            'diff': {'before': _summary(cur), 'after': _summary(after) if after else _summary(cur, predicted)}}


def _apply(store, name, cur, create, extra, uid, gid, bring_lo_up):
    stale = sorted(cur.stale)
    if stale:
        store.remove_types(name, stale, cur)
    new_user = 'user' in create  # maps belong to a user namespace made now, never to an existing one
    made = store.create(name, create, uid if new_user else None, gid if new_user else None) if create else {}
    try:
        if bring_lo_up and not run_in({'net': store.path(name, 'net')}, loopback, True):
            raise NamespaceError('bring up', 'lo in the net namespace of %s' % name, 'it is still down')
    except NsboxError:
        with contextlib.suppress(NsboxError, OSError):
            store.remove_types(name, list(made))  # nothing half-done: this run's namespaces go again
            left = store.inspect(name)
            if not (left.types or left.stale or left.holder):
                store.remove(name)
        raise
    if extra:
        store.remove_types(name, extra)


def _absent(store, name, check_mode):
    with contextlib.nullcontext() if check_mode else store.lock():
        cur = store.inspect(name)
        actions = []
        if cur.types or cur.stale:
            actions.append('removed namespaces %s of %s' % (', '.join(t for t in sorted(set(cur.types) | set(cur.stale))), name))
        if cur.holder_alive:
            actions.append('stopped holder process %d' % cur.holder.pid)
        if cur.exists and not actions:
            actions.append('removed the empty directory %s' % cur.dir)
        if actions and not check_mode:
            store.remove(name)
    return {'changed': bool(actions), 'actions': actions,
            'namespace': {'name': name, 'path': cur.dir, 'exists': False, 'types': {}, 'holder': None},
            'diff': {'before': _summary(cur), 'after': {'types': {}}}}
