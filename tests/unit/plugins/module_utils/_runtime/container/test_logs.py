# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""json-file logs: Docker's format, long lines, rotation, tail, relay from FIFOs."""
from __future__ import annotations

import json
import os
import re
import threading

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import logs
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError


def entries(path):
    with open(path) as f:
        return [json.loads(line) for line in f]


def test_docker_format(tmp_path):
    path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(path)
    log.write('stdout', b'hello\nwor')
    log.write('stderr', b'oops\n')
    log.write('stdout', b'ld\npartial')
    log.close()
    got = entries(path)
    assert [(e['stream'], e['log']) for e in got] == [('stdout', 'hello\n'), ('stderr', 'oops\n'), ('stdout', 'world\n'),
                                                      ('stdout', 'partial')]
    assert all(set(e) == {'log', 'stream', 'time'} and re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$', e['time']) for e in got)
    assert open(path).read().count('\n') == 4


def test_long_lines_are_split_like_docker(tmp_path):
    path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(path)
    log.write('stdout', b'x' * (logs.LINE_MAX * 2 + 5) + b'\n')
    log.close()
    got = [e['log'] for e in entries(path)]
    assert [len(t) for t in got] == [logs.LINE_MAX, logs.LINE_MAX, 6] and got[-1].endswith('\n')


def test_non_utf8_is_kept_readable(tmp_path):
    path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(path)
    log.write('stdout', b'caf\xe9\n')
    log.close()
    assert entries(path)[0]['log'] == 'caf\ufffd\n'


def test_rotation_keeps_max_files(tmp_path):
    path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(path, max_size=300, max_files=3)
    for i in range(60):
        log.write('stdout', b'line %03d\n' % i)
    log.close()
    assert sorted(os.listdir(tmp_path)) == ['c-json.log', 'c-json.log.1', 'c-json.log.2']
    assert all(os.path.getsize(str(p)) <= 300 for p in tmp_path.iterdir())
    tail = logs.tail(path, 5, max_files=3)  # across the current file and .1
    assert [e['log'] for e in tail] == ['line %03d\n' % i for i in range(55, 60)]
    everything = logs.tail(path, None, max_files=3)
    numbers = [int(e['log'].split()[1]) for e in everything]
    assert numbers == sorted(numbers) and numbers[-1] == 59
    single = logs.JsonFileLog(str(tmp_path / 'one.log'), max_size=200, max_files=1)
    for i in range(30):
        single.write('stdout', b'line %03d\n' % i)
    single.close()
    assert os.path.getsize(str(tmp_path / 'one.log')) <= 200 and not os.path.exists(str(tmp_path / 'one.log.1'))


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 400), want=st.integers(1, 500))
def test_tail_reads_the_last_entries(tmp_path_factory, n, want):
    path = str(tmp_path_factory.mktemp('tail') / 'c-json.log')
    log = logs.JsonFileLog(path)
    for i in range(n):
        log.write('stderr' if i % 2 else 'stdout', (b'%d ' % i) + b'y' * (i % 300) + b'\n')
    log.close()
    got = logs.tail(path, want)
    assert [int(e['log'].split()[0]) for e in got] == list(range(max(0, n - want), n))


def test_a_torn_last_line_is_skipped(tmp_path):
    path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(path)
    log.write('stdout', b'a\nb\n')
    log.close()
    with open(path, 'a') as f:
        f.write('{"log": "tor')
    assert logs.text(logs.tail(path, 5)) == 'a\nb\n'
    assert logs.tail(str(tmp_path / 'missing.log'), 5) == []


def test_relay_from_fifos(tmp_path):
    fds, writers = {}, []
    for stream in ('stdout', 'stderr'):
        p = str(tmp_path / stream)
        os.mkfifo(p)
        fds[stream] = os.open(p, os.O_RDONLY | os.O_NONBLOCK)
        writers.append(os.open(p, os.O_WRONLY))

    def produce():
        for i in range(200):
            os.write(writers[i % 2], b'msg %d\n' % i)
        for fd in writers:
            os.close(fd)
    t = threading.Thread(target=produce)
    t.start()
    path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(path)
    logs.relay(fds, log, lambda: False, poll=0.05)
    log.close()
    t.join()
    got = entries(path)
    assert sorted(int(e['log'].split()[1]) for e in got) == list(range(200))
    assert {e['stream'] for e in got if int(e['log'].split()[1]) % 2} == {'stderr'}
    for fd in fds.values():
        os.close(fd)


@pytest.mark.parametrize('value', ['0', '-1m', 'ten'])
def test_bad_sizes(value):
    with pytest.raises(ConfigError):
        logs.parse_size(value)
