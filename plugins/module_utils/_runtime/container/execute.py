# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A process run in a running container: ``container_exec``, ``nsbox exec``, healthchecks.

The command enters the container's namespaces, cgroup, user, capabilities and seccomp filter
through ``launch.process.enter``; ``exec_in`` gathers its output with a timeout, ``exec_start``
and ``exec_pty`` hand the stdio to an interactive front.
"""
from __future__ import annotations

import os
import select
import signal
import time

from ..errors import ConfigError, NsboxError
from ..launch import mounts, process
from ..launch.spec import Exec
from . import assemble, options, security, users
from .store import ContainerError, ContainerStore
from ..kernel.syscall import LINUX


class ExecTimeout(ContainerError):
    """A command run in a container (exec, a healthcheck) did not end in time; it was killed."""


def _exec_target(cfg, name):
    store = ContainerStore(cfg)
    container = store.find(name)
    if container is None:
        raise ContainerError('exec in', 'container %s' % name, 'it does not exist')
    status = container.status()
    if not status['running']:
        raise ContainerError('exec in', 'container %s' % name, 'it is not running (%s)' % status['status'])
    return container, status['pid']


def exists_in(cfg, name, path):
    """Whether ``path`` (as the running container ``name`` sees it) exists: container_exec's ``creates``/``removes``.
    Resolved inside the container's root (its symlinks cannot lead out)."""
    if not isinstance(path, str) or not path.startswith('/'):
        raise ConfigError('use', 'path %r' % (path,), 'an absolute path in the container is needed')
    _container, pid = _exec_target(cfg, name)
    return os.path.lexists(mounts.secure_join('/proc/%d/root' % pid, path))


def _exec_spec(container, pid, command, env, user, workdir, terminal):
    args = options.check({'command': command})['command'] if command is not None else None
    if not args:
        raise ConfigError('use', 'command', 'give the command to run')
    root = '/proc/%d/root' % pid
    passwd = assemble.read_in_root(root, '/etc/passwd')
    group = assemble.read_in_root(root, '/etc/group')
    who = users.resolve(user or container.config['user'], passwd, group, container.config.get('group_add') or ())
    extra = options.check({'env': env or {}})['env']
    merged = {}
    for item in container.config['env']:
        key, _sep, value = item.partition('=')
        merged[key] = value
    merged.setdefault('HOME', who['home'])
    if terminal:
        merged.setdefault('TERM', 'xterm')  # as docker exec -t
    merged.update(extra)
    settings = security.process_settings(container.config)
    return Exec.of({'args': args, 'env': ['%s=%s' % kv for kv in sorted(merged.items())],
                    'cwd': workdir or container.config.get('working_dir') or '/',
                    'user': {k: who[k] for k in ('uid', 'gid', 'additional_gids')}, 'terminal': terminal,
                    **{k: v for k, v in settings.items() if k in ('capabilities', 'no_new_privs', 'seccomp')},
                    'rlimits': container.config.get('ulimits') or []})


def exec_start(cfg, name, command, stdio, env=None, user=None, workdir=None, terminal=False):
    """Start ``command`` in running container ``name`` with ``stdio`` (three fds; with ``terminal`` a pty
    slave that becomes its controlling terminal). Returns (pid to :func:`process.wait_status` on, the
    command's own pids, as a list the caller may kill with :func:`kill_tree`). The caller closes ``stdio``."""
    container, pid = _exec_target(cfg, name)
    spec = _exec_spec(container, pid, command, env, user, workdir, terminal)
    manager = assemble.cgroup_of(cfg, container)
    command_pids = []

    def join(p):
        command_pids.append(p)
        manager.add_procs([p])
    return process.enter(pid, spec, stdio, join, kernel=cfg.kernel), command_pids


def exec_pty(cfg, name):
    """(master, slave) of a pseudo-terminal for ``exec -t`` in running container ``name``: from the
    container's own devpts (``tty`` inside names ``/dev/pts/N``), else — no devpts there — the host's."""
    _container, pid = _exec_target(cfg, name)
    try:
        return cfg.kernel.open_pty(mounts.secure_join('/proc/%d/root' % pid, '/dev/pts/ptmx'))
    except NsboxError:
        master, slave = os.openpty()
        os.set_inheritable(master, False)
        os.set_inheritable(slave, False)
        return master, slave


def exec_in(cfg, name, command, stdin=None, env=None, user=None, workdir=None, timeout=None):
    """Run ``command`` inside running container ``name``: {'rc', 'stdout', 'stderr'} (bytes decoded as UTF-8)."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        child, command_pids = exec_start(cfg, name, command, (in_r, out_w, err_w), env=env, user=user, workdir=workdir)
    except BaseException:
        for fd in (in_w, out_r, err_r):
            os.close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    try:
        out = _communicate(in_w, out_r, err_r, (stdin or '').encode() if isinstance(stdin, str) else (stdin or b''), timeout)
    except ExecTimeout:  # the command and what it started are killed (they would run on, unseen)
        for p in command_pids:
            kill_tree(p, cfg.kernel)
        process.wait_status(child, cfg.kernel)
        raise
    rc = process.wait_status(child, cfg.kernel)
    return {'rc': rc, 'stdout': out[0].decode('utf-8', 'replace'), 'stderr': out[1].decode('utf-8', 'replace')}


def _children_map(proc='/proc'):
    out = {}
    for entry in os.listdir(proc):
        if entry.isdigit():
            try:
                with open('%s/%s/stat' % (proc, entry)) as f:
                    ppid = int(f.read().rpartition(')')[2].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            out.setdefault(ppid, []).append(int(entry))
    return out


def kill_tree(pid, kernel=LINUX):
    """SIGKILL ``pid`` and every process below it (found by their parents, all killed at once: a child
    of a killed parent would be re-parented out of reach). Twice, for what forked meanwhile."""
    for _round in range(2):
        children = _children_map()
        tree, todo = [], [pid]
        while todo:
            p = todo.pop()
            tree.append(p)
            todo.extend(children.get(p, ()))
        for p in tree:
            try:
                kernel.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _communicate(in_w, out_r, err_r, data, timeout):
    bufs = {out_r: [], err_r: []}
    open_r = [out_r, err_r]
    writers = [in_w] if data else []
    if not data:
        os.close(in_w)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        while open_r or writers:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if left == 0.0:
                raise ExecTimeout('exec', 'a command', 'no end after %ss' % timeout)
            rlist, wlist, _x = select.select(open_r, writers, [], left)
            for fd in rlist:
                chunk = os.read(fd, 65536)
                if chunk:
                    bufs[fd].append(chunk)
                else:
                    open_r.remove(fd)
                    os.close(fd)
            if wlist:
                try:
                    n = os.write(in_w, data[:65536])
                    data = data[n:]
                except BrokenPipeError:
                    data = b''
                if not data:
                    os.close(in_w)
                    writers = []
    finally:
        for fd in open_r + writers:
            os.close(fd)
    return b''.join(bufs[out_r]), b''.join(bufs[err_r])
