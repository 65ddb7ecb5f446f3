# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Container logs in Docker's json-file format, rotation included, and reading their tail.

One JSON object per line, byte for byte what dockerd writes (``jsonlog.MarshalJSONBuf``)::

    {"log":"text\\n","stream":"stdout","time":"2026-11-22T22:31:21.123456789Z"}

Output is cut at newlines; a line longer than 16 KiB becomes several entries whose text has no
newline but the last's, all with the time of the first (Docker's partial messages). A line
still pending when its stream ends is written without a newline. Bytes that are not UTF-8
become U+FFFD one byte at a time, as Go's decoder does.

Logs are not state: no fsync per line. Rotation renames (``log.1`` -> ``log.2``, then ``log`` ->
``log.1``) before a new ``log`` is created, so at every instant of a crash the current file
exists under one of the two names. A writer that finds a line torn by a crash ends it with a
newline before appending, and readers skip lines that are not JSON.

This module is loaded by the lean monitor (``python -I -S``): keep its imports few and light.
"""
from __future__ import annotations

import errno
import json
import os
import re
import select
import sys
import time

from ..errors import ConfigError, NsboxError
from ..kernel.units import parse_size as _parse_size

LINE_MAX = 16 * 1024          # Docker's copier buffer: longer lines become partial entries
READ_CHUNK = 65536            # one read of a FIFO, one step of reading a file backwards
POLL_SECONDS = 0.5            # relay(): how often stop() is asked while the fds are quiet
DRAIN_MAX = 16 * READ_CHUNK   # relay(): what is still read per fd after stop(), at most
ENTRY_MAX = 1 << 20           # longer than any entry (16 KiB escaped is < 100 KiB): garbage

# Go's encoder as dockerd uses it: \\ \" \n \r short, other controls, < > & and U+2028/9 as \uXXXX;
# an invalid byte (a lone surrogate after decoding with surrogateescape) as \ufffd.
_ESCAPES = {c: '\\u%04x' % c for c in list(range(0x20)) + [ord('<'), ord('>'), ord('&'), 0x2028, 0x2029]}
_ESCAPES.update({ord('\\'): '\\\\', ord('"'): '\\"', ord('\n'): '\\n', ord('\r'): '\\r'})
_ESCAPES.update({c: '\\ufffd' for c in range(0xdc80, 0xdd00)})
# Where Go and Python's C encoder (json.encoder.encode_basestring) differ: only then the slow way.
_GO_ONLY = re.compile('[\x00-\x09\x0b\x0c\x0e-\x1f<>&\u2028\u2029\udc80-\udcff]')


def parse_size(value, what='log max_size'):
    """Docker's ``max-size``: ``10m``, ``1g``, ``512k`` (binary units) or a number of bytes; above 0."""
    size = _parse_size(value, what)
    if size <= 0:
        raise ConfigError('parse', what, 'expected a size above 0 such as 10m, not %r' % (value,))
    return size


def parse_max_files(value, what='log max_files'):
    """Docker's ``max-file``: how many files in all (the current one and the rotated ones), at least 1."""
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdecimal() or int(value) < 1:
        raise ConfigError('parse', what, 'expected a whole number of at least 1, not %r' % (value,))
    return int(value)


def timestamp(ns=None):
    """RFC 3339 in UTC with exactly nine fraction digits (Docker's ``RFC3339NanoFixed``)."""
    seconds, frac = divmod(time.time_ns() if ns is None else ns, 1000000000)
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(seconds)) + '.%09dZ' % frac


def _json_string(data):
    """``data`` (bytes) as a JSON string, escaped exactly as dockerd escapes a log line."""
    text = data.decode('utf-8', 'surrogateescape')
    if _GO_ONLY.search(text):
        return '"' + text.translate(_ESCAPES) + '"'
    return json.encoder.encode_basestring(text)


def encode_entry(stream, data, ns):
    """One log line (bytes, newline-terminated) for ``data`` read from ``stream`` at ``ns`` (ns since the epoch)."""
    return _encode(_json_string(stream.encode()), data, timestamp(ns))


def _encode(stream_json, data, stamp):
    return ('{"log":%s,"stream":%s,"time":"%s"}\n' % (_json_string(data), stream_json, stamp)).encode('utf-8')


class JsonFileLog:
    """Append entries to ``path`` (O_APPEND); rotate at ``max_size`` bytes keeping ``max_files`` files in all.

    ``write()`` and ``close()`` raise NsboxError when the file cannot be written; the entries of
    that call are lost, the next call opens the file again. ``clock`` (ns since the epoch) is for tests.
    """

    def __init__(self, path, max_size=None, max_files=1, clock=time.time_ns):
        self.path = path
        self.max_size = None if max_size is None else parse_size(max_size)
        self.max_files = parse_max_files(max_files)
        self.clock = clock
        self.fd = None
        self.size = 0
        self._pending = {}   # stream -> bytes of a line not ended yet (< LINE_MAX)
        self._since = {}     # stream -> time of the first piece of a line already cut at LINE_MAX
        self._stamp = (None, '')

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def write(self, stream, data):
        """Log ``data`` (bytes) read from ``stream`` ('stdout' or 'stderr'); a line not ended waits for more."""
        buf = self._pending.pop(stream, b'') + data
        now = self.clock()
        stream_json = _json_string(stream.encode())
        since = self._since.pop(stream, None)
        entries = []
        start, end = 0, len(buf)
        while True:
            nl = buf.find(b'\n', start, start + LINE_MAX)
            if nl != -1:
                entries.append(_encode(stream_json, buf[start:nl + 1], self._timestamp(now if since is None else since)))
                since, start = None, nl + 1
            elif end - start >= LINE_MAX:  # 16 KiB without a newline: a partial entry, as Docker's copier
                since = now if since is None else since
                entries.append(_encode(stream_json, buf[start:start + LINE_MAX], self._timestamp(since)))
                start += LINE_MAX
            else:
                break
        if start < end:
            self._pending[stream] = buf[start:]
        if since is not None:
            self._since[stream] = since
        self._append(entries)

    def close(self):
        """Write the lines still pending (without newline) and close the file; closing twice is harmless."""
        try:
            now = self.clock()
            self._append([encode_entry(stream, buf, self._since.get(stream, now)) for stream, buf in self._pending.items()])
        finally:
            self._pending, self._since = {}, {}
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None

    def _timestamp(self, ns):
        if self._stamp[0] != ns:  # one strftime per read, not per line
            self._stamp = (ns, timestamp(ns))
        return self._stamp[1]

    # -- the file ------------------------------------------------------------------------------
    def _append(self, entries):
        if not entries:
            return
        try:
            self._open()
            batch, batch_size = [], 0
            for entry in entries:
                if self.max_size and self.size + batch_size and self.size + batch_size + len(entry) > self.max_size:
                    self._write(b''.join(batch))
                    batch, batch_size = [], 0
                    self._rotate()
                batch.append(entry)
                batch_size += len(entry)
            self._write(b''.join(batch))
        except OSError as exc:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            raise NsboxError.from_oserror('write', 'the container log %s' % self.path, exc) from None

    def _open(self, truncate=False):
        if self.fd is not None:
            return
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC | (os.O_TRUNC if truncate else 0)
        self.fd = os.open(self.path, flags, 0o600)
        self.size = os.fstat(self.fd).st_size
        if self.size and os.pread(self.fd, 1, self.size - 1) != b'\n':
            self._write(b'\n')  # a line torn by a crash: end it, so that the next entry stays readable

    def _write(self, data):
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            self.size += written
            view = view[written:]

    def _rotate(self):
        """``log.(n-2)`` -> ``log.(n-1)`` (dropping the oldest) ... ``log`` -> ``log.1``, then a new ``log``.

        Each step is a rename, so a crash leaves every file under some name. With one file in all,
        the file starts over (Docker truncates it too).
        """
        os.close(self.fd)
        self.fd = None
        if self.max_files > 1:
            for i in range(self.max_files - 1, 0, -1):
                try:
                    os.rename(self.path if i == 1 else '%s.%d' % (self.path, i - 1), '%s.%d' % (self.path, i))
                except FileNotFoundError:
                    pass
        self._open(truncate=self.max_files == 1)


# -- reading ----------------------------------------------------------------------------------
def rotated_names(path, max_files=1):
    """The log's files, newest first: ``path``, ``path.1`` ... ``path.(max_files-1)``."""
    return [path] + ['%s.%d' % (path, i) for i in range(1, max(1, max_files))]


def _lines_backwards(fd):
    """The lines of an open file from the last to the first, read backwards in chunks (bytes, no newline).

    A run without a newline longer than any entry (a crash can leave a block of NULs) is dropped
    instead of being collected. Stops early when the file shrinks meanwhile (truncated by rotation).
    """
    pos = os.fstat(fd).st_size
    rest = b''          # the end of a line whose beginning lies in an earlier chunk
    skipping = False    # inside an overlong run: drop it up to its first newline
    while pos > 0:
        step = min(READ_CHUNK, pos)
        pos -= step
        chunk = os.pread(fd, step, pos)
        if len(chunk) != step:
            return
        parts = (chunk + rest).split(b'\n')
        rest = parts[0]
        if skipping:
            if len(parts) == 1:
                rest = b''
                continue
            parts[-1], skipping = b'', False  # the beginning of the overlong run
        yield from reversed(parts[1:])
        if len(rest) > ENTRY_MAX:
            rest, skipping = b'', True
    if not skipping:
        yield rest


def _entry(line):
    if not line:
        return None
    try:
        data = json.loads(line)
    except ValueError:  # torn by a crash mid-write, or not UTF-8
        return None
    if not isinstance(data, dict) or not isinstance(data.get('log'), str):
        return None
    return {'stream': data.get('stream'), 'log': data['log'], 'time': data.get('time')}


def tail(path, lines=None, max_files=1):
    """The last ``lines`` entries (all when None or negative) across ``path`` and its rotated files, oldest first.

    Each entry is ``{'stream', 'log', 'time'}``. Files are read from their end, as far as needed;
    lines that are not entries (torn by a crash) are skipped. The files are opened newest first and
    a file seen twice (renamed by a rotation meanwhile) is read once. Missing files are no error.
    """
    if lines is not None and lines < 0:
        lines = None
    if lines == 0:
        return []
    fds, seen = [], set()
    try:
        for name in rotated_names(path, max_files):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) in seen:
                os.close(fd)
                continue
            seen.add((st.st_dev, st.st_ino))
            fds.append(fd)
        found = []
        for fd in fds:
            for line in _lines_backwards(fd):
                entry = _entry(line)
                if entry is not None:
                    found.append(entry)
                    if lines is not None and len(found) >= lines:
                        return found[::-1]
        return found[::-1]
    except OSError as exc:
        raise NsboxError.from_oserror('read', 'the container log %s' % path, exc) from None
    finally:
        for fd in fds:
            os.close(fd)


def text(entries):
    """The entries' text joined, as ``docker logs`` prints it (both streams interleaved)."""
    return ''.join(e['log'] for e in entries)


class Follower:
    """New entries of a json-file log as they are written (``nsbox logs -f``), across rotations.

    Opened at the current end of ``path`` before the history is read with ``tail``; ``skip`` then
    drops the entries both saw (timestamps are in nanoseconds), so nothing is printed twice or lost.
    A rotation is seen by inode (``path`` now another file: the old one is read to its end first)
    or by size (the file truncated in place: read again from its start).
    """

    def __init__(self, path):
        self.path = path
        self.fd, self.buf, self.seen = None, b'', set()
        self._open(at_end=True)

    def _open(self, at_end=False):
        try:
            self.fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            self.fd = None
            return
        if at_end:
            os.lseek(self.fd, 0, os.SEEK_END)

    def skip(self, entries):
        self.seen = {(e['time'], e['stream'], e['log']) for e in entries}

    def read(self):
        """The entries written since the last read, oldest first."""
        out = []
        if self.fd is None:
            self._open()
        while self.fd is not None:
            if os.fstat(self.fd).st_size < os.lseek(self.fd, 0, os.SEEK_CUR):  # truncated by a rotation (max_files 1)
                os.lseek(self.fd, 0, os.SEEK_SET)
                self.buf = b''
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                self.buf += chunk
            *lines, self.buf = self.buf.split(b'\n')
            for line in lines:
                entry = _entry(line)
                if entry is not None and (entry['time'], entry['stream'], entry['log']) not in self.seen:
                    out.append(entry)
            try:
                rotated = os.stat(self.path).st_ino != os.fstat(self.fd).st_ino
            except FileNotFoundError:
                rotated = False
            if not rotated:
                break
            os.close(self.fd)
            self.buf = b''
            self._open()
        return out

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# -- relaying ---------------------------------------------------------------------------------
def relay(fds, log, stop, timeout=POLL_SECONDS, on_error=None, wake=None):
    """Copy ``fds`` ({stream: fd}, e.g. the read ends of the container's FIFOs) into ``log``.

    Returns once every fd reached EOF, or once ``stop()`` (asked after each poll, at least every
    ``timeout`` seconds) is true: then what is already in the pipes is still read (at most
    DRAIN_MAX per fd: a writer that goes on cannot keep us here). The fds are made non-blocking.
    ``wake``: an fd whose readiness ends the wait at once (the init's pidfd: its exit is seen when
    it happens, not at the next poll, also while something it left behind holds the FIFOs open).

    A FIFO's EOF comes only when every writer closed it (the container's init and every process
    that inherited fd 1 or 2); a FIFO opened before any writer reads as EOF too. A reader of a
    non-blocking fd must expect EAGAIN even after poll() said readable (another reader, a spurious
    wake-up): it is "nothing now", not an error.

    An error writing the log (disk full) or reading an fd does not end the relay: the data is
    lost, ``on_error(NsboxError)`` is called (default: one line on stderr per distinct error), and
    the pipes keep being emptied so that the container never blocks on a full one.
    """
    report = on_error or _stderr_reporter()
    streams = {}
    poller = select.poll()
    for stream, fd in fds.items():
        os.set_blocking(fd, False)
        poller.register(fd, select.POLLIN)
        streams[fd] = stream
    if wake is not None:
        poller.register(wake, select.POLLIN)
    while streams:
        for fd, events in poller.poll(timeout * 1000):
            if fd == wake:
                poller.unregister(wake)  # readable for good once it fired: stop() is asked below
                wake = None
                continue
            if fd not in streams:
                continue
            if events & select.POLLNVAL:
                report(NsboxError('read', 'the container output (%s)' % streams[fd], 'fd %d is not open' % fd))
            elif _read_once(fd, streams[fd], log, report) != 0:
                continue
            poller.unregister(fd)
            del streams[fd]
        if streams and stop():
            break
    for fd, stream in streams.items():
        budget = DRAIN_MAX
        while budget > 0:
            got = _read_once(fd, stream, log, report)
            if got <= 0:
                break
            budget -= got


def _read_once(fd, stream, log, report):
    """One read into the log: the bytes read, 0 at EOF (or an fd that cannot be read), -1 on EAGAIN."""
    try:
        data = os.read(fd, READ_CHUNK)
    except BlockingIOError:
        return -1
    except OSError as exc:
        if exc.errno == errno.EIO:  # a pty master whose slave every process closed: its end-of-file
            return 0
        report(NsboxError.from_oserror('read', 'the container output (%s)' % stream, exc))
        return 0
    if data:
        try:
            log.write(stream, data)
        except NsboxError as exc:
            report(exc)
    return len(data)


def _stderr_reporter():
    seen = set()

    def report(exc):
        if exc.message not in seen:
            seen.add(exc.message)
            try:
                sys.stderr.write('nsbox: %s (the output is dropped while this lasts)\n' % exc.message)
                sys.stderr.flush()
            except (OSError, ValueError, AttributeError):
                pass
    return report
