# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``depends_order`` filter: declared containers in an order where each comes after what it depends on
(the library's ``container/order.py``, on the controller; its errors as filter errors)."""
from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import order
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError


def depends_order(containers):
    """``containers`` (list of dicts with ``name`` and optional ``depends_on``) sorted so dependencies come first."""
    try:
        return order.depends_order(containers)
    except ConfigError as exc:
        raise AnsibleFilterError(exc.message) from None


class FilterModule:
    """nsbox.runtime filters."""

    def filters(self):
        return {'depends_order': depends_order}
