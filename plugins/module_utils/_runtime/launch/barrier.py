# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release of a container init held at its start barrier (process.start's ``barrier``).

The init's side is in process.py; the release is here, apart, because the one who releases (the
OCI runtime's ``start``, a process of its own) needs nothing else of the container process code,
and every call of the OCI command line is a new interpreter that pays for each import again.
"""
from __future__ import annotations

import errno
import os
import select
import time

from ..errors import NsboxError
from ..kernel.namespaces import process_stamp

READY = b'ready'  # what the init reports on its error pipe once it waits at the barrier (not JSON: an error report is)
TIMEOUT = 60.0


class BarrierError(NsboxError):
    """The init held at a barrier could not be released (gone, or it never passed)."""


def release(path, pid, start_time=None, timeout=TIMEOUT):
    """Open the barrier FIFO at ``path`` for reading: the init ``pid`` waiting at it goes on to its exec.
    Returns once it passed (its byte read); BarrierError if it ended (or was never there) meanwhile.
    ``start_time``: the init's, from /proc/<pid>/stat (a reused pid is not the init)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise BarrierError.from_oserror('open', 'the start barrier of process %d' % pid, exc) from None
    try:
        deadline = time.monotonic() + timeout
        while not select.select([fd], [], [], 0.05)[0]:
            stamp = process_stamp(pid)
            if stamp is None or stamp[0] in ('Z', 'X', 'x') or (start_time is not None and stamp[1] != start_time):
                raise BarrierError('start', 'process %d' % pid, 'it ended before it was started', errno=errno.ESRCH)
            if time.monotonic() > deadline:
                raise BarrierError('start', 'process %d' % pid, 'it did not pass its barrier within %.0f s' % timeout, errno=errno.ETIMEDOUT)
        os.read(fd, 1)
    finally:
        os.close(fd)
