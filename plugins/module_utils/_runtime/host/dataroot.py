# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The data-root's fixed layout (DESIGN D3): its directories and modes, ``store.json``, and
whether it holds anything a user would lose. The image store makes it on first use and the
host set-up converges it; both take it from here.
"""
from __future__ import annotations

import os

from ..kernel.fsutil import write_json

STORE_SCHEMA = 1
DATA_ROOT_MODE = 0o711
STATE_DIR_MODE = 0o711
# DESIGN D3: the data-root's fixed layout.
DATA_SUBDIRS = (('blobs', 0o700), ('blobs/sha256', 0o700), ('layers', 0o700), ('layers/l', 0o700),
                ('images', 0o700), ('containers', 0o711), ('volumes', 0o711), ('networks', 0o700),
                ('ipam', 0o700), ('tmp', 0o700))


def mode_of(path):
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return None


def store_in_use(data_root):
    """True when the store holds layers or containers (its driver can no longer change)."""
    for sub in ('layers', 'containers'):
        try:
            if any(n != 'l' for n in os.listdir(os.path.join(data_root, sub))):
                return True
        except FileNotFoundError:
            pass
    return False


def data_root_in_use(data_root):
    """True when the data-root holds anything a user would lose: layers, containers, volumes or blobs."""
    if store_in_use(data_root):
        return True
    for sub in ('volumes', 'blobs/sha256'):
        try:
            if any(not n.startswith('.') for n in os.listdir(os.path.join(data_root, sub))):
                return True
        except FileNotFoundError:
            pass
    return False


def write_store(data_root, storage_driver):
    """Record the data-root's storage driver in ``store.json`` (D3)."""
    write_json(os.path.join(data_root, 'store.json'), {'schema_version': STORE_SCHEMA, 'storage_driver': storage_driver}, 0o600)
