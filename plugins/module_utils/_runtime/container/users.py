# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``user`` (name, uid, name:group, uid:gid) resolved in the image's /etc/passwd and /etc/group, as Docker does."""
from __future__ import annotations

from ..errors import ConfigError


def _entries(text, fields):
    out = []
    for line in (text or '').splitlines():
        if not line or line.startswith('#'):
            continue
        parts = line.split(':')
        if len(parts) >= fields:
            out.append(parts)
    return out


def _num(text):
    return int(text) if text.isdigit() else None


def resolve(user, passwd_text, group_text, group_add=()):
    """-> {'uid', 'gid', 'additional_gids', 'home'}; ``*_text`` are the files' contents or None if missing.

    A numeric uid need not exist in passwd (then gid 0 and home /); a name must. Supplementary
    groups are the groups of /etc/group that list the user's name, then ``group_add`` (names
    found in /etc/group, or gids), as Docker's --group-add.
    """
    user = (user or '0').strip()
    name_part, sep, group_part = user.partition(':')
    passwd = _entries(passwd_text, 7)
    groups = _entries(group_text, 4)
    uid, gid, home, uname = _num(name_part), None, '/', None
    match = None
    for p in passwd:
        if (uid is None and p[0] == name_part) or (uid is not None and _num(p[2]) == uid):
            match = p
            break
    if match is not None:
        uname, uid, gid, home = match[0], int(match[2]), _num(match[3]), match[5] or '/'
    elif uid is None:
        raise ConfigError('find', 'user %r' % name_part, 'no matching entry in the image\'s /etc/passwd')
    if uid > 4294967294:
        raise ConfigError('use', 'user %r' % user, 'uid out of range')
    if sep:
        gid = _num(group_part)
        if gid is None:
            for g in groups:
                if g[0] == group_part:
                    gid = _num(g[2])
                    break
            else:
                raise ConfigError('find', 'group %r' % group_part, 'no matching entry in the image\'s /etc/group')
    gid = 0 if gid is None else gid
    extra = []
    if uname:
        for g in groups:
            members = [m for m in g[3].split(',') if m]
            gnum = _num(g[2])
            if uname in members and gnum is not None and gnum != gid and gnum not in extra:
                extra.append(gnum)
    for name in group_add:
        gnum = _num(name)
        if gnum is None:
            gnum = next((_num(g[2]) for g in groups if g[0] == name), None)
            if gnum is None:
                raise ConfigError('find', 'group_add group %r' % name, 'no matching entry in the image\'s /etc/group')
        if gnum > 4294967294:
            raise ConfigError('use', 'group_add %r' % name, 'gid out of range')
        if gnum not in extra:
            extra.append(gnum)
    return {'uid': uid, 'gid': gid, 'additional_gids': extra, 'home': home}
