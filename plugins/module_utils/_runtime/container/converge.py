# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container lifecycle: the ``container`` and ``containers`` modules' logic (what they show: info.py; the
image: pull.py; what is checked before anything stops: prechecks.py; exec: execute.py).

``ensure`` reads the container back (stored config, the kernel's view of its process, its
cgroup), compares it with the wanted config option by option (options.UPDATE says how each
difference is applied), and acts; in check mode it only predicts. Every action is recorded in
``actions``; ``changed`` is whether there were any.
"""
from __future__ import annotations

import json
import os
import select
import signal
import socket
import time

from ..cgroups.layout import systemd_booted
from ..cgroups.resources import ROWS
from ..host.config import CONFIG_PATH, load as load_host_config
from ..errors import ConfigError, NsboxError
from ..kernel.namespaces import Holder
from ..volume import volumes as volume_service
from . import assemble, health as health_mod, idranges, info as info_mod, options, parse, prechecks, pull as pulling, unit as unit_mod
from .store import ContainerError, ContainerStore, now
from ..kernel.fsutil import tree_size

SUPERVISOR_TIMEOUT = 60.0


STATES = ('present', 'started', 'stopped', 'restarted', 'healthy', 'absent')
REPLACED = '.replaced-'  # a container set aside by a recreate until its successor runs: NAME.replaced-ID
HEALTHY_WAIT_TIMEOUT = 300.0
PULL = pulling.PULL


def open_store(cfg):
    return ContainerStore(cfg)


# -- reading -------------------------------------------------------------------------------------


# -- acting -------------------------------------------------------------------------------------
def _spawn_supervisor(cfg, container, adopt=False, timeout=SUPERVISOR_TIMEOUT, console=None):
    """Double fork + setsid + exec of ``nsbox supervise``; waits for its answer (running or an error).
    ``console``: a terminal's slave fd, sent with the host config (SCM_RIGHTS), that the init gets as its stdio."""
    # Imported here: install pulls in hashlib and zipfile (start-up cost), needed only to spawn a supervisor.
    from ..host.install import library_argv  # pylint: disable=import-outside-toplevel
    argv = library_argv(['supervise', container.id, '--sync-fd', '3'] + (['--adopt'] if adopt else []),
                        what='the supervisor of container %s' % container.name)
    os.makedirs(container.run_dir, 0o700, exist_ok=True)
    log_path = os.path.join(container.run_dir, 'supervisor.log')
    ours, theirs = socket.socketpair()
    kernel = cfg.kernel
    pid = kernel.fork()
    if pid == 0:  # pragma: no cover - forked child: never returns into the caller
        try:
            kernel.setsid()
            if kernel.fork() != 0:
                kernel.exit_process(0)
            kernel.chdir('/')
            null = os.open(os.devnull, os.O_RDONLY)
            out = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            kernel.dup2(null, 0)
            kernel.dup2(out, 1)
            kernel.dup2(out, 2)
            kernel.dup2(theirs.fileno(), 3)
            os.closerange(4, 1 << 16)
            kernel.execve(argv[0], argv, {'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8'})
        except BaseException:  # pylint: disable=broad-except
            pass
        kernel.exit_process(127)
    theirs.close()
    kernel.waitpid(pid, 0)
    try:
        line = json.dumps({'config': cfg.data, 'console': console is not None}).encode() + b'\n'
        if console is not None:  # the fd rides on the line's first bytes: the reader takes it with them (recvmsg)
            sent = socket.send_fds(ours, [line], [console])
            ours.sendall(line[sent:])
        else:
            ours.sendall(line)
        answer = _read_line(ours, timeout)
    except (BrokenPipeError, ConnectionResetError):  # it ended before it read its config: no answer
        answer = ''
    finally:
        ours.close()
    if not answer:
        raise ContainerError('start', 'container %s' % container.name,
                             'its supervisor ended without an answer (see %s)' % log_path, path=log_path)
    data = json.loads(answer)
    if 'error' in data:
        raise ContainerError.from_dict(data['error'], 'start', 'container %s' % container.name)
    return data['pid']


def _read_line(sock, timeout):
    buf = b''
    deadline = time.monotonic() + timeout
    while not buf.endswith(b'\n'):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            raise ContainerError('start', 'a container', 'its supervisor did not answer within %ds' % timeout)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:  # it ended with our config line unread: no answer, as an EOF
            break
        if not chunk:
            break
        buf += chunk
    return buf.decode('utf-8', 'replace').strip()


def start(cfg, container, console=None):
    """Start a stopped container, or adopt a running one whose supervisor died. Returns the action or None.

    ``console`` (``nsbox run -t`` attached): the slave of the caller's pseudo-terminal, which the init gets
    as stdin, stdout and stderr and its controlling terminal instead of one of the supervisor's; its
    output is then the caller's to show (not logged). Only for a stopped container with ``tty``.
    """
    status = container.status()
    if console is not None and (status['running'] or status['supervised'] or not container.config.get('tty')):
        raise ContainerError('attach a terminal to', 'container %s' % container.name,
                             'it is %s' % status['status'] if container.config.get('tty') else 'it was made without tty')
    if status['running']:
        if status['supervised']:
            return None
        if container.read_state().get('stop_requested'):
            container.write_state(stop_requested=False)  # a start of a running container: no stop is pending any more
        _spawn_supervisor(cfg, container, adopt=True)
        return 'adopted running container %s (its supervisor had died)' % container.name
    if status['status'] == 'restarting' or status['supervised']:  # its supervisor starts it again (restart policy)
        return None
    if container.read_state().get('status') in ('running', 'restarting'):  # recorded so, nothing there: clean up first
        _cleanup_dead(cfg, container)
    # A start by the user: the restart policy counts afresh, and a stop asked for before is over.
    container.write_state(stop_requested=False, restart_count=0, restart_delay=None)
    _spawn_supervisor(cfg, container, console=console)
    return 'started container %s' % container.name


def _cleanup_dead(cfg, container):
    assemble.teardown(cfg, container)
    container.write_state(status='exited', pid=None, exit_code=None, finished_at=now(), supervisor=None,
                          error='the container ended while nothing supervised it: its exit code is unknown')


def stop(cfg, container, force=False, timeout=None):
    """Signal the init (stop_signal, then SIGKILL to the whole cgroup after stop_timeout). Returns the action or None.

    The stop is recorded first (``stop_requested``): the restart policy never undoes it, and a
    supervisor waiting out a back-off gives up. Returns once the supervisor has ended.
    """
    status = container.status()
    state = container.read_state()
    supervisor_holder = Holder.from_dict(state.get('supervisor') or {})
    if not supervisor_holder or not supervisor_holder.alive():
        supervisor_holder = None
    if supervisor_holder is not None or state.get('status') in ('running', 'restarting'):
        container.write_state(stop_requested=True)
    if not status['running']:
        restarting = status['status'] == 'restarting'
        if supervisor_holder is not None:
            _wait_supervisor(cfg, container, supervisor_holder, 15)
        if container.read_state().get('status') in ('running', 'restarting'):
            _cleanup_dead(cfg, container)
        return 'stopped container %s (it was waiting to restart)' % container.name if restarting else None
    timeout = container.config.get('stop_timeout', 10) if timeout is None else timeout
    init = Holder(state['pid'], state['pid_start'], state['boot_id'])
    sig = signal.SIGKILL if force else getattr(signal, container.config.get('stop_signal') or 'SIGTERM')
    how = 'SIGKILL'
    if not force:
        try:
            cfg.kernel.kill(init.pid, sig)
        except ProcessLookupError:
            pass
        how = sig.name if _wait_gone(init, timeout) else '%s, then SIGKILL after %ds' % (sig.name, timeout)
    if init.alive():
        # SIGKILL to the init: in its own pid namespace that ends every process of it; what a
        # host-pid container left behind goes with its cgroup at teardown (the supervisor's, or ours).
        try:
            cfg.kernel.kill(init.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(init, 10)
    if supervisor_holder is not None:
        _wait_supervisor(cfg, container, supervisor_holder, 15)
    if container.read_state().get('status') in ('running', 'restarting'):
        _cleanup_dead(cfg, container)
    return 'stopped container %s (%s)' % (container.name, how)


def _wait_supervisor(cfg, container, holder, timeout):
    """Wait for the supervisor to end (it records the exit first). Should it have started the container
    again meanwhile (its policy, a stop it could not see yet), the stop is said again and the init killed."""
    deadline = time.monotonic() + timeout
    while holder.alive() and time.monotonic() < deadline:
        state = container.read_state()
        if not state.get('stop_requested'):
            container.write_state(stop_requested=True)
        if state.get('status') == 'running' and state.get('pid'):
            init = Holder(state['pid'], state.get('pid_start'), state.get('boot_id'))
            if init.alive():
                try:
                    cfg.kernel.kill(init.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.02)


def _wait_gone(init, timeout):
    deadline = time.monotonic() + timeout
    while init.alive():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def remove(cfg, store, container, force=True):
    actions = []
    action = stop(cfg, container, force=force)
    if action:
        actions.append(action)
    assemble.teardown(cfg, container)
    store.delete(container)
    if (container.config.get('userns') or {}).get('mode') == 'auto':
        idranges.RangeStore(cfg).release(container.id)  # its record is gone: the range is free already, this tidies the file
    actions.append('removed container %s' % container.name)
    return actions


def prune(cfg):
    """Remove every container that is not running (exited, created; none its supervisor may restart):
    [{'id', 'name', 'size'}] with the bytes its directory took (its writable layer, logs)."""
    store = open_store(cfg)
    gone = []
    with store.lock():
        for container in store.all():
            with container.lock():
                status = container.status()
                if status['running'] or status['supervised'] or status['status'] == 'restarting':
                    continue
                size = tree_size(container.path())
                remove(cfg, store, container, force=False)
                gone.append({'id': container.id, 'name': container.name, 'size': size})
    return gone


def apply_live(manager, resources, changes):
    """Write changed limits to the running container's cgroup (same process, no restart): ``changes`` is the
    plan ``manager`` has just read, so the layout is detected and the files are read once per update."""
    if changes and manager.exists():
        manager.apply(resources, changes)


def _view(container):
    if container is None:
        return {'exists': False}
    status = container.status()
    return {'exists': True, 'id': container.id, 'status': status['status'], 'running': status['running'],
            'config': options.display_config(container.config)}


def ensure(cfg, name, opts=None, state='started', recreate=False, force_kill=False, check_mode=False, pull='missing',
           comparisons=None, healthy_wait_timeout=HEALTHY_WAIT_TIMEOUT):
    """Converge container ``name``; {'changed', 'actions', 'container', 'diff'}. Options are checked before anything is touched.

    ``state: healthy`` is ``started``, then a wait (at most ``healthy_wait_timeout`` seconds) until
    its healthcheck says healthy; a container without a healthcheck is refused before anything is done.

    ``pull`` (missing, always, never: see pull_image) brings the image first, before the
    containers' lock is taken (a pull can be long); a failed pull leaves everything as it was.
    ``comparisons`` ({option or '*': strict|ignore|allow_more_present}) relaxes what counts as a difference.
    """
    checked, compare = check(cfg, name, opts, state, pull, comparisons, healthy_wait_timeout)
    wait_healthy = state == 'healthy'
    state = 'started' if wait_healthy else state
    store = open_store(cfg)
    if state == 'absent':
        with store.lock():
            settled = [] if check_mode else _repair(store, cfg, name)
            return _settled(settled, _ensure_absent(cfg, store, name, force_kill, check_mode))
    seen = store.find(name)
    image_ref = (opts or {}).get('image') or (seen.config['image']['name'] if seen else None)
    if not image_ref:
        raise ConfigError('create', 'container %s' % name, 'give image (the container does not exist yet)')
    pulled = pulling.pull_image(cfg, image_ref, pull, check_mode)
    with store.lock():
        settled = [] if check_mode else _repair(store, cfg, name)
        current = store.find(name)
        before = _view(current)
        if pulled['image'] is None:  # check mode: the image would be pulled, its config is not known yet
            return _predict_pull(cfg, current, name, image_ref, pulled, state, before)
        wanted = options.resolve(name, checked, pulled['image'], pulled['config'])
        prechecks.check_networks(cfg, wanted)
        if wait_healthy and not wanted.get('healthcheck'):
            raise ConfigError('use', 'state healthy', 'container %s has no healthcheck (give healthcheck, or the image has none)' % name)
        out = _settled(settled, _ensure_present(cfg, store, current, wanted, state, recreate, force_kill, check_mode, before, compare))
    if pulled['actions']:
        out['actions'][:0] = pulled['actions']
        out['changed'] = True
    if out['changed'] and pulled['config'] is not None:
        out['warnings'] = image_volume_warnings(pulled['config'], wanted)
    if wait_healthy and not check_mode:
        container = store.find(name)
        wait_until_healthy(container, healthy_wait_timeout)
        out['container'] = info_mod.describe(cfg, container)
    return out


def image_volume_warnings(image_config, config):
    """The image's VOLUMEs nothing is mounted on: their data would stay in the container's writable layer and go with
    it (Docker makes an anonymous volume there; nsbox does not yet, so it says so)."""
    targets = {m['target'] for m in config['mounts']}
    return ['the image declares VOLUME %s, and nothing is mounted there: its data stays in the container and is lost with it '
            '(mount a named volume there, e.g. volumes: [NAME:%s])' % (path, path)
            for path in sorted(image_config.get('Volumes') or {}) if parse.norm_path(path) not in targets]


def check(cfg, name, opts=None, state='started', pull='missing', comparisons=None, healthy_wait_timeout=HEALTHY_WAIT_TIMEOUT):
    """What :func:`ensure` refuses before it touches anything, with nothing done: (the checked options or None for
    absent, the comparisons). The ``containers`` module checks every item so before it converges any."""
    wait_healthy = _check_task(name, state, pull, healthy_wait_timeout)
    defaults = {'network_mode': cfg['default_network_mode'], 'network': cfg['default_network']['name'],
                'userns_pool': cfg['userns']['pool'], 'systemd': systemd_booted()}
    checked = options.check(opts or {}, defaults) if state != 'absent' else None
    if checked and name in checked['depends_on']:
        raise ConfigError('use', 'depends_on %s' % name, 'a container cannot depend on itself')
    if wait_healthy and checked['supervisor'] == 'systemd':
        raise ConfigError('use', 'state healthy', 'healthchecks are run by nsbox\'s own supervisor, not under a systemd unit (yet)')
    return checked, options.parse_comparisons(comparisons)


def _repair(store, cfg, name):
    """Under the store lock, before a converge reads the container: what crashed runs left (tmp/, a recreate midway)."""
    store.cleanup_tmp()
    return _settle_replaced(cfg, store, name)


def _settled(actions, out):
    if actions:
        out['actions'][:0] = actions
        out['changed'] = True
    return out


def _check_task(name, state, pull, healthy_wait_timeout):
    """The task's own arguments; returns whether it waits for healthy."""
    options.validate_name(name)
    if state not in STATES:
        raise ConfigError('use', 'state %r' % (state,), 'expected one of %s' % ', '.join(STATES))
    if pull not in PULL:
        raise ConfigError('use', 'pull %r' % (pull,), 'expected one of %s' % ', '.join(PULL))
    if state == 'healthy':
        if isinstance(healthy_wait_timeout, bool) or not isinstance(healthy_wait_timeout, (int, float)) or healthy_wait_timeout < 0:
            raise ConfigError('use', 'healthy_wait_timeout %r' % (healthy_wait_timeout,), 'expected seconds, 0 or more')
    return state == 'healthy'


def _ensure_absent(cfg, store, name, force_kill, check_mode):
    """state absent, under the store's lock: the unit (systemd stops it first) and the container removed."""
    current = store.find(name)
    before = _view(current)
    actions = []
    units = unit_mod.Units()
    unit_before = units.read(name) if units.is_ours(name) else None
    if unit_before is not None:
        actions.append('removed unit %s' % unit_mod.unit_name(name))
        if not check_mode:
            units.remove(name, force=force_kill)  # systemd stops it (and records the exit) before anything is removed
    if current is not None:
        if check_mode:
            actions.append('removed container %s' % name)
        else:
            with current.lock():
                actions += remove(cfg, store, current, force=force_kill)
    diff = {'before': before, 'after': {'exists': False}}
    return {'changed': bool(actions), 'actions': actions, 'container': None,
            'diff': [diff, _unit_diff(units, name, unit_before, None)] if unit_before is not None else diff}


def _ensure_present(cfg, store, current, wanted, state, recreate, force_kill, check_mode, before, compare):
    """Every state but absent, under the store's lock: as a unit, a new container, or the existing one converged."""
    name = wanted['name']
    if wanted['supervisor'] == 'systemd' or (current is not None and current.config.get('supervisor') == 'systemd'):
        return UnitConverge(cfg, store, name, wanted, check_mode, force_kill).run(current, state, recreate, before, compare)
    if current is None:
        return _create_and_converge(cfg, store, name, wanted, state, check_mode, before)
    with current.lock():
        return _converge(cfg, store, current, wanted, state, recreate, force_kill, check_mode, before, compare)


def wait_until_healthy(container, timeout):
    """Wait until the container's healthcheck says healthy; ContainerError when it ends or the time is up."""
    deadline = time.monotonic() + timeout
    while True:
        status = container.status()
        record = health_mod.read(container) if status['running'] else None
        if record and record.get('status') == 'healthy':
            return record
        if not status['running'] and status['status'] != 'restarting':
            raise ContainerError('wait for', 'container %s to be healthy' % container.name,
                                 'it is %s (exit code %s)' % (status['status'], status.get('exit_code')))
        if time.monotonic() >= deadline:
            last = (record or {}).get('log') or []
            raise ContainerError('wait for', 'container %s to be healthy' % container.name, 'still %s after %gs%s' % (
                (record or {}).get('status') or status['status'], timeout,
                ' (last check: exit code %s, %r)' % (last[-1]['exit_code'], last[-1]['output'][-200:]) if last else ''))
        time.sleep(0.1)


def _predict_pull(cfg, current, name, image_ref, pulled, state, before):
    """Check mode, the image not in the store yet: it would be pulled, then the container created or recreated."""
    running = bool(current) and before['running']
    will_run = state in ('started', 'restarted') or (state == 'present' and running)
    if current is None:
        actions = ['created container %s from %s' % (name, image_ref)]
    else:
        actions = ['recreated container %s (image %s: %s -> %s)' % (name, image_ref, current.config['image']['digest'], pulled['digest'])]
    if will_run:
        actions.append('started container %s' % name)
    after = {'exists': True, 'status': 'running' if will_run else 'created', 'running': will_run,
             'image': {'name': image_ref, 'digest': pulled['digest']}}
    return {'changed': True, 'actions': pulled['actions'] + actions, 'container': info_mod.describe(cfg, current) if current else None,
            'diff': {'before': before, 'after': after}}


def _replace(cfg, store, container, wanted, keep_running, force_kill):
    """A recreate. A running container is replaced only once its successor runs: it is set aside (renamed
    NAME.replaced-ID and stopped), the new one is made and started, and only then is the old one removed;
    should the new one fail to start, it is taken back and the old one is put back as it was and started
    again. A run killed in between leaves the old one set aside, which the next converge settles
    (:func:`_settle_replaced`)."""
    if not keep_running:
        remove(cfg, store, container, force=force_kill)
        return _create(cfg, store, wanted, False, undo=False)
    name = container.name
    container.write_config(dict(container.config, name='%s%s%s' % (name, REPLACED, container.id[:12])))
    try:
        stop(cfg, container, force=force_kill)
        new = _create(cfg, store, wanted, True, undo=True)
    except NsboxError as exc:
        container.write_config(dict(container.config, name=name))
        try:
            start(cfg, container)
        except NsboxError as again:
            raise type(exc)(exc.action, exc.obj, '%s; and container %s, put back, did not start again: %s' % (exc.cause, name, again),
                            path=exc.path, errno=exc.errno) from exc
        raise type(exc)(exc.action, exc.obj, '%s (container %s runs on as it was: nothing changed)' % (exc.cause, name),
                        path=exc.path, errno=exc.errno) from exc
    remove(cfg, store, container, force=True)
    return new


def _settle_replaced(cfg, store, name):
    """What a recreate killed midway set aside (:func:`_replace`): removed when its successor exists, else
    put back under its name (the converge then goes on with it). Call under the store lock."""
    actions = []
    for old in [c for c in store.all() if c.name.startswith(name + REPLACED)]:
        with old.lock():
            if store.find(name) is not None:
                actions += remove(cfg, store, old, force=True)
            else:
                old.write_config(dict(old.config, name=name))
                actions.append('put back container %s (a recreate of it had been interrupted)' % name)
    return actions


def _create(cfg, store, wanted, start_it, undo=True):
    """Create (named volumes it mounts first, as Docker) and maybe start; a failure takes back what this
    made (``undo``: also when the start fails; a recreate keeps the new container then, as before)."""
    _vol_actions, made = volume_service.create_missing(cfg, wanted)
    try:
        container = store.create(wanted)
    except NsboxError:
        volume_service.remove_created(cfg, made)
        raise
    if wanted['userns']['mode'] == 'auto':
        try:
            idranges.RangeStore(cfg).allocate(container.id)  # now, so info shows it; valid while the record exists
        except NsboxError:
            store.delete(container)
            volume_service.remove_created(cfg, made)
            raise
    if start_it:
        with container.lock():
            try:
                start(cfg, container)
            except NsboxError:
                if undo:  # a container that cannot start is not left half-made (its supervisor may have died midway)
                    try:
                        assemble.teardown(cfg, container)
                    except NsboxError:
                        pass
                    store.delete(container)
                    volume_service.remove_created(cfg, made)
                raise
    return container


def _create_and_converge(cfg, store, name, wanted, state, check_mode, before):
    prechecks.check_bind_sources(wanted)
    actions, _made = volume_service.create_missing(cfg, wanted, check_mode=True)
    actions.append('created container %s from %s' % (name, wanted['image']['name']))
    after = {'exists': True, 'status': 'running' if state in ('started', 'restarted') else 'created',
             'running': state in ('started', 'restarted'), 'config': options.display_config(wanted)}
    if state in ('started', 'restarted'):
        actions.append('started container %s' % name)
    if check_mode:
        return {'changed': True, 'actions': actions, 'container': None, 'diff': {'before': before, 'after': after}}
    container = _create(cfg, store, wanted, state in ('started', 'restarted'))
    return {'changed': True, 'actions': actions, 'container': info_mod.describe(cfg, container),
            'diff': {'before': before, 'after': _view(container)}}


def _recreated(container, wanted, diffs):
    """The action of a recreate, naming the options that differ."""
    why = sorted(f for f, how in diffs.items() if how == 'recreate') or ['recreate: true']
    if 'image' in why:  # say which digest the tag named and which it names now
        why[why.index('image')] = 'image %s: %s -> %s' % (wanted['image']['name'], container.config['image']['digest'], wanted['image']['digest'])
    return 'recreated container %s (%s)' % (container.name, ', '.join(why))


def _update_in_place(cfg, container, wanted, diffs, running, compare, check_mode):
    """Live and stored updates (no recreate): (the new config, actions); written unless in check mode."""
    actions = []
    new_config = options.merged(container.config, wanted, diffs)
    manager = resources = changes = None
    if running:  # the cgroup's files may say otherwise than the config (changed behind our back)
        manager, resources = assemble.cgroup_of(cfg, container), options.resources_of(new_config)
        changes = manager.plan(resources)
        for name in changes:
            name = ROWS[name].follows or name  # cpu_period is the cpus option's
            if compare.get(name) != 'ignore':
                diffs.setdefault(name, 'live')
    if diffs:
        live = sorted(f for f, how in diffs.items() if how == 'live')
        stored = sorted(f for f, how in diffs.items() if how == 'stored')
        if live:
            actions.append('updated %s of container %s%s' % (', '.join(live), container.name, ' live' if running else ''))
        if stored:
            actions.append('updated %s of container %s' % (', '.join(stored), container.name))
        if not check_mode:
            if live and running:
                apply_live(manager, resources, changes)
            container.write_config(new_config)
    return new_config, actions


def _converge(cfg, store, container, wanted, state, recreate, force_kill, check_mode, before, compare):
    diffs = options.differences(container.config, wanted, compare)
    recreate = recreate or 'recreate' in diffs.values()
    status = container.status()
    running = status['running']
    actions = []
    if recreate:
        prechecks.check_bind_sources(wanted)
        prechecks.check_host_cpus(wanted)
        prechecks.check_user(cfg, wanted)
        actions += volume_service.create_missing(cfg, wanted, check_mode=True)[0]
        actions.append(_recreated(container, wanted, diffs))
        keep_running = state in ('started', 'restarted') or (state == 'present' and running)
        if keep_running:
            actions.append('started container %s' % container.name)
        if check_mode:
            after = {'exists': True, 'status': 'running' if keep_running else 'created', 'running': keep_running,
                     'config': options.display_config(wanted)}
            return {'changed': True, 'actions': actions, 'container': info_mod.describe(cfg, container), 'diff': {'before': before, 'after': after}}
        container = _replace(cfg, store, container, wanted, keep_running, force_kill)
        return {'changed': True, 'actions': actions, 'container': info_mod.describe(cfg, container), 'diff': {'before': before, 'after': _view(container)}}
    new_config, updates = _update_in_place(cfg, container, wanted, diffs, running, compare, check_mode)
    actions += updates
    will_run = running or status['status'] == 'restarting' or status['supervised']
    if state == 'started' and not status['supervised'] and status['status'] != 'restarting':
        actions.append('adopted running container %s (its supervisor had died)' % container.name if running
                       else 'started container %s' % container.name)
        will_run = True
        if not check_mode:
            start(cfg, container)
    elif state == 'started' and container.read_state().get('stop_requested'):
        # A stop whose run was killed after it was recorded: the container runs (or waits to restart) and the
        # intent is started again, so its restart policy is its own again (else its next end would be its last).
        actions.append('resumed the restart policy of container %s (a stop of it had been interrupted)' % container.name)
        if not check_mode:
            container.write_state(stop_requested=False)
    elif state == 'stopped' and (running or status['supervised'] or container.read_state().get('status') in ('running', 'restarting')):
        actions.append('stopped container %s' % container.name)
        will_run = False
        if not check_mode:
            stop(cfg, container, force=force_kill)
    elif state == 'restarted':
        will_run = True
        if running:
            actions.append('stopped container %s' % container.name)
        actions.append('started container %s' % container.name)
        if not check_mode:
            stop(cfg, container, force=force_kill)
            start(cfg, container)
    if check_mode:
        after = dict(_view(container), config=options.display_config(new_config), running=will_run,
                     status='running' if will_run else before.get('status'))
    else:
        after = _view(container)
    return {'changed': bool(actions), 'actions': actions, 'container': info_mod.describe(cfg, container),
            'diff': {'before': before, 'after': after}}


class UnitConverge:
    """Converge a container that has a systemd unit, or is to have one (supervisor systemd, DESIGN D2).

    The library creates, updates and removes the container and writes its unit; systemd starts
    and stops it (``systemctl``), so a restart policy or a stop is never fought over. systemctl runs
    with no container lock held: ``run-unit`` and ``unit-stopped`` take it. A change of supervisor
    recreates the container (the unit comes or goes with it).
    """

    def __init__(self, cfg, store, name, wanted, check_mode, force_kill, units=None):
        self.cfg, self.store, self.name, self.wanted = cfg, store, name, wanted
        self.check_mode, self.force_kill = check_mode, force_kill
        self.units = units or unit_mod.Units()
        self.unit = unit_mod.unit_name(name)
        self.actions = []

    def unit_text(self, config):
        args = {}
        if self.cfg.path and self.cfg.path != CONFIG_PATH:
            args['config_path'] = self.cfg.path
        if self.cfg.data_root != load_host_config(self.cfg.path).data_root:
            args['data_root'] = self.cfg.data_root
        return unit_mod.unit_text(config, self.units.systemd_version(), **args)

    def run(self, current, state, recreate, before, compare):
        unit_before = self.units.read(self.name)
        if unit_before is not None and not self.units.is_ours(self.name):
            raise ContainerError('write', 'unit %s' % self.units.path(self.name), 'a unit of that name exists and was not written by nsbox')
        new_unit = self.wanted['supervisor'] == 'systemd'
        shown = self.units.show(self.name) if unit_before is not None else {}
        active = shown.get('ActiveState') in ('active', 'activating', 'reloading', 'deactivating')
        status = current.status() if current is not None else None
        running = bool(status and status['running'])
        diffs = options.differences(current.config, self.wanted, compare) if current is not None else {}
        remake = current is None or recreate or 'recreate' in diffs.values()
        if remake:
            config = self.wanted
            will_run = state in ('started', 'restarted') or (state == 'present' and (running or active))
            container = self._remake(current, diffs, will_run, unit_before is not None)
        else:
            with current.lock():
                config, updates = _update_in_place(self.cfg, current, self.wanted, diffs, running, compare, self.check_mode)
            self.actions += updates
            container = current
        unit_after = self.unit_text(config) if new_unit else None
        if new_unit:
            self._sync_unit(unit_before, unit_after, config['enabled'])
        if remake:
            if will_run and new_unit:
                self._start(container, undo=current is None)
        else:
            will_run = self._transition(state, running, active)
        return self._result(container, config, before, will_run, remake, unit_before, unit_after)

    def _remake(self, current, diffs, will_run, had_unit):
        """Create (or recreate) the container; started here only without a unit (a unit is started once written)."""
        new_unit = self.wanted['supervisor'] == 'systemd'
        prechecks.check_bind_sources(self.wanted)
        self.actions += volume_service.create_missing(self.cfg, self.wanted, check_mode=True)[0]
        if current is None:
            self.actions.append('created container %s from %s' % (self.name, self.wanted['image']['name']))
        else:
            self.actions.append(_recreated(current, self.wanted, diffs))
        if had_unit and not new_unit:
            self.actions.append('removed unit %s' % self.unit)
        if will_run and not new_unit:
            self.actions.append('started container %s' % self.name)
        if self.check_mode:
            return current
        if had_unit:
            self.units.stop(self.name, self.force_kill)  # systemd stops it and unit-stopped records the end
        if current is not None:
            with current.lock():
                remove(self.cfg, self.store, current, force=self.force_kill)
        if had_unit and not new_unit:
            self.units.remove(self.name, self.force_kill)
        return _create(self.cfg, self.store, self.wanted, will_run and not new_unit, undo=current is None)

    def _sync_unit(self, unit_before, unit_after, enabled):
        if unit_after != unit_before:
            self.actions.append('wrote unit %s' % self.unit)
            if not self.check_mode:
                self.units.write(self.name, unit_after)
        if self.units.enabled(self.name) != enabled:
            self.actions.append('%s unit %s' % ('enabled' if enabled else 'disabled', self.unit))
            if not self.check_mode:
                self.units.set_enabled(self.name, enabled)

    def _start(self, container, undo=False):
        self.actions.append('started container %s' % self.name)
        if self.check_mode:
            return
        try:
            self.units.start(self.name)
        except NsboxError as exc:
            if undo:  # a new container that cannot start is not left behind, nor its unit
                self.units.remove(self.name, force=True)
                with container.lock():
                    remove(self.cfg, self.store, container, force=True)
            raise ContainerError('start', 'container %s (%s)' % (self.name, self.unit),
                                 '%s (see journalctl -u %s)' % (exc.cause, self.unit)) from exc

    def _transition(self, state, running, active):
        """started, stopped, restarted through systemctl; returns whether the container runs afterwards."""
        up = running or active
        if state == 'started' and not up:
            self._start(None)
            return True
        if state == 'stopped' and up:
            self.actions.append('stopped container %s' % self.name)
            if not self.check_mode:
                self.units.stop(self.name, self.force_kill)
            return False
        if state == 'restarted':
            if running:
                self.actions.append('stopped container %s' % self.name)
            self.actions.append('started container %s' % self.name)
            if not self.check_mode:
                if self.force_kill and up:
                    self.units.stop(self.name, force=True)
                self.units.restart(self.name)
            return True
        return up

    def _result(self, container, config, before, will_run, remade, unit_before, unit_after):
        if self.check_mode:
            after = {'exists': True, 'status': 'running' if will_run else ('created' if remade else before.get('status')),
                     'running': will_run, 'config': options.display_config(config)}
        else:
            after = _view(self.store.find(self.name))
        diff = {'before': before, 'after': after}
        if unit_before != unit_after:
            path = self.units.path(self.name)
            diff = [diff, {'before_header': path, 'after_header': path, 'before': unit_before or '', 'after': unit_after or ''}]
        found = self.store.find(self.name) if not self.check_mode else container
        return {'changed': bool(self.actions), 'actions': self.actions, 'container': info_mod.describe(self.cfg, found) if found else None,
                'unit': self.unit_info() if unit_after is not None else None, 'diff': diff}

    def unit_info(self):
        """The unit as systemd sees it now: name, path, enabled, active state, main pid."""
        shown = self.units.show(self.name)
        return {'name': self.unit, 'path': self.units.path(self.name), 'enabled': self.units.enabled(self.name),
                'active': shown['ActiveState'] == 'active', 'active_state': shown['ActiveState'], 'sub_state': shown['SubState'],
                'main_pid': int(shown['MainPID']) if shown['MainPID'].isdigit() and shown['MainPID'] != '0' else None,
                'restarts': int(shown['NRestarts']) if shown['NRestarts'].isdigit() else None}


def _unit_diff(units, name, before, after):
    path = units.path(name)
    return {'before_header': path, 'after_header': path, 'before': before or '', 'after': after or ''}


# -- exec ----------------------------------------------------------------------------------------
