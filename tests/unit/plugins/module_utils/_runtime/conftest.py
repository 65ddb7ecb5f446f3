# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The library's unit tests: a child the fake kernel forked for real never returns into pytest."""
from __future__ import annotations

import os

import pytest

PARENT = os.getpid()


@pytest.fixture(autouse=True)
def never_return_into_pytest():
    """A forked child that came back into the test (a bug: children end by exit_process or execve) ends here."""
    yield
    if os.getpid() != PARENT:
        os._exit(99)  # pylint: disable=protected-access
