# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers on disk, and their status as the kernel tells it.

``<data_root>/containers/<id>/`` holds config.json (the resolved config), state.json (what
was last recorded: pids with start times, boot id, exit code, OOM, times), the overlay's
upper/ and work/, the rootfs mount point merged/, hosts/hostname/resolv.conf and logs/.
``<state_dir>/containers/<id>/`` holds what lives only while the host is up: the lock and
the stdout/stderr FIFOs. A container is found by scanning the config files (no name index
that could drift); a creation is a rename of a complete directory out of tmp/, a removal a
rename into tmp/ before the delete, so a crash never leaves half a container visible.

Status is never taken from state.json alone: a recorded ``running`` is checked against the
process (pid + start time + boot id); one that is gone reads ``exited`` with an unknown exit
code, and a dead supervisor reads ``supervised: false``.
"""
from __future__ import annotations

import binascii
import contextlib
import fcntl
import os
import shutil
import time

from ..errors import NsboxError
from ..kernel.fsutil import locked, read_json, write_json
from ..kernel.namespaces import Holder, boot_id
from . import options

STATE_SCHEMA = 1
STATUSES = ('created', 'running', 'exited')


class ContainerError(NsboxError):
    """A container operation failed."""


def now():
    """RFC 3339 UTC with nanoseconds, as Docker writes times."""
    t = time.time()
    return time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(t)) + '.%09dZ' % int((t % 1) * 1e9)


def new_id():
    return binascii.hexlify(os.urandom(32)).decode()


class Container:
    """One container's paths, config and recorded state."""

    def __init__(self, store, cid, config):
        self.store, self.id, self.config = store, cid, config
        self.name = config['name']
        self.dir = os.path.join(store.root, cid)
        self.run_dir = os.path.join(store.run_root, cid)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    @property
    def rootfs(self):
        return self.path('merged')

    @property
    def log_path(self):
        return self.path('logs', '%s-json.log' % self.id)

    def fifo(self, stream):
        return os.path.join(self.run_dir, stream)

    @contextlib.contextmanager
    def lock(self):
        os.makedirs(self.run_dir, 0o700, exist_ok=True)
        with locked(os.path.join(self.run_dir, 'lock')):
            yield

    # -- recorded state --------------------------------------------------------------------
    def read_state(self):
        state = read_json(self.path('state.json'), 'the state of container %s' % self.name, STATE_SCHEMA)
        return state or {'schema_version': STATE_SCHEMA, 'status': 'created'}

    def write_state(self, **changes):
        state = self.read_state()
        state.update(changes)
        state['schema_version'] = STATE_SCHEMA
        write_json(self.path('state.json'), state, 0o600, spare=True)  # a stop and an exit write here on a full disk too
        return state

    def read_config(self):
        """The stored config as it is on disk now (another process may have updated it)."""
        config = read_json(self.path('config.json'), 'the config of container %s' % self.name, options.SCHEMA_VERSION)
        if not config:
            raise ContainerError('read', 'the config of container %s' % self.name, 'it is gone')
        return config

    def write_config(self, config):
        config = dict(config, schema_version=options.SCHEMA_VERSION)
        write_json(self.path('config.json'), config, 0o600)
        self.config = config

    def status(self, proc='/proc', boot_id_path='/proc/sys/kernel/random/boot_id', settle=5.0):
        """The recorded state checked against the kernel (see the module docstring).

        An init that ended while its supervisor lives is an exit being recorded: that is awaited
        (at most ``settle`` seconds), so the exit code is known, never reported as lost.
        """
        deadline = time.monotonic() + settle
        while True:
            state = self.read_state()
            out = self._status(state, proc, boot_id_path)
            if out is not None or time.monotonic() >= deadline:
                break
            time.sleep(0.02)
        return out if out is not None else self._status(state, proc, boot_id_path, settled=True)

    def _status(self, state, proc, boot_id_path, settled=False):
        keys = ('status', 'pid', 'exit_code', 'oom_killed', 'started_at', 'finished_at', 'error', 'restart_count', 'restarts')
        out = {k: state.get(k) for k in keys}
        out['restarts'] = out['restarts'] or []
        out['running'] = False
        out['supervised'] = False
        if state.get('status') == 'running':
            init = Holder.from_dict({'pid': state.get('pid'), 'start_time': state.get('pid_start'), 'boot_id': state.get('boot_id')})
            sup = Holder.from_dict(state.get('supervisor') or {})
            if init is not None and init.alive(proc, boot_id_path):
                out['running'] = True
                out['supervised'] = bool(sup and sup.alive(proc, boot_id_path))
            elif not settled and sup and sup.alive(proc, boot_id_path):
                return None  # its supervisor is recording the exit
            else:
                out.update(status='exited', pid=None, exit_code=None, oom_killed=state.get('oom_killed', False))
                out['error'] = 'the container ended while nothing supervised it (%s): its exit code is unknown' % (
                    'the host rebooted' if state.get('boot_id') != boot_id(boot_id_path) else 'its supervisor was gone')
        elif state.get('status') == 'restarting':  # the supervisor waits out the back-off of the restart policy
            out['pid'] = None
            sup = Holder.from_dict(state.get('supervisor') or {})
            out['supervised'] = bool(sup and sup.alive(proc, boot_id_path))
            if not out['supervised']:
                out['status'] = 'exited'
        elif state.get('status') == 'exited':
            out['pid'] = None
            sup = Holder.from_dict(state.get('supervisor') or {})
            out['supervised'] = bool(sup and sup.alive(proc, boot_id_path))  # its restart policy may start it again
        out['oom_killed'] = bool(out.get('oom_killed'))
        out['restart_count'] = out.get('restart_count') or 0
        return out


class ContainerStore:
    """All containers of one data-root."""

    def __init__(self, cfg):
        self.data_root, self.state_dir = cfg.data_root, cfg.state_dir
        self.root = os.path.join(self.data_root, 'containers')
        self.run_root = os.path.join(self.state_dir, 'containers')
        self.tmp = os.path.join(self.data_root, 'tmp')

    def ensure(self):
        for d, mode in ((self.root, 0o710), (self.run_root, 0o700), (self.tmp, 0o700)):
            os.makedirs(d, mode, exist_ok=True)

    @contextlib.contextmanager
    def lock(self):
        """Creation and removal of any container: names stay unique."""
        self.ensure()
        with locked(os.path.join(self.root, '.lock')):
            yield

    def all(self):
        out = []
        try:
            entries = sorted(os.listdir(self.root))
        except FileNotFoundError:
            return out
        for cid in entries:
            if len(cid) != 64:
                continue
            config = read_json(os.path.join(self.root, cid, 'config.json'), 'the config of container %s' % cid[:12],
                               options.SCHEMA_VERSION)
            if config:
                out.append(Container(self, cid, config))
        return out

    def find(self, ref):
        """By name, full id or a unique id prefix of 12+ characters; None when there is none."""
        matches = [c for c in self.all() if c.name == ref]
        if not matches and len(ref) >= 12:
            matches = [c for c in self.all() if c.id.startswith(ref)]
        if len(matches) > 1:
            raise ContainerError('find', 'container %s' % ref, 'the id prefix is not unique')
        return matches[0] if matches else None

    def create(self, config):
        """Make a container's directory in tmp/ and rename it into place (call under lock())."""
        self.ensure()
        cid = new_id()
        work = os.path.join(self.tmp, 'container-' + cid)
        held = None
        try:
            os.mkdir(work, 0o700)
            # Held while it is built: the image store's cleanup of tmp/ removes only staging dirs nobody holds.
            held = os.open(work, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(held, fcntl.LOCK_EX)
            for sub in ('upper', 'work', 'merged', 'logs'):
                # upper is the root directory of the container's filesystem: 0755 like an image's /
                os.makedirs(os.path.join(work, sub), 0o755 if sub in ('upper', 'merged') else 0o700)
            write_json(os.path.join(work, 'config.json'), dict(config, schema_version=options.SCHEMA_VERSION), 0o600)
            write_json(os.path.join(work, 'state.json'), {'schema_version': STATE_SCHEMA, 'status': 'created',
                                                          'created_at': now()}, 0o600)
            os.rename(work, os.path.join(self.root, cid))
        except OSError as exc:
            shutil.rmtree(work, ignore_errors=True)
            raise ContainerError.from_oserror('create', 'container %s' % config['name'], exc)
        finally:
            if held is not None:
                os.close(held)
        return Container(self, cid, config)

    def delete(self, container):
        """Remove a stopped container's files (call under lock(), after its mounts and cgroup are gone)."""
        gone = os.path.join(self.tmp, 'removed-' + container.id)
        try:
            os.rename(container.dir, gone)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise ContainerError.from_oserror('remove', 'container %s' % container.name, exc)
        shutil.rmtree(gone, ignore_errors=True)
        shutil.rmtree(container.run_dir, ignore_errors=True)

    def cleanup_tmp(self):
        """Half-made or half-removed containers from an interrupted run."""
        with contextlib.suppress(FileNotFoundError):
            for entry in os.listdir(self.tmp):
                if entry.startswith(('container-', 'removed-')):
                    shutil.rmtree(os.path.join(self.tmp, entry), ignore_errors=True)

    def images_in_use(self):
        """Manifest digests of the images containers were made from: an image removal keeps them."""
        return {c.config.get('image', {}).get('digest') for c in self.all()} - {None}
