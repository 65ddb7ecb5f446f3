# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``nsbox`` host command's interactive and store verbs, for real over SSH: ``exec -it`` driven
through a real pseudo-terminal (``ssh -tt`` inside ``pty.fork``, so sshd gives nsbox a terminal
and window changes travel the whole way), ``run`` attached and detached, ``pull`` against the
harness's registry (plain lines without a terminal, redrawn bars with one), ``prune`` and ``info``."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import re
import secrets
import select
import shlex
import signal
import struct
import termios
import time

import pytest

from harness import images
from harness.containers import FIXTURE_CACHE, LAYOUT, NOTHING, V1_ONLY, setup, teardown
from harness.registry import Registry

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

SLEEP = {'command': ['sleep', '3600'], 'stop_timeout': 1}


@pytest.fixture(scope='module')
def fixtures():
    return images.FixtureImages(FIXTURE_CACHE).build()


@pytest.fixture(scope='module')
def registry():
    reg = Registry()
    try:
        reg.start()
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope='module')
def cli_host(testhost, ansible, fixtures, registry):
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive}, registries={'insecure': [registry.host]})
    teardown(testhost, parent)


@pytest.fixture
def box(cli_host, reaper):
    yield cli_host
    left = teardown(cli_host.host, cli_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


def nsbox(box, *args, timeout=60, stdin=None):
    """``nsbox ARGS`` on the test host (``stdin``: text piped in): the CompletedProcess, any exit code."""
    line = 'nsbox ' + ' '.join(shlex.quote(a) for a in args)
    if stdin is not None:
        line = 'printf %%s %s | %s' % (shlex.quote(stdin), line)
    return box.host.ssh(line, check=False, timeout=timeout)


def ok(box, *args, **kw):
    res = nsbox(box, *args, **kw)
    assert res.returncode == 0, (args, res.returncode, res.stdout, res.stderr)
    return res.stdout


def remove(box, *names):
    box.ansible.tasks([{'nsbox.runtime.container': {'name': n, 'state': 'absent'}} for n in names])


class Terminal:
    """A command on the test host run by ``ssh -tt`` on the slave of a pty this test holds the master of."""

    def __init__(self, box, command, rows=30, cols=100):
        argv = box.host.ssh_args()
        argv.insert(1, '-tt')
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
                os.execvp(argv[0], argv + ['--', command])
            finally:
                os._exit(127)  # pylint: disable=protected-access
        self.seen = b''

    def resize(self, rows, cols):
        """As a terminal window does: the size on the master; the kernel sends ssh its SIGWINCH."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

    def type(self, text):
        os.write(self.fd, text.encode())

    def expect(self, pattern, timeout=30):
        """Read until ``pattern`` (a regex over everything read since the last match) is seen; the match."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.seen.decode('utf-8', 'replace'))
            if found:
                self.seen = self.seen[len(self.seen.decode('utf-8', 'replace')[:found.end()].encode()):]
                return found
            left = deadline - time.monotonic()
            assert left > 0, 'no %r in %r' % (pattern, self.seen)
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError as exc:
                    assert exc.errno == errno.EIO, exc
                    chunk = b''
                assert chunk, 'the terminal closed before %r; it said %r' % (pattern, self.seen)
                self.seen += chunk

    def wait(self, timeout=30):
        """The exit code of ssh (the remote command's), reading what is left meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:
                    time.sleep(0.1)
        self.kill()
        raise AssertionError('still running after %ss: %r' % (timeout, self.seen))

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass


def test_exec_it_gets_a_pty_in_the_container(box):
    res = box.ansible.tasks([{'nsbox.runtime.container': dict(SLEEP, name='shell', image='busybox')}])
    assert res.rc == 0, res
    term = Terminal(box, 'nsbox exec -it shell sh', rows=30, cols=100)
    try:
        _exec_it(term)
        _exec_plain(box)
    finally:
        term.kill()
        remove(box, 'shell')


def _exec_it(term):
    def command(line):
        """At busybox's prompt: answer its cursor-position query (a real terminal does; typing before the answer is lost), type ``line``."""
        if term.expect(r'# (\x1b\[6n)?$').group(1):
            term.type('\x1b[1;5R')
            time.sleep(0.3)
        term.type(line + '\r')  # \r: the Enter key (the terminal is in raw mode on the far side)
    command('tty; stty size; echo M-$((6*7))')
    found = term.expect(r'(/dev/pts/\d+)\r\n(\d+ \d+)\r\nM-42')
    assert found.group(2) == '30 100', term.seen
    term.resize(40, 120)  # ssh -> sshd -> nsbox's terminal -> SIGWINCH -> the container's pty
    deadline = time.monotonic() + 10
    while True:
        command('stty size; echo M-$((6*7))')
        size = term.expect(r'(\d+ \d+)\r\nM-42').group(1)
        if size == '40 120' or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert size == '40 120'
    command('read x; echo got-$x')
    term.type('typed\r')
    term.expect(r'got-typed')
    command('exit 7')
    assert term.wait() == 7, term.seen


def _exec_plain(box):
    # -i without -t: stdin is streamed (a pipe); without -i the command reads end-of-file
    assert ok(box, 'exec', '-i', 'shell', 'sh', '-c', 'cat; echo end', stdin='hello\n') == 'hello\nend\n'
    assert ok(box, 'exec', 'shell', 'sh', '-c', 'cat; echo end', stdin='hello\n') == 'end\n'
    assert ok(box, 'exec', 'shell', 'sh', '-c', 'test -t 0 || echo no-tty') == 'no-tty\n'
    # exit codes: the command's own; 127 not found; 126 cannot be run; 125 nsbox's own failure
    assert nsbox(box, 'exec', 'shell', 'sh', '-c', 'exit 3').returncode == 3
    res = nsbox(box, 'exec', 'shell', 'nosuchcmd')
    assert res.returncode == 127 and 'executable file not found' in res.stderr, res
    res = nsbox(box, 'exec', 'shell', '/etc')
    assert res.returncode == 126, res
    res = nsbox(box, 'exec', 'nosuch', 'true')
    assert res.returncode == 125 and res.stderr == 'nsbox: failed to exec in container nosuch: it does not exist\n', res
    res = nsbox(box, 'exec', '-t', 'shell', 'sh', '-c', 'tty; exit 4')
    assert res.returncode == 4 and re.match(r'^/dev/pts/\d+\n$', res.stdout), res  # (text mode: the pty's \r\n read as \n)
    assert ok(box, 'rm', '-f', 'shell') == 'shell\n'
