# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container logs in Docker's json-file format, rotation included, and reading their tail.

One JSON object per line: ``{"log": "text\\n", "stream": "stdout", "time": "<RFC 3339, ns>"}``.
Output is cut at newlines; a line longer than 16 KiB becomes several entries whose text has
no newline but the last's (Docker's partial messages). Logs are not state: no fsync per line;
rotation renames (``log`` -> ``log.1`` -> ``log.2``...), so a crash never loses the current file.
"""
from __future__ import annotations

import errno
import json
import os
import select
import time

from ..errors import ConfigError, NsboxError
from ..units import parse_size as _parse_size

LINE_MAX = 16 * 1024
READ_CHUNK = 65536


def parse_size(value, what='log max_size'):
    """Docker's max-size strings: ``10m``, ``1g``, ``512k``, bytes."""
    size = _parse_size(value, what)
    if size <= 0:
        raise ConfigError('use', what, 'expected a size above 0, not %r' % (value,))
    return size


def timestamp(t=None):
    t = time.time() if t is None else t
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)) + '.%09dZ' % int(round((t % 1) * 1e9) % 1000000000)


class JsonFileLog:
    """Append entries to ``path``; rotate at ``max_size`` keeping ``max_files`` files in all."""

    def __init__(self, path, max_size=None, max_files=1):
        self.path, self.max_size, self.max_files = path, max_size, max(1, int(max_files or 1))
        self.pending = {}
        self.fd = None
        self.size = 0

    def _open(self):
        if self.fd is None:
            self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self.size = os.fstat(self.fd).st_size

    def _rotate(self):
        os.close(self.fd)
        self.fd = None
        if self.max_files > 1:
            for i in range(self.max_files - 1, 0, -1):
                src = self.path if i == 1 else '%s.%d' % (self.path, i - 1)
                if os.path.exists(src):
                    os.rename(src, '%s.%d' % (self.path, i))
        else:
            os.unlink(self.path)

    def _entry(self, stream, text):
        line = json.dumps({'log': text.decode('utf-8', 'replace'), 'stream': stream, 'time': timestamp()},
                          ensure_ascii=False).encode('utf-8') + b'\n'
        self._open()
        if self.max_size and self.size and self.size + len(line) > self.max_size:
            self._rotate()
            self._open()
        os.write(self.fd, line)
        self.size += len(line)

    def write(self, stream, data):
        buf = self.pending.get(stream, b'') + data
        while True:
            nl = buf.find(b'\n')
            if nl == -1 or nl >= LINE_MAX:
                if len(buf) < LINE_MAX:
                    break
                self._entry(stream, buf[:LINE_MAX])  # a partial message: no newline
                buf = buf[LINE_MAX:]
                continue
            self._entry(stream, buf[:nl + 1])
            buf = buf[nl + 1:]
        self.pending[stream] = buf

    def close(self):
        for stream, buf in sorted(self.pending.items()):
            if buf:
                self._entry(stream, buf)
        self.pending = {}
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _lines_from_end(path, want):
    """The last ``want`` complete lines of a file (bytes), read backwards in chunks."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        end = os.fstat(fd).st_size
        buf = b''
        pos = end
        while pos > 0 and (not want or buf.count(b"\n") <= want):
            step = min(READ_CHUNK, pos)
            pos -= step
            buf = os.pread(fd, step, pos) + buf
    finally:
        os.close(fd)
    lines = buf.split(b'\n')
    if pos > 0:
        lines = lines[1:]  # the first may be cut
    return [ln for ln in lines if ln][-want:] if want else [ln for ln in lines if ln]


def tail(path, lines=None, max_files=1):
    """The last ``lines`` entries (all when None) across the rotated files, oldest first; torn lines skipped."""
    out = []
    files = [path] + ['%s.%d' % (path, i) for i in range(1, max(1, max_files))]
    for name in files:
        if lines is not None and len(out) >= lines:
            break
        need = None if lines is None else lines - len(out)
        entries = []
        for raw in _lines_from_end(name, need if need is not None else 0) if need != 0 else []:
            try:
                entry = json.loads(raw.decode('utf-8', 'replace'))
            except ValueError:
                continue  # a line torn by a crash mid-write
            if isinstance(entry, dict) and 'log' in entry:
                entries.append({'stream': entry.get('stream'), 'log': entry['log'], 'time': entry.get('time')})
        out = entries + out
    return out[-lines:] if lines else out


def text(entries):
    return ''.join(e['log'] for e in entries)


def relay(fds, log, stop, poll=0.5):
    """Copy non-blocking fds ({stream: fd}, e.g. FIFO read ends) into ``log`` until all reach EOF
    or ``stop()`` is true; then drain what is buffered. A FIFO's EOF comes once every writer closed."""
    open_fds = dict(fds)
    while open_fds:
        ready = select.select(list(open_fds.values()), [], [], poll)[0]
        for stream, fd in list(open_fds.items()):
            if fd in ready and not _read_into(fd, stream, log):
                del open_fds[stream]
        if stop():
            break
    for stream, fd in open_fds.items():  # what was written before the end
        while _read_into(fd, stream, log, drain=True):
            pass


def _read_into(fd, stream, log, drain=False):
    """Read once; False at EOF (or nothing left when draining)."""
    try:
        data = os.read(fd, READ_CHUNK)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            return not drain
        raise NsboxError.from_oserror('read', 'the container output', exc)
    if not data:
        return False
    log.write(stream, data)
    return True
