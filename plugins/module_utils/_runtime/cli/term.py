# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The terminal side of ``nsbox exec -it``: the user's terminal in raw mode, relayed to a pty master.

The command in the container has the pty's slave as its controlling terminal (process.py's
``terminal``), so line editing, job control and Ctrl-C are the container's, as with ``docker
exec -it``: this end only copies bytes both ways, passes the window size on (at the start and on
every SIGWINCH), and puts the user's terminal back as it found it however the command ends.
Signals arrive through a wakeup pipe (``signal.set_wakeup_fd``), so one ``select`` loop serves
the terminal, the pty and the command's end without threads.
"""
from __future__ import annotations

import time
import contextlib
import errno
import fcntl
import os
import select
import signal
import termios
import tty

from ..launch import process

_FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)  # to the command, as docker exec does


def terminal_fd(*fds):
    """The first of ``fds`` that is a terminal, else None."""
    return next((fd for fd in fds if fd is not None and os.isatty(fd)), None)


def copy_winsize(src, dst):
    """Give ``dst`` (a pty) the window size of terminal ``src``; nothing when ``src`` is None."""
    if src is None:
        return
    with contextlib.suppress(OSError):
        fcntl.ioctl(dst, termios.TIOCSWINSZ, fcntl.ioctl(src, termios.TIOCGWINSZ, b'\0' * 8))


@contextlib.contextmanager
def raw_mode(fd):
    """``fd`` (a terminal, or None: nothing done) in raw mode for the block; its settings restored after."""
    saved = termios.tcgetattr(fd) if fd is not None else None
    if saved is not None:
        tty.setraw(fd, termios.TCSANOW)
    try:
        yield
    finally:
        if saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _write_all(fd, data):
    while data:
        try:
            data = data[os.write(fd, data):]
        except BlockingIOError:
            select.select([], [fd], [])


def _drain(master, out):
    """What the pty still holds once the command ended (its slave may stay open in a background process)."""
    os.set_blocking(master, False)
    while True:
        try:
            chunk = os.read(master, 65536)
        except (BlockingIOError, OSError):
            return
        if not chunk:
            return
        _write_all(out, chunk)


@contextlib.contextmanager
def _signals(child):
    """SIGCHLD and SIGWINCH wake the loop (their numbers come on the returned pipe); SIGTERM, SIGHUP and
    SIGQUIT go on to ``child``; SIGINT (a terminal not in raw mode) only wakes it: the command, in this
    process group, has it already. Every handler and the wakeup fd are put back afterwards."""
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    old = {}

    def forward(signum, _frame):
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)
    for sig in (signal.SIGCHLD, signal.SIGWINCH, signal.SIGINT):
        old[sig] = signal.signal(sig, lambda *_a: None)
    for sig in _FORWARDED:
        old[sig] = signal.signal(sig, forward)
    old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    try:
        yield wake_r
    finally:
        signal.set_wakeup_fd(old_wakeup)
        for sig, handler in old.items():
            signal.signal(sig, handler)
        os.close(wake_r)
        os.close(wake_w)


def relay(master, child, stdin=None, stdout=1, winsize_from=None):
    """Copy ``stdin`` (None: nothing is read) to the pty ``master`` and the master to ``stdout`` until
    ``child`` (the pid process.enter returned) ends; returns its exit code. The caller holds no slave.
    ``child`` None (a container's init, not our child): until every slave is closed; returns None."""
    status = None
    reading = [fd for fd in (master, stdin) if fd is not None]
    with _signals(child) as wake:
        copy_winsize(winsize_from, master)
        while status is None:
            try:
                ready = select.select(reading + [wake], [], [])[0]
            except InterruptedError:
                continue
            if wake in ready:
                signums = os.read(wake, 256)
                if signal.SIGWINCH in signums:
                    copy_winsize(winsize_from, master)
            if master in ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError as exc:  # EIO: every slave closed
                    if exc.errno != errno.EIO:
                        raise
                    chunk = b''
                if chunk:
                    _write_all(stdout, chunk)
                else:
                    reading.remove(master)
            if stdin is not None and stdin in ready:
                chunk = os.read(stdin, 65536)
                if chunk:
                    _write_all(master, chunk)
                else:  # end of input: the terminal's end-of-file character, as a typed Ctrl-D would be
                    reading.remove(stdin)
                    with contextlib.suppress(OSError):
                        os.write(master, termios.tcgetattr(master)[6][termios.VEOF])
            if child is None:
                if master not in reading:
                    break
                continue
            pid, raw = os.waitpid(child, os.WNOHANG) if master in reading else os.waitpid(child, 0)
            if pid:
                status = process.exit_code(raw)
        _drain(master, stdout)
    return status


def wait(child):
    """The exit code of ``child`` (no terminal: its stdio are this process's own fds). Ctrl-C reaches
    the command (same process group) and this process waits on for its end."""
    while True:
        try:
            return process.wait_status(child)
        except KeyboardInterrupt:
            continue


class Board:
    """Lines redrawn in place on a terminal (``nsbox pull``'s one line per layer): ``set`` changes one,
    ``draw`` moves the cursor back up over what it drew last and writes every line again. Redraws come
    at most every ``interval`` seconds unless forced, so a fast download does not flood the terminal."""

    def __init__(self, stream, interval=0.1, clock=None):
        self.stream, self.interval, self.clock = stream, interval, clock or time.monotonic
        self.keys, self.lines, self.drawn, self.last = [], {}, 0, None

    def set(self, key, line):
        if key not in self.lines:
            self.keys.append(key)
        changed = self.lines.get(key) != line
        self.lines[key] = line
        return changed

    def draw(self, force=False):
        now = self.clock()
        if not force and self.last is not None and now - self.last < self.interval:
            return
        self.last = now
        out = '\033[%dA' % self.drawn if self.drawn else ''
        out += ''.join('\r\033[2K%s\n' % self.lines[k] for k in self.keys)
        self.drawn = len(self.keys)
        self.stream.write(out)
        self.stream.flush()
