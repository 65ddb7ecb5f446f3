# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""json-file logs: Docker's bytes, long lines, partial lines, rotation, tail, relay from FIFOs."""
from __future__ import annotations

import calendar
import json
import os
import re
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import logs
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, NsboxError

NS = calendar.timegm((2026, 11, 22, 22, 31, 21, 0, 0, 0)) * 10 ** 9 + 123456789
STAMP = '2026-11-22T22:31:21.123456789Z'
TIME_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$')


class Clock:
    """A clock that moves 1 µs at each reading."""

    def __init__(self, start=NS):
        self.now = start - 1000

    def __call__(self):
        self.now += 1000
        return self.now


def go_log_string(data):
    """dockerd's ffjsonWriteJSONBytesAsString transcribed byte by byte: the reference the writer must match."""
    out, i = ['"'], 0
    while i < len(data):
        b = data[i]
        if b < 0x80:
            if b >= 0x20 and b not in b'\\"<>&':
                out.append(chr(b))
            elif b in b'\\"':
                out.append('\\' + chr(b))
            else:
                out.append({0x0a: '\\n', 0x0d: '\\r'}.get(b, '\\u00%02x' % b))
            i += 1
            continue
        n = 2 if 0xc2 <= b <= 0xdf else 3 if 0xe0 <= b <= 0xef else 4 if 0xf0 <= b <= 0xf4 else 0
        try:
            ch = data[i:i + n].decode('utf-8') if n and i + n <= len(data) else None
        except UnicodeDecodeError:
            ch = None
        if ch is None:  # Go's DecodeRune: (RuneError, 1)
            out.append('\\ufffd')
            i += 1
            continue
        out.append('\\u%04x' % ord(ch) if ch in ('\u2028', '\u2029') else ch)
        i += n
    return ''.join(out) + '"'


def docker_line(data, stream='stdout', stamp=STAMP):
    return ('{"log":%s,"stream":"%s","time":"%s"}\n' % (go_log_string(data), stream, stamp)).encode('utf-8')


def entries(path):
    if not os.path.exists(path):
        return []
    with open(path, 'rb') as f:
        return [json.loads(line) for line in f]


def written(tmp_path, chunks, clock=None, **kwargs):
    """Write [(stream, bytes)] through one JsonFileLog, close it, return the entries."""
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path, clock=clock or Clock(), **kwargs) as log:
        for stream, data in chunks:
            log.write(stream, data)
    return entries(path)


# -- the format ---------------------------------------------------------------------------------
def test_an_entry_is_byte_for_byte_what_dockerd_writes(tmp_path):
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path, clock=lambda: NS) as log:
        log.write('stdout', b'hello\n')
        log.write('stderr', b'oops\n')
    with open(path, 'rb') as f:
        assert f.read() == (b'{"log":"hello\\n","stream":"stdout","time":"2026-11-22T22:31:21.123456789Z"}\n'
                            b'{"log":"oops\\n","stream":"stderr","time":"2026-11-22T22:31:21.123456789Z"}\n')
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_escapes_and_invalid_bytes_as_dockerd():
    data = b'a\t"\\<>&\r\x00\x7f\xe2\x80\xa8 caf\xc3\xa9 \xff\xe2\x82x \xef\xbf\xbd\n'
    line = logs.encode_entry('stdout', data, NS)
    assert line == (b'{"log":"a\\u0009\\"\\\\\\u003c\\u003e\\u0026\\r\\u0000\x7f\\u2028 caf\xc3\xa9 '
                    b'\\ufffd\\ufffd\\ufffdx \xef\xbf\xbd\\n","stream":"stdout","time":"2026-11-22T22:31:21.123456789Z"}\n')
    assert line == docker_line(data)
    # one U+FFFD per invalid byte (Go), where Python's 'replace' would give one for the cut sequence
    assert json.loads(line)['log'] == 'a\t"\\<>&\r\x00\x7f\u2028 caf\u00e9 \ufffd\ufffd\ufffdx \ufffd\n'


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=64),
                 st.lists(st.sampled_from([b'a', b'\n', b'\t', b'"', b'\\', b'<', b'&', b'\x00', b'\x1f', b'\x7f', b'\xc3\xa9',
                                           b'\xc3', b'\xa9', b'\xe2\x80\xa8', b'\xe2\x80\xa9', b'\xed\xa0\x80', b'\xf0\x9f\x98\x80',
                                           b'\xf4\x90\x80\x80', b'\xc0\xaf', b'\xef\xbf\xbd', b'\xff']), max_size=24).map(b''.join)))
def test_any_bytes_are_escaped_as_dockerd(data):
    line = logs.encode_entry('stderr', data, NS)
    assert line == docker_line(data, 'stderr')
    assert line.count(b'\n') == 1 and line.endswith(b'\n')
    assert json.loads(line)['log'] == json.loads(go_log_string(data))


def test_timestamp_is_rfc3339_with_nine_digits_in_utc():
    assert logs.timestamp(NS) == STAMP
    assert logs.timestamp(NS - 123456789) == '2026-11-22T22:31:21.000000000Z'
    assert logs.timestamp(0) == '1970-01-01T00:00:00.000000000Z'
    before = time.time()
    now = logs.timestamp()
    assert TIME_RE.match(now)
    assert abs(calendar.timegm(time.strptime(now[:19], '%Y-%m-%dT%H:%M:%S')) - before) < 5


def test_the_real_clock_gives_docker_times(tmp_path):
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path) as log:
        log.write('stdout', b'a\nb\n')
    got = entries(path)
    assert [e['log'] for e in got] == ['a\n', 'b\n']
    assert all(list(e) == ['log', 'stream', 'time'] and TIME_RE.match(e['time']) for e in got)


# -- lines --------------------------------------------------------------------------------------
def test_output_is_cut_at_newlines_per_stream(tmp_path):
    got = written(tmp_path, [('stdout', b'hello\nwor'), ('stderr', b'oo'), ('stdout', b'ld\n\npar'), ('stderr', b'ps\n')])
    assert [(e['stream'], e['log']) for e in got] == [('stdout', 'hello\n'), ('stdout', 'world\n'), ('stdout', '\n'),
                                                      ('stderr', 'oops\n'), ('stdout', 'par')]


@pytest.mark.parametrize('length, pieces', [
    (logs.LINE_MAX - 1, [logs.LINE_MAX]),              # 16 KiB with its newline: one entry
    (logs.LINE_MAX, [logs.LINE_MAX, 1]),               # one byte more: a partial entry, then "\n" alone
    (logs.LINE_MAX * 2 + 5, [logs.LINE_MAX, logs.LINE_MAX, 6]),
])
def test_long_lines_are_split_as_docker_does(tmp_path, length, pieces):
    data = b'x' * length + b'\n'
    chunks = [('stdout', data[i:i + 1000]) for i in range(0, len(data), 1000)] + [('stdout', b'next\n')]  # many reads
    got = written(tmp_path, chunks)
    assert [len(e['log']) for e in got] == pieces + [5]
    assert [e['log'].endswith('\n') for e in got] == [False] * (len(pieces) - 1) + [True, True]
    assert ''.join(e['log'] for e in got) == data.decode() + 'next\n'
    assert len({e['time'] for e in got[:-1]}) == 1 and got[-1]['time'] > got[0]['time']  # pieces keep the first's time


@settings(max_examples=60, deadline=None)
@given(segments=st.lists(st.tuples(st.integers(0, 3 * logs.LINE_MAX), st.booleans()), min_size=1, max_size=6),
       cuts=st.lists(st.integers(0, 10 ** 6), max_size=8))
def test_splitting_does_not_depend_on_how_the_output_is_read(tmp_path_factory, segments, cuts):
    data = b''.join(b'y' * n + (b'\n' if nl else b'') for n, nl in segments)
    bounds = sorted({0, len(data)} | {c % (len(data) + 1) for c in cuts})
    chunks = [('stdout', data[a:b]) for a, b in zip(bounds, bounds[1:])]
    once = written(tmp_path_factory.mktemp('once'), [('stdout', data)])
    pieces = written(tmp_path_factory.mktemp('pieces'), chunks)
    assert [e['log'] for e in pieces] == [e['log'] for e in once]
    texts = [e['log'] for e in once]
    assert ''.join(texts) == data.decode()
    assert all(len(t) <= logs.LINE_MAX and '\n' not in t[:-1] for t in texts)
    assert all(t.endswith('\n') or len(t) == logs.LINE_MAX for t in texts[:-1])


def test_partial_lines_are_written_at_close(tmp_path):
    path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(path, clock=Clock())
    log.write('stdout', b'x' * (logs.LINE_MAX + 3))
    log.write('stderr', b'no newline')
    log.close()
    log.close()
    got = entries(path)
    assert [(e['stream'], e['log']) for e in got] == [('stdout', 'x' * logs.LINE_MAX), ('stdout', 'xxx'),
                                                      ('stderr', 'no newline')]
    assert got[0]['time'] == got[1]['time'] == STAMP  # the rest of a cut line: the time of its first piece


def test_bytes_that_are_not_utf8_stay_readable(tmp_path):
    cut = b'x' * (logs.LINE_MAX - 1) + b'\xc3\xa9\n'  # é cut in two by the 16 KiB boundary, as Docker cuts it
    got = written(tmp_path, [('stdout', b'caf\xe9\n'), ('stdout', cut), ('stderr', b'\xff\xfe\x00\n')])
    assert [e['log'] for e in got] == ['caf\ufffd\n', 'x' * (logs.LINE_MAX - 1) + '\ufffd', '\ufffd\n', '\ufffd\ufffd\x00\n']


# -- rotation -----------------------------------------------------------------------------------
def numbers(path):
    return [int(e['log'].split()[1]) for e in entries(path)] if os.path.exists(path) else []


@pytest.mark.parametrize('max_files', [2, 3, 5])
def test_rotation_renames_and_keeps_max_files(tmp_path, max_files):
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path, max_size=300, max_files=max_files) as log:
        for i in range(100):
            log.write('stdout', b'line %03d\n' % i)
    names = ['c-json.log'] + ['c-json.log.%d' % i for i in range(1, max_files)]
    assert sorted(os.listdir(str(tmp_path))) == sorted(names)
    assert all(0 < os.path.getsize(str(tmp_path / n)) <= 300 for n in names)
    kept = [n for name in reversed(names) for n in numbers(str(tmp_path / name))]  # oldest file first
    assert kept == list(range(100 - len(kept), 100))  # the newest lines, in order; the oldest file was dropped
    assert len(kept) > (max_files - 1) * 3


def test_one_file_starts_over(tmp_path):
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path, max_size=200, max_files=1) as log:
        for i in range(30):
            log.write('stdout', b'line %03d\n' % i)
    assert os.listdir(str(tmp_path)) == ['c-json.log']
    assert os.path.getsize(path) <= 200
    kept = numbers(path)
    assert kept == list(range(30 - len(kept), 30)) and kept[0] > 0


def test_an_entry_above_max_size_is_written_whole(tmp_path):
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path, max_size=100, max_files=2) as log:
        log.write('stdout', b'z' * 500 + b'\n')
        log.write('stdout', b'line 1\n')
    assert [len(e['log']) for e in entries(path + '.1')] == [501]
    assert numbers(path) == [1]


def test_a_new_writer_counts_what_the_file_holds(tmp_path):
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path, max_size='1k', max_files=2) as log:
        assert log.max_size == 1024
        for i in range(8):
            log.write('stdout', b'line %03d\n' % i)
    assert not os.path.exists(path + '.1')
    with logs.JsonFileLog(path, max_size='1k', max_files=2) as log:
        for i in range(8, 16):
            log.write('stdout', b'line %03d\n' % i)
    assert numbers(path + '.1') + numbers(path) == list(range(16)) and os.path.getsize(path + '.1') <= 1024


@pytest.mark.parametrize('fail_at', [0, 1, 2])
def test_a_crash_during_rotation_loses_no_file(tmp_path, monkeypatch, fail_at):
    """Every step of a rotation is a rename: stopped after any of them, every line is still in some file."""
    path = str(tmp_path / 'c-json.log')
    size = len(logs.encode_entry('stdout', b'line 000\n', NS))
    log = logs.JsonFileLog(path, max_size=2 * size, max_files=4)
    for i in range(6):  # three full files: the next line rotates to a fourth
        log.write('stdout', b'line %03d\n' % i)
    assert os.path.exists(path + '.2') and not os.path.exists(path + '.3')
    real_rename, done = os.rename, []

    def crashing_rename(src, dst):
        if len(done) == fail_at:
            raise OSError(5, 'Input/output error', src)
        done.append(dst)
        real_rename(src, dst)
    monkeypatch.setattr(logs.os, 'rename', crashing_rename)
    with pytest.raises(NsboxError, match='failed to write the container log'):
        for i in range(6, 20):
            log.write('stdout', b'line %03d\n' % i)
    monkeypatch.undo()
    found = sorted(n for name in os.listdir(str(tmp_path)) for n in numbers(str(tmp_path / name)))
    assert found[:6] == list(range(6))
    log.close()


def test_a_torn_line_is_skipped_and_ended_by_the_next_writer(tmp_path):
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path) as log:
        log.write('stdout', b'a\nb\n')
    with open(path, 'ab') as f:
        f.write(b'{"log":"tor')  # a crash mid-write
    assert logs.text(logs.tail(path, 5)) == 'a\nb\n'
    assert logs.text(logs.tail(path, 1)) == 'b\n'  # the torn line is not counted
    with logs.JsonFileLog(path) as log:
        log.write('stdout', b'c\n')
    with open(path, 'rb') as f:
        assert f.read().split(b'\n')[2] == b'{"log":"tor'  # ended on its own line, not glued to the next
    assert logs.text(logs.tail(path)) == 'a\nb\nc\n'


def test_option_parsing():
    assert logs.parse_size('10m') == 10 << 20 and logs.parse_size('512k') == 512 << 10
    assert logs.parse_size('1g') == 1 << 30 and logs.parse_size('100') == 100 and logs.parse_size(2048) == 2048
    assert logs.parse_max_files(1) == 1 and logs.parse_max_files('3') == 3
    for bad in ('0', 0, '-1m', 'ten', '', None, True, '1x'):
        with pytest.raises(ConfigError, match='log max_size'):
            logs.parse_size(bad)
    for bad in (0, -1, '0', 'x', True, 1.5, None):
        with pytest.raises(ConfigError, match='log max_files'):
            logs.parse_max_files(bad)
    with pytest.raises(ConfigError):
        logs.JsonFileLog('/nonexistent/log', max_files=0)


def test_a_write_error_is_typed_and_the_next_write_reopens(tmp_path):
    path = str(tmp_path / 'logs' / 'c-json.log')
    log = logs.JsonFileLog(path)
    with pytest.raises(NsboxError) as err:
        log.write('stdout', b'lost\n')
    assert err.value.errno == 2 and 'No such file' in err.value.message
    os.mkdir(str(tmp_path / 'logs'))
    log.write('stdout', b'kept\n')
    log.close()
    assert logs.text(logs.tail(path)) == 'kept\n'


# -- tail ---------------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), max_size=st.integers(100, 3000), max_files=st.integers(1, 4),
       want=st.one_of(st.none(), st.integers(-1, 320)))
def test_tail_across_rotated_files(tmp_path_factory, n, max_size, max_files, want):
    path = str(tmp_path_factory.mktemp('tail') / 'c-json.log')
    with logs.JsonFileLog(path, max_size=max_size, max_files=max_files) as log:
        for i in range(n):
            log.write('stderr' if i % 2 else 'stdout', (b'%d ' % i) + b'y' * (i % 200) + b'\n')
    everything = [e for name in reversed(logs.rotated_names(path, max_files)) if os.path.exists(name) for e in entries(name)]
    expected = everything if want is None or want < 0 else everything[max(0, len(everything) - want):] if want else []
    got = logs.tail(path, want, max_files)
    assert got == [{'stream': e['stream'], 'log': e['log'], 'time': e['time']} for e in expected]
    assert [int(e['log'].split()[0]) for e in got] == list(range(n - len(got), n))
    assert all(e['stream'] == ('stderr' if int(e['log'].split()[0]) % 2 else 'stdout') for e in got)


def test_tail_reads_a_large_file_from_its_end(tmp_path, monkeypatch):
    path = str(tmp_path / 'c-json.log')
    block = b''.join(logs.encode_entry('stdout', b'%06d %s\n' % (i, b'w' * 60), NS) for i in range(1000))
    with open(path, 'wb') as f:
        f.write(block * 100)  # 100 000 entries, ~12 MB
    read, real_pread = [], os.pread

    def counting_pread(fd, size, offset):
        read.append(size)
        return real_pread(fd, size, offset)
    monkeypatch.setattr(logs.os, 'pread', counting_pread)
    got = logs.tail(path, 10)
    assert [int(e['log'].split()[0]) for e in got] == list(range(990, 1000))
    assert sum(read) <= logs.READ_CHUNK and os.path.getsize(path) > 10 ** 7


def test_tail_skips_garbage_a_crash_left(tmp_path):
    """A torn line in the current file does not make tail take too much from the rotated one; a block of NULs is skipped."""
    path = str(tmp_path / 'c-json.log')
    with open(path + '.1', 'wb') as f:
        f.write(b''.join(logs.encode_entry('stdout', b'old %d\n' % i, NS) for i in range(5)))
    with open(path, 'wb') as f:
        f.write(logs.encode_entry('stdout', b'new 0\n', NS) + b'\x00' * (3 * logs.ENTRY_MAX) + b'\n' + b'not json\n')
        f.write(logs.encode_entry('stdout', b'new 1\n', NS) + b'{"log":"torn')
    assert logs.text(logs.tail(path, 4, max_files=2)) == 'old 3\nold 4\nnew 0\nnew 1\n'
    assert logs.text(logs.tail(path, None, max_files=2)) == ''.join('old %d\n' % i for i in range(5)) + 'new 0\nnew 1\n'


def test_tail_reads_a_file_seen_twice_once(tmp_path):
    """Renamed by a rotation between two opens, the same file shows up under two names: read once."""
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path) as log:
        log.write('stdout', b'a\nb\n')
    os.link(path, path + '.1')
    assert logs.text(logs.tail(path, None, max_files=3)) == 'a\nb\n'


def test_tail_of_nothing(tmp_path):
    path = str(tmp_path / 'c-json.log')
    assert logs.tail(path, 5) == [] and logs.tail(path) == []
    with logs.JsonFileLog(path) as log:
        log.write('stdout', b'a\n')
    assert logs.tail(path, 0) == [] and logs.text(logs.tail(path, -1)) == 'a\n'
    assert logs.text([]) == ''


# -- relay --------------------------------------------------------------------------------------
def fifo(tmp_path, name):
    path = str(tmp_path / name)
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    return path, reader


def run_relay(fds, log, stop=lambda: False, **kwargs):
    thread = threading.Thread(target=logs.relay, args=(fds, log, stop), kwargs=dict(timeout=0.05, **kwargs), daemon=True)
    thread.start()
    return thread


def test_relay_from_two_fifos_written_at_once(tmp_path):
    fds, writers = {}, {}
    for stream in ('stdout', 'stderr'):
        path, fds[stream] = fifo(tmp_path, stream)
        writers[stream] = os.open(path, os.O_WRONLY)

    def produce(stream):
        for i in range(2000):
            os.write(writers[stream], b'%s %d\n' % (stream.encode(), i))
        os.close(writers[stream])
    producers = [threading.Thread(target=produce, args=(s,)) for s in writers]
    path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(path) as log:
        for t in producers:
            t.start()
        logs.relay(fds, log, lambda: False, timeout=0.05)  # returns at EOF of both
    for t in producers:
        t.join()
    got = entries(path)
    for stream in ('stdout', 'stderr'):
        mine = [e['log'] for e in got if e['stream'] == stream]
        assert mine == ['%s %d\n' % (stream, i) for i in range(2000)]
    for fd in fds.values():
        os.close(fd)


def test_relay_waits_for_the_last_writer_of_a_fifo(tmp_path):
    """EOF comes when every writer closed: two processes that share fd 1 (a shell and its child)."""
    path, reader = fifo(tmp_path, 'stdout')
    first, second = os.open(path, os.O_WRONLY), os.open(path, os.O_WRONLY)
    log_path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(log_path)
    thread = run_relay({'stdout': reader}, log)
    os.write(first, b'from the first\n')
    os.close(first)
    time.sleep(0.3)
    assert thread.is_alive()
    os.write(second, b'from the second\n')
    os.close(second)
    thread.join(5)
    assert not thread.is_alive()
    log.close()
    assert logs.text(logs.tail(log_path)) == 'from the first\nfrom the second\n'
    os.close(reader)


def test_relay_stops_when_asked_and_keeps_what_was_written(tmp_path):
    """stop() ends the relay while a writer still holds the pipe; a blocking fd is made non-blocking for the drain."""
    reader, writer = os.pipe()  # blocking: relay must not hang on it
    os.write(writer, b'before\nhalf')
    asked = []

    def stop():
        asked.append(1)
        return True
    log_path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(log_path) as log:
        started = time.monotonic()
        os.write(writer, b' a line\n')
        logs.relay({'stdout': reader}, log, stop, timeout=0.05)
        assert time.monotonic() - started < 2 and asked
    assert logs.text(logs.tail(log_path)) == 'before\nhalf a line\n'
    os.close(reader)
    os.close(writer)


def test_relay_wakes_at_once_on_the_wake_fd(tmp_path):
    """A writer keeps the FIFO open (no EOF) and the poll is long: the wake fd (the init's pidfd) ends the wait
    when it fires, stop() is asked then, and what was written is kept."""
    reader, writer = os.pipe()
    wake_r, wake_w = os.pipe()
    os.write(writer, b'out\n')
    ended = []
    threading.Timer(0.2, lambda: (ended.append(1), os.write(wake_w, b'x'))).start()
    log_path = str(tmp_path / 'c-json.log')
    with logs.JsonFileLog(log_path) as log:
        started = time.monotonic()
        logs.relay({'stdout': reader}, log, lambda: bool(ended), timeout=30, wake=wake_r)
        assert time.monotonic() - started < 5
    assert logs.text(logs.tail(log_path)) == 'out\n'
    for fd in (reader, writer, wake_r, wake_w):
        os.close(fd)


def test_a_writer_that_goes_on_cannot_hold_the_drain(tmp_path):
    reader, writer = os.pipe()
    quit_ = threading.Event()

    def flood():
        try:
            while not quit_.is_set():
                os.write(writer, b'more\n' * 1000)
        except OSError:
            pass
    flooder = threading.Thread(target=flood, daemon=True)
    flooder.start()
    with logs.JsonFileLog(str(tmp_path / 'c-json.log')) as log:
        thread = run_relay({'stdout': reader}, log, stop=lambda: True)
        thread.join(10)
        assert not thread.is_alive()
    quit_.set()
    os.close(reader)  # the flooder gets EPIPE
    flooder.join(5)
    os.close(writer)


class BrokenLog:
    def __init__(self):
        self.calls = 0

    def write(self, stream, data):
        self.calls += 1
        raise NsboxError('write', 'the container log', 'No space left on device', errno=28)


def test_relay_goes_on_emptying_the_pipes_when_the_log_cannot_be_written(tmp_path, capsys):
    path, reader = fifo(tmp_path, 'stdout')
    writer = os.open(path, os.O_WRONLY)

    def produce():
        for i in range(64):  # 4 MiB, 64 times what the pipe holds: blocks unless the relay keeps reading
            os.write(writer, b'%05d' % i + b'x' * 65530 + b'\n')
        os.close(writer)
    producer = threading.Thread(target=produce, daemon=True)
    producer.start()
    log, errors = BrokenLog(), []
    logs.relay({'stdout': reader}, log, lambda: False, timeout=0.05, on_error=errors.append)
    producer.join(5)
    assert not producer.is_alive() and log.calls >= 16 and len(errors) == log.calls
    # the default reports once per distinct error, on stderr (the supervisor's log): two streams, two errors, one line
    fds = {}
    for stream in ('stdout2', 'stderr2'):
        path, fds[stream] = fifo(tmp_path, stream)
        writer = os.open(path, os.O_WRONLY)
        os.write(writer, b'a\n')
        os.close(writer)
    broken = BrokenLog()
    logs.relay(fds, broken, lambda: False, timeout=0.05)
    assert broken.calls == 2
    assert capsys.readouterr().err.count('failed to write the container log: No space left on device') == 1
    for fd in list(fds.values()) + [reader]:
        os.close(fd)
