# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What uses an image, a network or a volume: read from the containers' records (DESIGN D3:
garbage is found from references, never from counters that drift).

The image, network and volume rooms never import the container room; whatever in them must
know "is this in use" takes a ``References`` from here (their fronts pass ``References(cfg)``).
"""
from __future__ import annotations

from .container.store import ContainerStore
from .volume.volumes import volume_mounts


class References:
    """The containers of one data-root, as users of images, networks and volumes."""

    def __init__(self, cfg):
        self._store = ContainerStore(cfg)

    def lock(self):
        """The containers' creation lock: no container starts using a thing while it is removed (lock order: container first)."""
        return self._store.lock()

    def images(self):
        """Manifest digests of the images containers were made from."""
        return self._store.images_in_use()

    def networks(self):
        """Names of the networks any container's config names (attached or not)."""
        return {n['name'] for c in self._store.all() for n in c.config.get('networks') or ()}

    def volume_users(self):
        """A function: volume name -> sorted names of the containers (any state) that mount it (one read of the store)."""
        containers = self._store.all()
        return lambda name: sorted(c.name for c in containers if any(m['source'] == name for m in volume_mounts(c.config)))
