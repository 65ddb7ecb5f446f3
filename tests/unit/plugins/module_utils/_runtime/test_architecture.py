# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The library's floor plan (docs/architecture.md), held by its import graph, built from the source with ``ast``.

Rooms are ranked; an import may only go to a room of a lower rank or stay inside its own
package. No cycles, whatever the rank: a cycle is not broken by deferring an import. The
packaging list in ``bundle.py`` imports everything and is left out.
"""
from __future__ import annotations

import ast
import os

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import bundle

LIB = os.path.dirname(os.path.abspath(bundle.__file__))

# Lowest first. A module's room is the longest prefix that names it.
RANKS = (
    ('errors', 0), ('version', 0),
    ('kernel/', 10),
    ('host/config', 20), ('host/dataroot', 20), ('host/install', 20), ('host/kmods', 20), ('host/sysctls', 20),
    ('cgroups/', 30),
    ('host/hostinfo', 40),
    ('launch/', 40),
    ('image/', 50), ('volume/', 50), ('network/', 50),
    ('named/', 60),
    ('container/store', 60),  # the records alone: what usage reads
    ('usage', 65),
    ('container/', 70),
    ('oci/', 70),
    ('host/hostsetup', 80),
    ('cli/', 90),
    ('bundle', 100),  # the packaging list: install builds the zipapp from it
)

# Imports that still run against the plan: each is a step of issue 18 still to take. The list
# may only shrink; a new entry is a design decision to argue in review, not a quick fix.
KNOWN = {
}


def modules():
    out = {}
    for dirpath, _dirs, files in os.walk(LIB):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(dirpath, name)
                out[os.path.relpath(path, LIB)[:-3].replace(os.sep, '/')] = path
    return out


def _target(mods, module, node, alias):
    parts = module.split('/')[:-1]
    if node.level > 1:
        parts = parts[:len(parts) - (node.level - 1)]
    base = '/'.join(parts + (node.module.split('.') if node.module else []))
    cand = base + '/' + alias if base else alias
    if cand in mods:
        return cand
    if base in mods:
        return base
    return base + '/__init__' if base + '/__init__' in mods else None


def graph():
    """{module: {imported library module: (line, deferred?)}} over the whole library but bundle.py."""
    mods = modules()
    edges = {}
    for module, path in mods.items():
        if module == 'bundle':
            continue
        with open(path) as f:
            tree = ast.parse(f.read())
        top = {id(n) for n in tree.body}
        out = edges.setdefault(module, {})
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level:
                for alias in node.names:
                    target = _target(mods, module, node, alias.name)
                    if target and target != module and not (module == 'host/install' and target == 'bundle'):
                        out.setdefault(target, (node.lineno, id(node) not in top))
    return edges


def rank(module):
    best = None
    for prefix, value in RANKS:
        if (module == prefix or module.startswith(prefix)) and (best is None or len(prefix) > len(best[0])):
            best = (prefix, value)
    return best


def _package(module):
    return module.rpartition('/')[0]


def test_every_module_has_a_room():
    assert [m for m in modules() if m != 'bundle' and not m.endswith('__init__') and rank(m) is None] == []


def test_no_cycles():
    edges = graph()
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    assert cycles == []


def test_imports_go_down():
    upward = {}
    for module, targets in graph().items():
        for target, (line, _deferred) in targets.items():
            if _package(module) == _package(target) and _package(module):
                continue
            if rank(target)[1] >= rank(module)[1] and rank(target)[0] != rank(module)[0]:
                upward['%s -> %s' % (module, target)] = line
    assert {k: v for k, v in upward.items() if k not in KNOWN} == {}
    assert sorted(k for k in KNOWN if k not in upward) == [], 'fixed: take them off KNOWN'


def test_deferred_imports_say_why():
    """An import inside a function is there for start-up cost, memory or an optional binding, and says so on its
    line or the two above, or the module's docstring says it for all of them ("Deferred imports: ...")."""
    unexplained = []
    for module, path in modules().items():
        if module == 'bundle':
            continue
        with open(path) as f:
            source = f.read()
        lines = source.splitlines()
        tree = ast.parse(source)
        if 'Deferred imports:' in (ast.get_docstring(tree) or ''):
            continue
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                around = ' '.join(lines[max(0, node.lineno - 3):node.end_lineno]).lower()
                if not any(word in around for word in ('imported here', 'imported only now', 'start-up cost', 'optional')):
                    unexplained.append('%s:%d' % (module, node.lineno))
    assert unexplained == []


def _top_level_names(path):
    """The names a module defines or imports at its top level (under if/try too): what ``module.name`` may read."""
    with open(path) as f:
        tree = ast.parse(f.read())
    names = set()
    for stmt in tree.body:
        for node in [stmt] + (list(ast.walk(stmt)) if isinstance(stmt, (ast.If, ast.Try)) else []):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split('.')[0] for a in node.names)
            elif isinstance(node, (ast.Assign, ast.AnnAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
    return names


def test_every_module_attribute_read_exists():
    """``converge.exec_in`` after exec moved to execute.py: an AttributeError only a run would find. Every
    ``module.name`` that reads a library module (bound by an import in the library, its modules or its tests)
    names something that module defines at its top level."""
    mods = modules()
    repo = os.path.dirname(os.path.dirname(os.path.dirname(LIB)))
    defined, missing = {}, []
    for top in ('plugins', 'tests', 'bench'):
        for dirpath, _dirs, files in os.walk(os.path.join(repo, top)):
            for name in files:
                path = os.path.join(dirpath, name)
                if not name.endswith('.py') or path == bundle.__file__.replace('.pyc', '.py'):
                    continue
                with open(path) as f:
                    tree = ast.parse(f.read())
                module = os.path.relpath(path, LIB)[:-3] if path.startswith(LIB + os.sep) else None
                bound = {}
                for node in ast.walk(tree):
                    if not isinstance(node, ast.ImportFrom):
                        continue
                    if node.level and module:
                        base = _target(mods, module, node, '') or ''
                        base = base[:-len('/__init__')] if base.endswith('/__init__') else base
                    elif node.module and '_runtime' in node.module.split('.'):
                        base = node.module.split('_runtime', 1)[1].lstrip('.').replace('.', '/')
                    else:
                        continue
                    for alias in node.names:
                        cand = base + '/' + alias.name if base else alias.name
                        if cand in mods:
                            bound[alias.asname or alias.name] = cand
                for node in ast.walk(tree):
                    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound:
                        target = bound[node.value.id]
                        if target not in defined:
                            defined[target] = _top_level_names(mods[target])
                        if node.attr not in defined[target] and not node.attr.startswith('__'):
                            missing.append('%s:%d %s.%s' % (os.path.relpath(path, repo), node.lineno, node.value.id, node.attr))
    assert missing == [], missing
