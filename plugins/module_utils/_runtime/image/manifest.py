# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Manifests, indexes and platforms (OCI image spec and Docker schema 2)."""
from __future__ import annotations

import json
import os

from ..errors import NsboxError

OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
OCI_LAYER = 'application/vnd.oci.image.layer.v1.tar'
OCI_LAYER_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
OCI_LAYER_ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd'
DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
DOCKER_FOREIGN = 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip'
DOCKER_SCHEMA1 = ('application/vnd.docker.distribution.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v1+prettyjws')

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
LAYER_TYPES = (OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD, DOCKER_LAYER_GZIP, DOCKER_FOREIGN,
               'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip')
ACCEPT = ', '.join(MANIFEST_TYPES + INDEX_TYPES)

_ARCH = {'x86_64': 'amd64', 'aarch64': 'arm64', 'armv7l': 'arm', 'armv6l': 'arm', 'i686': '386', 'i386': '386',
         'ppc64le': 'ppc64le', 's390x': 's390x', 'riscv64': 'riscv64'}
_VARIANT = {'aarch64': 'v8', 'armv7l': 'v7', 'armv6l': 'v6'}


class ManifestError(NsboxError):
    """A manifest, index or config is malformed or unsupported."""


def parse_platform(text):
    """``os/arch[/variant]`` -> dict; ``None`` -> this host's platform."""
    if text is None:
        machine = os.uname().machine
        return {'os': 'linux', 'architecture': _ARCH.get(machine, machine), 'variant': _VARIANT.get(machine)}
    parts = text.split('/') if isinstance(text, str) else []
    if len(parts) not in (2, 3) or not all(parts):
        raise ManifestError('parse', 'platform %r' % (text,), 'expected os/arch or os/arch/variant, e.g. linux/arm64')
    return {'os': parts[0], 'architecture': parts[1], 'variant': parts[2] if len(parts) == 3 else None}


def platform_str(p):
    return '/'.join(x for x in (p.get('os'), p.get('architecture'), p.get('variant')) if x)


def detect_type(data, declared=None):
    """The media type of a manifest document: its own mediaType field, else the declared one, else by shape."""
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ManifestError('parse', 'manifest', 'not JSON: %s' % exc)
    if not isinstance(doc, dict):
        raise ManifestError('parse', 'manifest', 'not a JSON object')
    mt = doc.get('mediaType') or declared
    if mt in DOCKER_SCHEMA1 or doc.get('schemaVersion') == 1:
        raise ManifestError('use', 'manifest', 'Docker schema 1 manifests are deprecated and not supported')
    if mt not in MANIFEST_TYPES + INDEX_TYPES:
        mt = OCI_INDEX if 'manifests' in doc else OCI_MANIFEST if 'config' in doc else mt
    if mt not in MANIFEST_TYPES + INDEX_TYPES:
        raise ManifestError('use', 'manifest', 'unsupported media type %r' % mt)
    return doc, mt


def _descriptor(d, what):
    if not isinstance(d, dict) or not isinstance(d.get('digest'), str) or not isinstance(d.get('size'), int) or d['size'] < 0:
        raise ManifestError('parse', 'manifest', '%s is not a valid descriptor (digest, size)' % what)
    return d


def check_manifest(doc):
    """Validate an image manifest; returns (config descriptor, layer descriptors)."""
    if doc.get('schemaVersion') != 2:
        raise ManifestError('parse', 'manifest', 'schemaVersion must be 2')
    config = _descriptor(doc.get('config'), 'config')
    layers = doc.get('layers')
    if not isinstance(layers, list):
        raise ManifestError('parse', 'manifest', 'layers must be a list')
    for i, lay in enumerate(layers):
        _descriptor(lay, 'layer %d' % i)
        if lay.get('mediaType') not in LAYER_TYPES:
            raise ManifestError('use', 'layer %s' % lay['digest'], 'unsupported layer media type %r' % lay.get('mediaType'))
    return config, layers


def select_platform(index_doc, want):
    """The descriptor in an index that matches ``want`` (variant matched when both name one)."""
    entries = index_doc.get('manifests')
    if not isinstance(entries, list):
        raise ManifestError('parse', 'index', 'manifests must be a list')
    seen = []
    for d in entries:
        p = d.get('platform') or {}
        seen.append(platform_str(p))
        if p.get('os') == want['os'] and p.get('architecture') == want['architecture']:
            if want.get('variant') and p.get('variant') and p['variant'] != want['variant']:
                continue
            return _descriptor(d, 'manifest for %s' % platform_str(p))
    raise ManifestError('find', 'an image for platform %s' % platform_str(want), 'the index offers only: %s' % (', '.join(seen) or 'nothing'))


def check_config(doc, n_layers):
    """Validate an image config against its manifest; returns the diff_ids."""
    rootfs = doc.get('rootfs') if isinstance(doc, dict) else None
    diff_ids = rootfs.get('diff_ids') if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ManifestError('parse', 'image config', 'rootfs.diff_ids is missing')
    if len(diff_ids) != n_layers:
        raise ManifestError('verify', 'image config', 'it lists %d diff_ids for %d layers' % (len(diff_ids), n_layers))
    return diff_ids
