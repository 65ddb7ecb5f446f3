# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's security settings: ``security_opt`` parsed into its stored form, and the stored
config turned into what the container process gets (capabilities, no_new_privs, seccomp, masked
and read-only paths) — one place for ``start`` (supervisor) and ``exec`` (service).

Defaults: Docker's 14 capabilities, Docker's default seccomp profile, Docker's masked and read-only
paths, read-only /sys, and no_new_privs **on** (Docker and podman leave it off unless asked).
``privileged`` lifts all of these but no_new_privs (which security_opt sets either way).
"""
from __future__ import annotations

import json

from ..errors import ConfigError
from ..launch import caps
from ..launch import seccomp as seccomp_profiles

# security_opt's stored form when not given: Docker's default seccomp profile, and no_new_privs on
# (stricter than Docker and podman, whose default is off).
DEFAULT_SECURITY = {'no_new_privileges': True, 'seccomp': 'default'}


def read_seccomp_profile(path):
    """A seccomp profile file in Docker's JSON format (on the managed host) -> {'path', 'profile'}: the
    profile is stored resolved, so a changed file is a changed config (the container is recreated)."""
    if not path.startswith('/'):
        raise ConfigError('use', 'security_opt seccomp=%s' % path, 'give the profile file as an absolute path')
    try:
        with open(path, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError('read', 'seccomp profile %s' % path, getattr(exc, 'strerror', None) or str(exc), path=path) from None
    except ValueError as exc:
        raise ConfigError('parse', 'seccomp profile %s' % path, 'not JSON: %s' % exc, path=path) from None
    return {'path': path, 'profile': seccomp_profiles.parse_profile(data, 'seccomp profile %s' % path)}


def parse_security_opt(items):
    """Docker's --security-opt forms -> {'no_new_privileges': bool, 'seccomp': 'default' | 'unconfined' | {path, profile}}.

    ``seccomp=unconfined``, ``seccomp=/path/profile.json`` (``seccomp:`` too, Docker's older form),
    ``no-new-privileges`` and ``no-new-privileges[=:]true|false``. AppArmor and SELinux labels are refused:
    this runtime applies neither, and an option accepted and ignored would claim a protection."""
    out = dict(DEFAULT_SECURITY)
    seen = set()
    for item in items or ():
        text = str(item).strip()
        key, sep, value = text.partition('=')
        if not sep and ':' in text:
            key, sep, value = text.partition(':')
        key = key.strip()
        what = 'security_opt %r' % text
        if key in seen:
            raise ConfigError('use', what, '%s is given more than once' % key)
        seen.add(key)
        if key == 'no-new-privileges':
            flag = value.strip().lower() if sep else 'true'
            if flag not in ('true', 'false'):
                raise ConfigError('use', what, 'expected no-new-privileges, no-new-privileges=true or no-new-privileges=false')
            out['no_new_privileges'] = flag == 'true'
        elif key == 'seccomp':
            value = value.strip()
            if value == 'unconfined':
                out['seccomp'] = 'unconfined'
            elif value in ('builtin', 'default'):
                out['seccomp'] = 'default'
            elif value:
                out['seccomp'] = read_seccomp_profile(value)
            else:
                raise ConfigError('use', what, 'expected seccomp=unconfined or seccomp=/path/to/profile.json')
        elif key in ('apparmor', 'label', 'systempaths', 'mask', 'unmask'):
            raise ConfigError('use', what, 'not supported by this version of nsbox (it has seccomp and no-new-privileges)')
        else:
            raise ConfigError('use', what, 'expected seccomp=unconfined, seccomp=/path/profile.json or no-new-privileges[=true|false]')
    return out


def process_settings(config, bounding=None):
    """The security part of a process spec from a stored config (configs of older versions lack the
    fields: their defaults). ``bounding``: the host's capability bounding set (privileged; read from
    this process when None)."""
    sec = config.get('security_opt') or DEFAULT_SECURITY
    privileged = bool(config.get('privileged'))
    capabilities = caps.container_set(config.get('cap_add') or (), config.get('cap_drop') or (), privileged,
                                      bounding if bounding is not None or not privileged else caps.bounding_set())
    profile = sec.get('seccomp', 'default')
    if privileged or profile == 'unconfined':
        seccomp = None
    elif profile == 'default':
        seccomp = seccomp_profiles.DEFAULT_PROFILE
    else:
        seccomp = profile['profile']
    out = {'capabilities': list(capabilities), 'no_new_privs': bool(sec.get('no_new_privileges', True)), 'seccomp': seccomp}
    if privileged:
        out.update(masked_paths=[], readonly_paths=[], writable_sys=True)
    return out
