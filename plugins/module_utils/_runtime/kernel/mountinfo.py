# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""/proc/<pid>/mountinfo, parsed once for everyone (overlay mounts, cgroup hierarchies, persisted namespaces)."""
from __future__ import annotations

import re

from ..errors import NsboxError


class Mount:
    """One line of mountinfo (proc(5)): where, what, and with which options."""

    __slots__ = ('mount_id', 'parent_id', 'root', 'mount_point', 'options', 'propagation', 'fstype', 'source', 'super_options')

    def __init__(self, mount_id, parent_id, root, mount_point, options, propagation, fstype, source, super_options):
        self.mount_id, self.parent_id, self.root, self.mount_point = mount_id, parent_id, root, mount_point
        self.options, self.propagation, self.fstype, self.source, self.super_options = options, propagation, fstype, source, super_options

    def super_option(self, name):
        """The value of ``name=value`` among the superblock options (None if absent)."""
        for opt in self.super_options:
            key, sep, value = opt.partition('=')
            if key == name:
                return value if sep else ''
        return None


_ESCAPE = re.compile(r'\\([0-7]{3})')
_UNESCAPED_COMMA = re.compile(r'(?<!\\),')


def unescape(field):
    """mountinfo writes space, tab, newline and backslash as \\ooo octal escapes."""
    if '\\' not in field:  # nearly every field: no copy, no scan
        return field
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def _split_options(text):
    """Comma-separated options; overlay's lowerdir may hold escaped commas ('\\,'), kept together."""
    if '\\,' not in text:
        return [o for o in text.split(',') if o]
    return [o.replace('\\,', ',') for o in _UNESCAPED_COMMA.split(text) if o]


def parse(text):
    """All mounts, in the kernel's order (later mounts on the same point hide earlier ones)."""
    mounts = []
    for line in text.splitlines():
        left, sep, right = line.partition(' - ')
        if not sep:
            continue
        fields, rfields = left.split(' '), right.split(' ')
        if len(fields) < 6 or len(rfields) < 3:
            continue
        propagation = [f for f in fields[6:] if f]
        mounts.append(Mount(int(fields[0]), int(fields[1]), unescape(fields[3]), unescape(fields[4]), fields[5].split(','),
                            propagation, rfields[0], unescape(rfields[1]), [unescape(o) for o in _split_options(rfields[2])]))
    return mounts


def read(path='/proc/self/mountinfo'):
    try:
        with open(path) as f:
            return parse(f.read())
    except OSError as exc:
        raise NsboxError.from_oserror('read', 'the mount table', exc)


def find(mount_point, path='/proc/self/mountinfo', mounts=None):
    """The topmost mount at ``mount_point`` (the one a process sees), or None."""
    found = None
    for m in mounts if mounts is not None else read(path):
        if m.mount_point == mount_point:
            found = m
    return found
