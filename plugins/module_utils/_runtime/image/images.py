# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image operations as the fronts (modules, CLI) call them: read, compare, apply, report.

Each returns a dict with ``changed``, ``image`` (the record), ``actions`` and a ``diff`` of
the reference -> digest mapping; with ``check_mode`` nothing is written (a pull still reads
the manifest: one request, so the prediction is exact).
"""
from __future__ import annotations

import contextlib

from ..errors import ConfigError
from .archive import RootfsSource, open_archive
from .ingest import Plan, RegistrySource, registry_client
from .manifest import parse_platform
from .reference import Reference
from .registry import RegistryError
from .store import ImageStore


def open_store(cfg, check_mode=False):
    store = ImageStore(cfg.data_root, cfg['storage_driver'])
    if not check_mode:
        store.ensure()
    return store


def _result(plan, check_mode, progress=None):
    before = plan.current['manifest_digest'] if plan.current else None
    out = {'changed': plan.changed, 'actions': [],
           'diff': {'before': {plan.key: before}, 'after': {plan.key: plan.manifest_digest}}}
    if plan.changed and not check_mode:
        record, out['actions'] = plan.apply(progress)
    else:
        record = plan.current if not plan.changed else {'manifest_digest': plan.manifest_digest, 'config_digest': plan.config_desc['digest'],
                                                        'id': plan.config_desc['digest'], 'layers': plan.layer_descs}
        if plan.changed:
            out['actions'] = ['would fetch and tag %s -> %s' % (plan.key, plan.manifest_digest)]
    out['image'] = describe(plan.store, record, [plan.key])
    return out


def pull(cfg, name, platform=None, auth=None, insecure=None, validate_certs=True, ca_path=None,
         client_cert=None, client_key=None, check_mode=False, progress=None):
    """Pull ``name`` (the host config's mirrors first); ``progress``: see ingest.Plan.apply (``nsbox pull``)."""
    ref = Reference.parse(name)
    want = parse_platform(platform)
    store = open_store(cfg, check_mode)
    mirrors = cfg['registries']['mirrors'].get(ref.registry, [])
    errors = []
    for host in list(mirrors) + [ref.registry]:
        target = Reference(host, ref.repository, ref.tag, ref.digest)
        client = registry_client(target, cfg, auth if host == ref.registry else None, insecure, validate_certs, ca_path, client_cert, client_key)
        try:
            plan = Plan(store, RegistrySource(client, ref.repository), ref.key, ref.digest or ref.tag, want)
        except RegistryError as exc:
            errors.append(exc)
            if host == ref.registry:
                raise
            continue
        out = _result(plan, check_mode, progress)
        out['requests'] = client.requests
        return out
    raise errors[-1]


def _archive_name(source, name):
    if name:
        return Reference.parse(name)
    names = [n for n in (source.names() if hasattr(source, 'names') else [t for e in source.entries for t in (e.get('RepoTags') or [])]) if n]
    for n in names:
        with contextlib.suppress(ConfigError):
            if '/' in n or ':' in n:
                return Reference.parse(n)
    raise ConfigError('load', source.describe, 'the archive names no image reference: give the name option')


def load(cfg, path, name=None, platform=None, check_mode=False):
    source = open_archive(path)
    try:
        ref = _archive_name(source, name)
        wanted = name or None
        plan = Plan(open_store(cfg, check_mode), source, ref.key, wanted, parse_platform(platform))
        return _result(plan, check_mode)
    finally:
        source.files.close()


def import_rootfs(cfg, path, name, config=None, platform=None, check_mode=False):
    ref = Reference.parse(name)
    source = RootfsSource(path, config or {}, parse_platform(platform))
    plan = Plan(open_store(cfg, check_mode), source, ref.key, None, parse_platform(platform))
    return _result(plan, check_mode)


def remove(cfg, name, prune=False, check_mode=False, *, refs):
    """Untag ``name``; the image stays while a container uses it (``refs``: ``usage.References``)."""
    ref = Reference.parse(name)
    store = ImageStore(cfg.data_root, cfg['storage_driver'])
    idx = store.index()
    keys = [k for k in (ref.key, str(ref)) if k in idx['references']]
    out = {'changed': bool(keys), 'actions': [], 'image': None,
           'diff': {'before': {ref.key: idx['references'].get(ref.key)}, 'after': {ref.key: None}}}
    if check_mode:
        if keys:
            out['actions'].append('would untag %s' % ', '.join(keys))
        return out
    if keys:
        in_use = refs.images()
        store.untag(keys, in_use)
        out['actions'].append('untagged %s' % ', '.join(keys))
        kept = sorted(d for d in in_use if idx['references'].get(ref.key) == d or idx['references'].get(str(ref)) == d)
        if kept:
            out['actions'].append('kept image %s: containers use it' % ', '.join(kept))
    if prune:
        gone = store.prune()
        if gone['blobs'] or gone['layers']:
            out['changed'] = True
            out['actions'].append('pruned %d blobs and %d layers' % (len(gone['blobs']), len(gone['layers'])))
    return out


def prune(cfg, all_unused=False, *, refs):
    """Garbage found from references (DESIGN D3): images no container uses lose their tags with
    ``all_unused`` (else only untagged ones go), then blobs and layers no image needs are deleted.
    {'untagged': [references], 'images': [manifest digests], 'blobs', 'layers', 'size': bytes freed}."""
    store = open_store(cfg)
    in_use = refs.images()
    idx = store.index()
    keys = sorted(k for k, d in idx['references'].items() if d not in in_use) if all_unused else []
    untagged = store.untag(keys, in_use)
    images = sorted(set(idx['images']) - set(store.index()['images']))
    gone = store.prune()
    return {'untagged': untagged, 'images': images, 'blobs': gone['blobs'], 'layers': gone['layers'], 'size': gone['size']}


def describe(store, record, references=None):
    """The public form of an image record (what image/image_info return)."""
    if record is None:
        return None
    config = {}
    if store.has_blob(record['config_digest']):
        config = store.read_json_blob(record['config_digest'])
    return {
        'id': record['config_digest'], 'digest': record['manifest_digest'],
        'references': sorted(references or record.get('references') or []),
        'layers': [lay.get('digest') for lay in record['layers']],
        'size': record.get('size', sum(lay.get('size', 0) for lay in record['layers'])),
        'created': config.get('created'), 'platform': record.get('platform'),
        'config': config.get('config') or {},
    }


def list_images(cfg, names=None):
    store = ImageStore(cfg.data_root, cfg['storage_driver'])
    wanted = {Reference.parse(n).key for n in names} if names else None
    out = []
    for rec in store.images():
        if wanted is None or wanted & set(rec['references']):
            out.append(describe(store, rec))
    return out
