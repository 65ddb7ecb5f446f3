# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The runtime's version (kept equal to galaxy.yml's by a unit test)."""
from __future__ import annotations

VERSION = '0.1.0'
