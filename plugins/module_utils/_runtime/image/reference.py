# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Image references, normalised the way Docker does (distribution/reference).

``busybox`` is ``docker.io/library/busybox:latest``; the first path component names a
registry when it has a ``.`` or ``:`` or is ``localhost``.
"""
from __future__ import annotations

import re

from ..errors import ConfigError

DEFAULT_REGISTRY = 'docker.io'
DEFAULT_TAG = 'latest'
_COMPONENT = re.compile(r'^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z')
_TAG = re.compile(r'^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}\Z')
_DIGEST = re.compile(r'^sha256:[a-f0-9]{64}\Z')
_HOST = re.compile(r'^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?\Z')


def _bad(ref, why):
    return ConfigError('parse', 'image reference %r' % ref, why)


class Reference:
    """A parsed reference: registry, repository, tag and/or digest."""

    __slots__ = ('registry', 'repository', 'tag', 'digest')

    def __init__(self, registry, repository, tag=None, digest=None):
        self.registry = registry
        self.repository = repository
        self.tag = tag
        self.digest = digest

    @classmethod
    def parse(cls, ref):
        if not isinstance(ref, str) or not ref or ref != ref.strip():
            raise _bad(ref, 'must be a non-empty string without surrounding spaces')
        name, digest = ref, None
        if '@' in ref:
            name, digest = ref.split('@', 1)
            if not _DIGEST.match(digest):
                raise _bad(ref, 'the digest must be sha256: and 64 lower-case hex digits')
        tag = None
        last = name.rsplit('/', 1)[-1]
        if ':' in last:
            name, tag = name.rsplit(':', 1)
            if not _TAG.match(tag):
                raise _bad(ref, 'invalid tag %r' % tag)
        parts = name.split('/')
        if len(parts) > 1 and ('.' in parts[0] or ':' in parts[0] or parts[0] == 'localhost'):
            registry, path = parts[0], parts[1:]
            if not _HOST.match(registry):
                raise _bad(ref, 'invalid registry host %r' % registry)
            port = registry.rsplit(':', 1)[1] if ':' in registry.rsplit(']', 1)[-1] else None
            if port is not None and not 1 <= int(port) <= 65535:
                raise _bad(ref, 'the registry port %s is not 1-65535' % port)
        else:
            registry, path = DEFAULT_REGISTRY, parts
        if registry in ('index.docker.io', 'registry-1.docker.io'):
            registry = DEFAULT_REGISTRY
        if registry == DEFAULT_REGISTRY and len(path) == 1:
            path = ['library'] + path
        for comp in path:
            if not _COMPONENT.match(comp):
                raise _bad(ref, 'invalid repository name component %r (lower-case letters, digits, separators . _ __ -)' % comp)
        repository = '/'.join(path)
        if len(registry) + 1 + len(repository) > 255:
            raise _bad(ref, 'the name is longer than 255 characters')
        if tag is None and digest is None:
            tag = DEFAULT_TAG
        return cls(registry, repository, tag, digest)

    @property
    def name(self):
        """``registry/repository``, without tag or digest."""
        return '%s/%s' % (self.registry, self.repository)

    @property
    def key(self):
        """How the store's index names this reference: by tag when there is one, else by digest."""
        return '%s:%s' % (self.name, self.tag) if self.tag else '%s@%s' % (self.name, self.digest)

    def __str__(self):
        out = self.name
        if self.tag:
            out += ':' + self.tag
        if self.digest:
            out += '@' + self.digest
        return out

    def __repr__(self):
        return 'Reference(%r)' % str(self)

    def __eq__(self, other):
        return isinstance(other, Reference) and str(self) == str(other)

    def __hash__(self):
        return hash(str(self))
