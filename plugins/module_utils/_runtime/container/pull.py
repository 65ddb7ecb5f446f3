# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image a container is made from, as its ``pull`` policy brings it into the store.

Deferred imports: the image module's pull (the registry client: http, ssl, gzip) is start-up cost only a pull pays.
"""
from __future__ import annotations

from ..errors import ConfigError, NsboxError
from ..image.reference import Reference
from ..image.store import ImageStore
from .store import ContainerError

PULL = ('missing', 'always', 'never')


def image_of(cfg, ref):
    """({'name', 'digest', 'id'}, image config's ``config``) of an image in the store."""
    store = ImageStore(cfg.data_root, cfg['storage_driver'])
    if ref.startswith('sha256:'):
        record = store.index()['images'].get(ref)
    else:
        record = store.resolve(Reference.parse(ref).key)
    if record is None or not store.complete(record):
        raise ContainerError('find', 'image %s' % ref, 'it is not in the store at %s: pull, load or import it first '
                             '(nsbox.runtime.image)' % store.root)
    config = store.read_json_blob(record['config_digest']) if store.has_blob(record['config_digest']) else {}
    return {'name': ref, 'digest': record['manifest_digest'], 'id': record['config_digest']}, config.get('config') or {}


def in_store(cfg, ref):
    try:
        return image_of(cfg, ref)
    except ContainerError:
        return None


def pull_image(cfg, ref, policy='missing', check_mode=False):
    """The image ``ref`` as the ``pull`` policy brings it: {'image', 'config', 'digest', 'actions'}.

    ``missing`` pulls when the reference is not in the store, ``always`` on every run (a tag that
    now names another digest is re-tagged), ``never`` only looks in the store. The pull is the
    image module's (image/service.pull: the host config's mirrors, insecure registries, CA files).
    A reference by digest is pulled only when missing (its content cannot change); a bare
    ``sha256:`` id is never pulled (no registry to ask). In check mode nothing is written: the
    registry is asked for the manifest only, so ``digest`` is exact; ``image`` and ``config`` are
    None when that image is not in the store yet (its config is not known without fetching it).
    """
    if policy not in PULL:
        raise ConfigError('use', 'pull %r' % (policy,), 'expected one of %s' % ', '.join(PULL))
    present = in_store(cfg, ref)
    if policy == 'never' or ref.startswith('sha256:') or (present and (policy == 'missing' or Reference.parse(ref).digest)):
        image, config = present or image_of(cfg, ref)  # image_of raises the "not in the store" error
        return {'image': image, 'config': config, 'digest': image['digest'], 'actions': []}
    # Imported here: the registry client (http, ssl, gzip) is start-up cost only a pull pays.
    from ..image import images as image_service  # pylint: disable=import-outside-toplevel
    try:
        out = image_service.pull(cfg, ref, check_mode=check_mode)
    except NsboxError as exc:
        if present:
            raise
        raise ContainerError('pull', 'image %s' % ref, 'it is not in the store and pulling it failed: %s' % exc.message) from exc
    digest = out['image']['digest']
    if not out['changed'] and present:
        return {'image': present[0], 'config': present[1], 'digest': digest, 'actions': []}
    change = '%s -> %s' % (present[0]['digest'], digest) if present else digest
    if check_mode:
        found = in_store(cfg, digest)  # the new digest may be in the store already (another name, or untagged)
        if found:
            found[0]['name'] = ref
        return {'image': found[0] if found else None, 'config': found[1] if found else None, 'digest': digest,
                'actions': ['would pull image %s: %s' % (ref, change)]}
    image, config = image_of(cfg, ref)
    return {'image': image, 'config': config, 'digest': digest,
            'actions': ['pulled image %s: %s%s' % (ref, change, ' (%s)' % '; '.join(out['actions']) if out['actions'] else '')]}
