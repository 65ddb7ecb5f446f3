# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The terminal plumbing of ``nsbox exec -it`` on a real pty of this machine (no container needed), and tree_size."""
from __future__ import annotations

import fcntl
import os
import struct
import termios

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cli import term
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import fsutil, syscall
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import SyscallError


def test_open_pty_gives_a_pair_from_that_ptmx():
    master, slave = syscall.open_pty('/dev/ptmx')
    try:
        assert os.isatty(slave) and os.ttyname(slave).startswith('/dev/pts/')
        assert not os.get_inheritable(master) and not os.get_inheritable(slave)
        os.write(slave, b'x\n')
        assert os.read(master, 10) == b'x\r\n'
    finally:
        os.close(master)
        os.close(slave)
    with pytest.raises(SyscallError, match='it is not the ptmx device'):
        syscall.open_pty('/dev/null')
    with pytest.raises(SyscallError, match='No such file'):
        syscall.open_pty('/nonexistent/ptmx')


def test_relay_copies_both_ways_and_returns_the_exit_code():
    master, slave = syscall.open_pty('/dev/ptmx')
    size_master, size_slave = os.openpty()  # stands for the user's terminal
    fcntl.ioctl(size_slave, termios.TIOCSWINSZ, struct.pack('HHHH', 33, 77, 0, 0))
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: reads a line on the pty, answers with it and the size
        try:
            os.close(master)
            line = os.read(slave, 100).strip()
            rows, cols = struct.unpack('HHHH', fcntl.ioctl(slave, termios.TIOCGWINSZ, b'\0' * 8))[:2]
            os.write(slave, b'got %s %dx%d\n' % (line, rows, cols))
        finally:
            os._exit(6)  # pylint: disable=protected-access
    os.close(slave)
    os.write(in_w, b'hello\n')
    try:
        assert term.relay(master, pid, stdin=in_r, stdout=out_w, winsize_from=size_slave) == 6
        os.close(out_w)
        out = b''
        while True:
            chunk = os.read(out_r, 4096)
            if not chunk:
                break
            out += chunk
        assert b'got hello 33x77\r\n' in out, out
    finally:
        for fd in (master, size_master, size_slave, in_r, in_w, out_r):
            os.close(fd)


def test_raw_mode_is_restored():
    master, slave = os.openpty()
    try:
        before = termios.tcgetattr(slave)
        with term.raw_mode(slave):
            assert not termios.tcgetattr(slave)[3] & termios.ECHO
        assert termios.tcgetattr(slave) == before
        with term.raw_mode(None):
            pass
        assert term.terminal_fd(None, slave) == slave and term.terminal_fd(None) is None
    finally:
        os.close(master)
        os.close(slave)


def test_tree_size_counts_blocks_and_hard_links_once(tmp_path):
    (tmp_path / 'd').mkdir()
    (tmp_path / 'd' / 'a').write_bytes(b'x' * 100000)
    os.link(tmp_path / 'd' / 'a', tmp_path / 'd' / 'b')
    os.symlink('a', tmp_path / 'd' / 'c')
    size = fsutil.tree_size(str(tmp_path / 'd'))
    one = os.lstat(tmp_path / 'd' / 'a').st_blocks * 512
    assert one <= size < 2 * one
    assert fsutil.tree_size(str(tmp_path / 'none')) == 0


def test_relay_without_a_child_ends_when_every_slave_is_closed():
    master, slave = syscall.open_pty('/dev/ptmx')
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child: not ours to wait for, as a container's init is not
        os.close(master)
        os.write(slave, b'bye\n')
        os._exit(0)  # pylint: disable=protected-access
    os.close(slave)
    try:
        assert term.relay(master, None, stdout=out_w) is None
        os.close(out_w)
        assert os.read(out_r, 100) == b'bye\r\n'
    finally:
        os.waitpid(pid, 0)
        os.close(master)
        os.close(out_r)
