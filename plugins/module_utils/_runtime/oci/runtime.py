# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OCI runtime's verbs on the library: create, start, state, kill, delete, exec, pause, resume.

Every step is the container code's own: ``process.start`` (with its barrier) makes the init,
``process.enter`` runs exec and the startContainer hooks, ``barrier.release`` is start,
the cgroup manager (cgroups/) holds limits, freezes, kills and removes. This file only keeps the
state of OCI containers and runs the hooks.

State: ``<root>/<id>/state.json`` (default root /run/nsbox-oci, apart from nsbox's own containers),
written atomically, and ``<root>/<id>/exec.fifo``, the barrier, present from create until start.
No process of ours stays: the caller of ``create`` (podman's conmon) is the init's parent once
our intermediate exits (it is a child subreaper; without one the host's init adopts it). So the
status is re-derived on every read, as runc does: the init's pid *and* its start time (a reused
pid is not the container), the barrier (``created`` while it exists), the freezer (``paused``).

The container code (process.py and what it imports) and the spec translation are imported by
the verbs that need them, not by ``state``, ``kill``, ``delete``: podman calls those often, and
every call is a new interpreter that pays for each import again.

Status: creating (create is under way: its own pid is recorded) -> created -> running (paused)
-> stopped. A create that fails removes everything it made.

Deferred imports: ``state``, ``kill`` and ``delete`` do not import the process code nor the spec
translation (start-up cost, docs/oci.md).
"""
from __future__ import annotations

import datetime
import json
import os
import shutil
import signal
import subprocess

from ..kernel import fsutil, signals
from ..cgroups.factory import manager_for
from ..cgroups.layout import Layout
from ..cgroups.resources import Resources
from ..errors import ConfigError, NsboxError
from ..kernel.namespaces import boot_id, process_stamp
from ..kernel.syscall import LINUX

OCI_VERSION = '1.0.2'  # of the runtime spec, as state and features report it
DEFAULT_ROOT = '/run/nsbox-oci'
SCHEMA_VERSION = 1
HOOK_TIMEOUT = 60.0  # seconds, when a hook names none
_ID_CHARS = frozenset('abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.')


def _process():
    from ..launch import process  # pylint: disable=import-outside-toplevel
    return process


def _ocispec():
    from . import spec  # pylint: disable=import-outside-toplevel
    return spec


class OciError(NsboxError):
    """An OCI runtime operation failed (the container's state, a hook, a wrong status for the verb)."""


def check_id(container_id):
    if not container_id or len(container_id) > 1024 or set(container_id) - _ID_CHARS or container_id in ('.', '..'):
        raise ConfigError('use', 'container id %r' % (container_id,), 'an id is letters, digits and _+-. (no "/")')
    return container_id


def _alive(pid, start_time):
    stamp = process_stamp(pid) if pid else None
    return stamp is not None and stamp[0] not in ('Z', 'X', 'x') and (start_time is None or stamp[1] == start_time)


class OciContainer:
    """One OCI container's record under the runtime root."""

    def __init__(self, root, container_id, kernel=LINUX):
        self.id = check_id(container_id)
        self.kernel = kernel  # kernel/syscall.py's Linux; a recording fake in the unit tests
        self.dir = os.path.join(root, container_id)
        self.state_path = os.path.join(self.dir, 'state.json')
        self.fifo = os.path.join(self.dir, 'exec.fifo')
        self.record = None

    def exists(self):
        return os.path.isfile(self.state_path)

    def load(self):
        self.record = fsutil.read_json(self.state_path, 'the state of container %s' % self.id, SCHEMA_VERSION)
        if self.record is None:
            raise OciError('find', 'container %s' % self.id, 'it does not exist', errno=2)
        return self

    def save(self):
        fsutil.write_json(self.state_path, self.record, 0o600)

    def manager(self):
        """The cgroup manager, on the hierarchies recorded at create (read from mountinfo once per container, not per verb)."""
        path, driver = self.record['cgroup']
        if not self.record.get('layout'):
            self.record['layout'] = Layout.detect().to_dict()
        layout = self.record['layout']
        return manager_for(path, driver, Layout(layout['mode'], layout['unified'], layout['v1']))

    @property
    def pid(self):
        return self.record.get('pid') or 0

    def status(self):
        """creating | created | running | paused | stopped, from the kernel's facts (see the module docstring)."""
        rec = self.record
        if rec.get('boot_id') and rec['boot_id'] != boot_id():
            return 'stopped'
        if rec['status'] == 'creating':
            return 'creating' if _alive(rec.get('creator'), rec.get('creator_start')) else 'stopped'
        if not _alive(self.pid, rec.get('start_time')):
            return 'stopped'
        if os.path.exists(self.fifo):
            return 'created'
        try:
            frozen = self.manager().read(Resources(frozen=True)).get('frozen')
        except (NsboxError, OSError):
            frozen = False
        return 'paused' if frozen else 'running'

    def state(self):
        """The runtime spec's state object."""
        status = self.status()
        return {'ociVersion': OCI_VERSION, 'id': self.id, 'status': status,
                'pid': self.pid if status in ('created', 'running', 'paused') else 0,
                'bundle': self.record['bundle'], 'annotations': self.record.get('annotations') or {},
                'created': self.record.get('created'), 'owner': ''}

    def need(self, verb, *statuses):
        status = self.status()
        if status not in statuses:
            raise OciError(verb, 'container %s' % self.id, 'it is %s (%s needs %s)' % (status, verb, ' or '.join(statuses)))
        return status


# -- hooks -----------------------------------------------------------------------------------------
def run_hooks(container, kind, state, strict=True):
    """Run the hooks of ``kind`` in order, each with the state JSON on stdin (the spec's contract).
    ``strict``: a failing hook is an error (create, start); else it is only reported (poststart, poststop)."""
    failures = []
    for hook in container.record['hooks'].get(kind) or ():
        data = json.dumps(state).encode()
        try:
            res = subprocess.run(hook['args'], executable=hook['path'], input=data, env=dict(e.split('=', 1) for e in hook['env'] if '=' in e),
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=hook.get('timeout') or HOOK_TIMEOUT,
                                 check=False, cwd=container.record['bundle'])
            code, detail = res.returncode, res.stderr.decode('utf-8', 'replace').strip()[-500:]
        except subprocess.TimeoutExpired:
            code, detail = None, 'no end within %ss' % (hook.get('timeout') or HOOK_TIMEOUT)
        except OSError as exc:
            code, detail = None, exc.strerror or str(exc)
        if code != 0:
            cause = detail if code is None else 'exit code %s%s' % (code, ': ' + detail if detail else '')
            err = OciError('run', '%s hook %s' % (kind, hook['path']), cause)
            if strict:
                raise err
            failures.append(err)
    return failures


def _run_hook_inside(container, hook, state):
    """A startContainer hook: run in the container's namespaces (process.enter), path as the container sees it."""
    hook_process = {'args': [hook['path']] + hook['args'][1:], 'env': hook['env'], 'cwd': '/',
                    'capabilities': container.record['spec']['capabilities'], 'no_new_privs': False, 'seccomp': None}
    manager = container.manager()
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            pid = _process().enter(container.pid, hook_process, (read_end, null, 2), lambda p: manager.add_procs([p]),
                                   start_time=container.record['start_time'], kernel=container.kernel)
        finally:
            os.close(null)
        os.close(read_end)
        read_end = None
        try:
            os.write(write_end, json.dumps(state).encode())
        except BrokenPipeError:
            pass
        os.close(write_end)
        write_end = None
        code = _process().wait_status(pid, container.kernel)
    finally:
        for fd in (read_end, write_end):
            if fd is not None:
                os.close(fd)
    if code != 0:
        raise OciError('run', 'startContainer hook %s' % hook['path'], 'exit code %d' % code)


# -- create ----------------------------------------------------------------------------------------
def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat().replace('+00:00', 'Z')


def _write_pid_file(path, pid):
    if path:
        fsutil.atomic_write(os.path.abspath(path), str(pid).encode(), 0o644)


def create(root, container_id, bundle, pid_file=None, console_socket=None, systemd_cgroup=False, stdio=(0, 1, 2), kernel=LINUX):
    """Set the container up to its barrier (status created); returns the init's pid."""
    bundle = os.path.abspath(bundle)
    container = OciContainer(root, container_id, kernel)
    config = _ocispec().load(bundle)
    plan = _ocispec().translate(config, bundle, container.id, systemd_cgroup)
    launch = plan['spec']
    if launch.terminal and not console_socket:
        raise ConfigError('use', 'process.terminal', 'a terminal needs --console-socket')
    resources = Resources.from_options(plan['resources'])
    os.makedirs(root, 0o700, exist_ok=True)
    try:
        os.mkdir(container.dir, 0o700)
    except FileExistsError:
        raise OciError('create', 'container %s' % container.id, 'it exists already (in %s)' % root) from None
    me = process_stamp(os.getpid())
    container.record = {'schema_version': SCHEMA_VERSION, 'id': container.id, 'bundle': bundle, 'status': 'creating',
                        'creator': os.getpid(), 'creator_start': me[1] if me else None, 'boot_id': boot_id(), 'created': _now(),
                        'annotations': plan['annotations'], 'cgroup': list(plan['cgroup']), 'hooks': plan['hooks'],
                        'spec': {'capabilities': list(launch.capabilities)}, 'pid': 0, 'start_time': None}
    manager = None
    try:
        container.save()
        os.mkfifo(container.fifo, 0o622)
        os.chmod(container.fifo, 0o622)  # whatever the umask: the container's user must be able to open it
        manager = container.manager()
        manager.apply(resources)
        pid = _process().start(launch, stdio, lambda p: manager.add_procs([p]), barrier=container.fifo, console_socket=console_socket,
                               kernel=kernel)
        stamp = process_stamp(pid)
        container.record.update(pid=pid, start_time=stamp[1] if stamp else None, status='created')
        container.save()
        state = container.state()
        run_hooks(container, 'createRuntime', state)
        run_hooks(container, 'createContainer', state)
        _write_pid_file(pid_file, pid)
    except BaseException:
        try:
            _destroy(container, manager)
        except NsboxError:
            pass  # the create's own error is the one to report; what could not be removed is in it or after it
        raise
    return pid


def _destroy(container, manager=None):
    """Kill what is left in the cgroup (and the init), remove the cgroup and the record. Safe to repeat."""
    errors = []
    if container.record and container.record.get('pid') and _alive(container.pid, container.record.get('start_time')):
        try:
            container.kernel.kill(container.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        manager = manager or (container.manager() if container.record else None)
        if manager is not None and manager.exists():
            manager.remove()
    except NsboxError as exc:
        errors.append(exc)
    shutil.rmtree(container.dir, ignore_errors=True)
    if errors:
        raise errors[0]


# -- the other verbs -------------------------------------------------------------------------------
def start(root, container_id, kernel=LINUX):
    container = OciContainer(root, container_id, kernel).load()
    container.need('start', 'created')
    state = container.state()
    for hook in container.record['hooks'].get('startContainer') or ():
        _run_hook_inside(container, hook, state)
    from ..launch import barrier  # pylint: disable=import-outside-toplevel
    barrier.release(container.fifo, container.pid, container.record['start_time'])
    try:
        os.unlink(container.fifo)
    except FileNotFoundError:
        pass
    container.record['status'] = 'running'
    container.save()
    for err in run_hooks(container, 'poststart', container.state(), strict=False):
        raise err  # the container runs; the caller is told, as runc does (it exits non-zero)


def state(root, container_id, kernel=LINUX):
    return OciContainer(root, container_id, kernel).load().state()


def parse_signal(value):
    """'TERM', 'SIGTERM', '15', 'sigkill' -> the signal number."""
    return signals.number(value)


def kill(root, container_id, sig='TERM', all_procs=False, kernel=LINUX):
    container = OciContainer(root, container_id, kernel).load()
    number = parse_signal(sig)
    container.need('kill', 'created', 'running', 'paused')
    pids = [container.pid]
    if all_procs:
        manager = container.manager()
        pids = manager._all_procs() if manager.exists() else pids  # pylint: disable=protected-access
    for pid in pids:
        try:
            kernel.kill(pid, number)
        except ProcessLookupError:
            pass


def delete(root, container_id, force=False, kernel=LINUX):
    container = OciContainer(root, container_id, kernel)
    if not container.exists():
        if force:
            return
        container.load()  # the clear "does not exist" error
    container.load()
    status = container.status()
    if status in ('running', 'paused', 'creating') and not force:
        raise OciError('delete', 'container %s' % container.id, 'it is %s (stop it first, or use --force)' % status)
    state = container.state()
    if status == 'paused':
        container.manager().freeze(False)
    _destroy(container)
    for err in run_hooks(container, 'poststop', dict(state, status='stopped'), strict=False):
        raise err


def pause(root, container_id, frozen=True, kernel=LINUX):
    container = OciContainer(root, container_id, kernel).load()
    container.need('pause' if frozen else 'resume', 'running' if frozen else 'paused')
    container.manager().freeze(frozen)


def read_process_file(path):
    """An ``exec --process`` file: OCI's process object."""
    try:
        with open(path, encoding='utf-8') as f:
            return json.load(f)
    except OSError as exc:
        raise ConfigError.from_oserror('read', 'the process file %s' % path, exc) from None
    except ValueError as exc:
        raise ConfigError('parse', 'the process file %s' % path, 'not JSON: %s' % exc, path=path) from None


def process_from_bundle(root, container_id, command):
    """``exec ID COMMAND...``: the bundle's process (env, user, cwd, capabilities) running COMMAND, without a terminal."""
    container = OciContainer(root, container_id).load()
    data = dict(_ocispec().load(container.record['bundle']).get('process') or {})
    data.update(args=list(command), terminal=False)
    return data


def exec_process(root, container_id, data, pid_file=None, detach=False, console_socket=None, stdio=(0, 1, 2), kernel=LINUX):
    """Run ``data`` (OCI's process object) in the running container; returns its exit code (0 once it
    runs, with ``detach``)."""
    container = OciContainer(root, container_id, kernel).load()
    container.need('exec', 'running')
    fields = _ocispec().process_of(data, 'the process file')
    fields.pop('oom_score_adj', None)  # the container's, set at its start
    config = _ocispec().load(container.record['bundle'])
    linux = config.get('linux') or {}
    fields['seccomp'] = _ocispec().seccomp_profiles.parse_profile(linux['seccomp'], 'linux.seccomp') if linux.get('seccomp') else None
    command = _process().Exec.of(fields)
    if command.terminal and not console_socket:
        raise ConfigError('use', 'process.terminal', 'a terminal needs --console-socket')
    manager = container.manager()
    pid = _process().enter(container.pid, command, stdio, lambda p: manager.add_procs([p]), start_time=container.record['start_time'],
                           detach=detach, console_socket=console_socket, kernel=kernel)
    _write_pid_file(pid_file, pid)
    if detach:
        return 0
    return _process().wait_status(pid, kernel)


def list_ids(root):
    try:
        return sorted(n for n in os.listdir(root) if os.path.isfile(os.path.join(root, n, 'state.json')))
    except FileNotFoundError:
        return []
