# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Declared containers in an order where each comes after what it depends on.

Containers declared together (the ``containers`` module, the containers role through the
``depends_order`` filter) are converged one by one, so a container's dependencies must exist
(and run) before it is converged, as ``docker compose up`` orders services. The order is a
stable topological sort (Kahn's algorithm): containers keep their declared order wherever
``depends_on`` allows it, so an unchanged list always converges in the same order. Plain data
in, plain data out: the controller's filter and the host's module share it.
"""
from __future__ import annotations

from ..errors import ConfigError


def _deps(container):
    deps = container.get('depends_on') or []
    if isinstance(deps, str):
        deps = [deps]
    if isinstance(deps, dict):  # compose's long form: {name: {condition: ...}}
        deps = list(deps)
    if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
        raise ConfigError('order', 'containers', 'depends_on of %r must be a list of container names, not %r'
                          % (container.get('name'), deps))
    return deps


def _find_cycle(names, deps):
    """One dependency cycle among ``names`` (which all lie on or behind cycles), as a list of names."""
    path, seen = [], set()
    node = names[0]
    while node not in seen:
        seen.add(node)
        path.append(node)
        node = next(d for d in deps[node] if d in names)
    return path[path.index(node):] + [node]


def depends_order(containers):
    """``containers`` (list of dicts with ``name`` and optional ``depends_on``) sorted so dependencies come first."""
    if not isinstance(containers, list):
        raise ConfigError('order', 'containers', 'expected a list of containers, not %r' % (containers,))
    by_name, order = {}, []
    for c in containers:
        name = c.get('name') if isinstance(c, dict) else None
        if not name:
            raise ConfigError('order', 'containers', 'every container needs a name (%r has none)' % (c,))
        if name in by_name:
            raise ConfigError('order', 'containers', '%r is declared twice' % name)
        by_name[name] = c
        order.append(name)
    deps = {name: _deps(c) for name, c in by_name.items()}
    for name in order:
        unknown = [d for d in deps[name] if d not in by_name]
        if unknown:
            raise ConfigError('order', 'containers', '%r depends on %s, which %s not declared'
                              % (name, ', '.join(repr(u) for u in unknown), 'is' if len(unknown) == 1 else 'are'))
    done, result = set(), []
    while len(result) < len(order):
        ready = [n for n in order if n not in done and all(d in done for d in deps[n])]
        if not ready:
            left = [n for n in order if n not in done]
            raise ConfigError('order', 'containers', 'depends_on has a cycle: %s' % ' -> '.join(_find_cycle(left, deps)))
        # Declared order wins among the ready ones: take the first, then look again.
        done.add(ready[0])
        result.append(by_name[ready[0]])
    return result
