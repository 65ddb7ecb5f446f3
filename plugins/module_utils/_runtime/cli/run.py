# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``nsbox exec``, ``run`` and ``logs``: processes in containers attached to this command.

Thin fronts on container/converge.py and container/execute.py, as the ``container`` and ``container_exec`` modules are:
``exec`` is ``execute.exec_start`` with this command's own stdio, or a pty of the container's
(term.py relays it); ``run`` is ``converge.ensure(state=started)`` followed by the log, or, with
a terminal attached, ``service.start(console=)`` with this command's pty. Their own failures exit
as Docker's do (125, 126, 127), apart from the codes of the commands they run.
"""
from __future__ import annotations

import errno
import os
import select
import sys
import time

from . import term
from ..host import config as hostconfig
from ..kernel import syscall
from ..container import converge, execute, logs
from ..container.store import ContainerError
from ..errors import NsboxError

EXIT_NSBOX, EXIT_CANNOT_RUN, EXIT_NOT_FOUND = 125, 126, 127


def _write_entry(entry):
    stream = sys.stderr if entry['stream'] == 'stderr' else sys.stdout
    stream.write(entry['log'])
    stream.flush()


def print_log(container, tail=None, follow=False, feed=None):
    """The container's log (its last ``tail`` lines); with ``follow`` on until the container ends.
    ``feed``: called between reads while following (``run -i`` hands input on there)."""
    path, max_files = container.log_path, container.config['log']['max_files']
    follower = logs.Follower(path) if follow else None
    try:
        history = logs.tail(path, tail, max_files)
        for entry in history:
            _write_entry(entry)
        if follower is None:
            return
        follower.skip(history)
        while True:
            ended = not os.path.isdir(container.path()) or not _running(container)
            for entry in follower.read():  # after the end was seen: what was written before it
                _write_entry(entry)
            if ended:
                return
            if feed is None or not feed(0.2):
                time.sleep(0.2)
    finally:
        if follower is not None:
            follower.close()


def _running(container):
    try:
        status = container.status()
    except NsboxError:
        return False
    return status['running'] or status['status'] == 'restarting'


def exit_for(exc):
    """``exec``/``run``: the exit code of nsbox's own failure, as Docker's: 127 the command was not
    found, 126 it could not be run, 125 anything else (so a command's own 1 is never mistaken for it)."""
    # The command's own failure, however it came (process.enter's error, or the supervisor's report of a start:
    # a ContainerError that keeps the action and errno): found or not, runnable or not.
    if exc.action in ('find', 'exec') and exc.errno in (errno.ENOENT, errno.EACCES, errno.ENOEXEC, errno.EPERM):
        return EXIT_NOT_FOUND if exc.errno == errno.ENOENT else EXIT_CANNOT_RUN
    return EXIT_NSBOX


def _failed(exc):
    sys.stderr.write('nsbox: %s\n' % exc.message)
    return exit_for(exc)


def exec_verb(args):
    """``nsbox exec``."""
    try:
        return _exec(args)
    except NsboxError as exc:
        return _failed(exc)


def _exec(args):
    cfg = hostconfig.load(args.config)
    env = dict(item.partition('=')[::2] for item in args.env or ())
    if not args.cmd:
        raise NsboxError('exec in', 'container %s' % args.name, 'give the command to run')
    what = dict(env=env or None, user=args.user, workdir=args.workdir)
    if not args.tty:  # the command gets this process's own stdout and stderr (and stdin with -i): streamed as they come
        stdin = 0 if args.interactive else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        try:
            child, _pids = execute.exec_start(cfg, args.name, args.cmd, (stdin, 1, 2), **what)
        finally:
            if stdin:
                os.close(stdin)
        return term.wait(child)
    master, slave = execute.exec_pty(cfg, args.name)
    try:
        size_from = term.terminal_fd(0, 1)
        term.copy_winsize(size_from, master)  # before the start: the command sees its size at once
        try:
            child, _pids = execute.exec_start(cfg, args.name, args.cmd, (slave, slave, slave), terminal=True, **what)
        finally:
            os.close(slave)
        stdin = 0 if args.interactive else None
        with term.raw_mode(term.terminal_fd(stdin)):
            return term.relay(master, child, stdin=stdin, winsize_from=size_from)
    finally:
        os.close(master)


def run_verb(args):
    """``nsbox run``."""
    try:
        return _run(args)
    except NsboxError as exc:
        return _failed(exc)


def run_options(args):
    """The ``container`` module's options from ``nsbox run``'s flags (the same checks then apply)."""
    opts = {'image': args.image, 'tty': args.tty, 'interactive': args.interactive}
    if args.cmd:
        opts['command'] = list(args.cmd)
    if args.env:
        opts['env'] = dict(item.partition('=')[::2] for item in args.env)
    if args.volume:
        opts['volumes'] = list(args.volume)
    if args.publish:
        opts['published_ports'] = list(args.publish)
    if args.network:
        opts['network_mode'] = args.network
    return opts


def _run(args):
    """Create and start through the container service (``state: started``, pulling a missing image);
    ``-d`` prints the id, else the log is streamed until the container ends and its exit code returned."""
    if args.rm and args.detach:
        raise ContainerError('run', 'image %s' % args.image, '--rm needs the container attached (no -d): nothing would remove it at its end')
    cfg = hostconfig.load(args.config)
    name = args.name or 'run-%s' % os.urandom(4).hex()
    if converge.open_store(cfg).find(name) is not None:
        raise ContainerError('run', 'container %s' % name, 'the name is in use (remove it, or give another --name)')
    attach_tty = args.tty and not args.detach
    out = converge.ensure(cfg, name, run_options(args), state='present' if attach_tty else 'started')
    if args.detach:
        sys.stdout.write(out['container']['id'] + '\n')
        return 0
    container = converge.open_store(cfg).find(name)
    feed = _stdin_feeder(container) if args.interactive and not args.tty else None
    try:
        if attach_tty:
            _run_on_terminal(cfg, container, args.interactive)
        else:
            print_log(container, follow=True, feed=feed)
        code = _exit_code(container)
    except KeyboardInterrupt:  # as docker run without a terminal: Ctrl-C stops the container
        store = converge.open_store(cfg)
        with store.lock(), container.lock():
            converge.stop(cfg, container)
        code = container.status().get('exit_code')
    finally:
        if feed is not None:
            feed.close()
    if args.rm:
        store = converge.open_store(cfg)
        with store.lock(), container.lock():
            converge.remove(cfg, store, container, force=True)
    return EXIT_NSBOX if code is None else code


def _run_on_terminal(cfg, container, interactive):
    """``run -t`` attached: the init's terminal is a pty of this command's (service.start's ``console``),
    relayed as ``exec -it`` relays; returns once every process of the container let go of it."""
    master, slave = syscall.open_pty()
    try:
        size_from = term.terminal_fd(0, 1)
        term.copy_winsize(size_from, master)
        try:
            store = converge.open_store(cfg)
            with store.lock(), container.lock():
                converge.start(cfg, container, console=slave)
        finally:
            os.close(slave)
        stdin = 0 if interactive else None
        with term.raw_mode(term.terminal_fd(stdin)):
            term.relay(master, None, stdin=stdin, winsize_from=size_from)
    finally:
        os.close(master)


def _exit_code(container, timeout=10.0):
    """The exit code recorded once the container ended (its supervisor records it a moment after the end)."""
    deadline = time.monotonic() + timeout
    while True:
        status = container.status()
        if (not status['running'] and status['status'] != 'restarting') or time.monotonic() > deadline:
            return status.get('exit_code')
        time.sleep(0.05)


class _StdinFeeder:
    """``run -i``: this command's stdin into the container's stdin FIFO (supervisor.container_stdio), while the log is followed."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        os.set_blocking(self.fd, True)
        self.open = True

    def __call__(self, timeout):
        """Wait up to ``timeout`` for input and pass it on; False once there is nothing more to read."""
        if not self.open:
            return False
        if select.select([0], [], [], timeout)[0]:
            chunk = os.read(0, 65536)
            if not chunk:
                self.open = False  # the init holds the FIFO open itself: it never sees end-of-file (docs/cli.md)
                return False
            try:
                os.write(self.fd, chunk)
            except BrokenPipeError:
                self.open = False
        return True

    def close(self):
        os.close(self.fd)


def _stdin_feeder(container):
    return _StdinFeeder(os.path.join(container.run_dir, 'stdin'))
