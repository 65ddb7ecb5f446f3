# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Options every nsbox.runtime module shares."""
from __future__ import annotations


class ModuleDocFragment:  # pylint: disable=too-few-public-methods
    DOCUMENTATION = r'''
options:
  data_root:
    description:
      - The runtime's data-root on the managed host (images, layers, containers, volumes).
      - Overrides O(data_root) from the host configuration C(/etc/nsbox/config.json),
        whose default is C(/var/lib/nsbox).
    type: path
notes:
  - The modules run as root on Linux managed hosts with Python 3.9 or newer.
  - The first module run on a host installs the runtime library as a compiled, read-only tree under
    C(/usr/local/lib/nsbox) with the C(/usr/local/bin/nsbox) command; later runs reuse it
    and replace it atomically when the collection changes.
'''
