# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Volume operations as the fronts call them: the ``volume`` and ``volume_info`` modules, and
what the container code needs (volumes made on a container's creation, prepared at its start).

``ensure`` reads the volume back, compares, acts (nothing in check mode) and reports
``changed``, ``actions``, ``volume`` and a ``diff``. Labels are updated in place by default:
the store keeps them in the volume's record, so unlike Docker nothing has to be recreated;
``recreate`` gives docker_volume's behaviour (``options-changed``: recreate when the labels
differ, ``always``: on every run). A volume a container uses — in any state, as Docker — is
never removed or recreated; the error names the containers.
"""
from __future__ import annotations

import contextlib

from ..errors import ConfigError
from ..kernel.fsutil import tree_size
from . import copyup
from .store import DRIVERS, VolumeError, VolumeStore, data_path, validate_name

STATES = ('present', 'absent')
RECREATE = ('never', 'options-changed', 'always')


def open_store(cfg):
    return VolumeStore(cfg.data_root)


def volume_mounts(config):
    """The named-volume mounts of a container config."""
    return [m for m in config.get('mounts') or () if m.get('type') == 'volume']


def _view(volume):
    if volume is None:
        return {'exists': False}
    return {'exists': True, 'name': volume.name, 'driver': volume.record.get('driver'), 'labels': volume.labels}


def _labels(labels):
    if labels is None:
        return None
    if not isinstance(labels, dict):
        raise ConfigError('use', 'labels', 'expected a dict of strings')
    return {str(k): str(v) for k, v in labels.items()}


def _check(name, state, driver, driver_options, recreate):
    validate_name(name)
    if state not in STATES:
        raise ConfigError('use', 'state %r' % (state,), 'expected one of %s' % ', '.join(STATES))
    if driver not in DRIVERS:
        raise ConfigError('use', 'volume driver %r' % (driver,), 'this version has the local driver only')
    if driver_options:
        raise ConfigError('use', 'driver_options of volume %s' % name,
                          'the local driver keeps data in a directory of the data-root; its options (type, device, o) are not '
                          'supported in this version')
    if recreate not in RECREATE:
        raise ConfigError('use', 'recreate %r' % (recreate,), 'expected one of %s' % ', '.join(RECREATE))


def _refuse_in_use(action, name, used_by):
    if used_by:
        raise VolumeError(action, 'volume %s' % name, 'it is in use by container%s %s (remove %s first)' % (
            's' if len(used_by) > 1 else '', ', '.join(used_by), 'them' if len(used_by) > 1 else 'it'))


def ensure(cfg, name, state='present', driver='local', labels=None, driver_options=None, recreate='never', check_mode=False, *, refs):
    """Converge volume ``name``; {'changed', 'actions', 'volume', 'diff'}. Everything is checked before anything is touched.

    ``labels`` None leaves them as they are; a dict is the exact set. ``refs``: the volume's users
    (``usage.References``), whose lock is held first.
    """
    _check(name, state, driver, driver_options, recreate)
    labels = _labels(labels)
    store = open_store(cfg)
    with contextlib.ExitStack() as locks:
        if not check_mode:  # check mode reads only (a lock file would be a change)
            locks.enter_context(refs.lock())
            locks.enter_context(store.lock())
        if not check_mode:
            store.cleanup()
        current = store.get(name)
        used_by = refs.volume_users()(name)
        before = _view(current)
        actions = []
        if state == 'absent':
            if current is not None:
                _refuse_in_use('remove', name, used_by)
                actions.append('removed volume %s' % name)
                if not check_mode:
                    store.remove(current)
            return {'changed': bool(actions), 'actions': actions, 'volume': None, 'diff': {'before': before, 'after': {'exists': False}}}
        wanted = labels if labels is not None else (current.labels if current is not None else {})
        after = {'exists': True, 'name': name, 'driver': driver, 'labels': wanted}
        if current is None:
            actions.append('created volume %s' % name)
            if not check_mode:
                current = store.create(name, driver, wanted)
        else:
            differs = [f for f, same in (('driver', current.record.get('driver') == driver), ('labels', current.labels == wanted)) if not same]
            if recreate == 'always' or (recreate == 'options-changed' and differs):
                _refuse_in_use('recreate', name, used_by)
                actions.append('recreated volume %s (%s; its data is gone)' % (name, ', '.join(differs) or 'recreate: always'))
                if not check_mode:
                    store.remove(current)
                    current = store.create(name, driver, wanted)
            elif differs:
                actions.append('updated %s of volume %s' % (', '.join(differs), name))
                if not check_mode:
                    current.write(labels=wanted, driver=driver)
        out = current.inspect(used_by) if current is not None else None
        if check_mode and out is not None:
            out.update(Labels=wanted, Driver=driver)
        return {'changed': bool(actions), 'actions': actions, 'volume': out, 'diff': {'before': before, 'after': after}}


def info(cfg, name=None, *, refs):
    """One volume ({'exists', 'volume', 'containers'}) or every one ({'volumes'}); reads only, no lock."""
    store = open_store(cfg)
    users = refs.volume_users()
    if name is not None:
        volume = store.get(name)
        used_by = users(name)
        return {'exists': volume is not None, 'volume': volume.inspect(used_by) if volume else None, 'containers': used_by}
    return {'volumes': [v.inspect(users(v.name)) for v in store.all()]}


def prune(cfg, *, refs):
    """Remove the volumes no container (in any state) mounts: [{'name', 'size'}] with the bytes each took."""
    store = open_store(cfg)
    users = refs.volume_users()
    gone = []
    for volume in store.all():
        if users(volume.name):
            continue
        size = tree_size(data_path(cfg.data_root, volume.name))
        if ensure(cfg, volume.name, state='absent', refs=refs)['changed']:
            gone.append({'name': volume.name, 'size': size})
    return gone


# -- for the container code -------------------------------------------------------------------
def create_missing(cfg, config, check_mode=False):
    """The named volumes a container config mounts that do not exist yet, created (as Docker does
    on container creation); call under the containers' lock. Returns (actions, created names)."""
    store = open_store(cfg)
    names = sorted({m['source'] for m in volume_mounts(config)})
    if not names:
        return [], []
    if check_mode:  # no lock: it would create the volumes directory
        return ['created volume %s' % n for n in names if store.get(n) is None], []
    actions, made = [], []
    with store.lock():
        for name in names:
            if store.get(name) is None:
                actions.append('created volume %s' % name)
                store.create(name)
                made.append(name)
    return actions, made


def remove_created(cfg, names):
    """Take back volumes ``create_missing`` made when the container they were for failed (containers' lock held)."""
    store = open_store(cfg)
    with store.lock():
        for name in names:
            volume = store.get(name)
            if volume is not None:
                store.remove(volume)


def prepare(cfg, config, rootfs, resolve):
    """At a container's start, with its rootfs mounted: each named volume exists (made again if it was
    removed behind the runtime's back) and, on its first use, holds the image's content at the target
    (``resolve(rootfs, target)`` gives the path inside the rootfs; ``no_copy`` skips it). Returns
    {name: data path}."""
    mounts = volume_mounts(config)
    if not mounts:
        return {}
    store = open_store(cfg)
    out = {}
    with store.lock():
        for m in mounts:
            volume = store.get(m['source']) or store.create(m['source'])
            copyup.repair(volume)
            if not m.get('no_copy'):
                copyup.populate(volume, resolve(rootfs, m['target']))
            out[volume.name] = data_path(cfg.data_root, volume.name)
    return out
