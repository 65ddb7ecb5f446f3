# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""``nsbox oci ...`` / ``nsbox-oci ...``: the OCI runtime command line, as runc's, for podman, containerd, CRI-O.

Arguments only: every verb is one call into runtime.py. Flags callers pass that change nothing
here (``--no-pivot``, ``--no-new-keyring``, ``--debug``, ``--log-level``) are accepted. Errors go
to stderr and, with ``--log``, to that file in ``--log-format`` (json: runc's one object a line,
which conmon reads back to tell podman why). Exit codes: 0, 1 failed, 2 bad usage; ``exec`` (not
detached) and ``run`` end with the process's own code.

Deferred imports: each OCI verb imports only its own path (start-up cost: ``create``, ``start`` and
``state`` run on every container start a client makes).
"""
from __future__ import annotations

import argparse
import datetime
import json
import sys

from ..errors import NsboxError
from ..version import VERSION
from ..oci import runtime
from ..oci.runtime import OCI_VERSION

PROG = 'nsbox-oci'


def _log(args, message, level='error'):
    sys.stderr.write('%s: %s\n' % (PROG, message))
    if not getattr(args, 'log', None):
        return
    now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace('+00:00', 'Z')
    if args.log_format == 'json':
        line = json.dumps({'level': level, 'msg': message, 'time': now})
    else:
        line = 'time="%s" level=%s msg=%s' % (now, level, json.dumps(message))
    try:
        with open(args.log, 'a', encoding='utf-8') as f:
            f.write(line + '\n')
    except OSError:
        pass


def features():
    """What this runtime supports, in the form ``runc features`` prints."""
    from ..launch import caps, seccomp  # pylint: disable=import-outside-toplevel
    from ..oci.spec import HOOK_KINDS, NAMESPACES  # pylint: disable=import-outside-toplevel
    from ..launch.mounts import _FLAG_OPTIONS, _PROPAGATION  # pylint: disable=import-outside-toplevel
    return {
        'ociVersionMin': '1.0.0', 'ociVersionMax': OCI_VERSION, 'hooks': list(HOOK_KINDS),
        'mountOptions': sorted(set(_FLAG_OPTIONS) | set(_PROPAGATION) | {'bind', 'rbind'}),
        'linux': {'namespaces': sorted(NAMESPACES), 'capabilities': list(caps.NAMES),
                  'cgroup': {'v1': True, 'v2': True, 'systemd': True, 'systemdUser': False},
                  'seccomp': {'enabled': True, 'actions': list(seccomp.ACTIONS), 'operators': list(seccomp.OPS), 'archs': list(seccomp.ARCHES)},
                  'apparmor': {'enabled': False}, 'selinux': {'enabled': False}},
        'annotations': {'org.nsbox.version': VERSION},
    }


def cmd_create(args):
    if args.preserve_fds:
        raise runtime.ConfigError('use', '--preserve-fds %d' % args.preserve_fds, 'passing extra file descriptors is not supported by nsbox')
    runtime.create(args.root, args.id, args.bundle, args.pid_file, args.console_socket, args.systemd_cgroup)
    return 0


def cmd_run(args):
    """create + start + wait + delete, with this process as the init's subreaper (``runc run``)."""
    from ..launch import process  # pylint: disable=import-outside-toplevel
    process.become_subreaper()
    pid = runtime.create(args.root, args.id, args.bundle, args.pid_file, args.console_socket, args.systemd_cgroup)
    try:
        runtime.start(args.root, args.id)
        code = process.wait_status(pid)
    finally:
        runtime.delete(args.root, args.id, force=True)
    return code


def cmd_start(args):
    runtime.start(args.root, args.id)
    return 0


def cmd_state(args):
    sys.stdout.write(json.dumps(runtime.state(args.root, args.id), indent=2) + '\n')
    return 0


def cmd_kill(args):
    runtime.kill(args.root, args.id, args.signal, args.all)
    return 0


def cmd_delete(args):
    runtime.delete(args.root, args.id, args.force)
    return 0


def cmd_pause(args):
    runtime.pause(args.root, args.id, True)
    return 0


def cmd_resume(args):
    runtime.pause(args.root, args.id, False)
    return 0


def cmd_exec(args):
    if args.preserve_fds:
        raise runtime.ConfigError('use', '--preserve-fds %d' % args.preserve_fds, 'passing extra file descriptors is not supported by nsbox')
    if args.process:
        data = runtime.read_process_file(args.process)
    elif args.command:
        data = runtime.process_from_bundle(args.root, args.id, args.command)
    else:
        raise runtime.ConfigError('use', 'exec', 'give --process FILE or a command')
    return runtime.exec_process(args.root, args.id, data, args.pid_file, args.detach, args.console_socket)


def cmd_features(_args):
    sys.stdout.write(json.dumps(features(), indent=2) + '\n')
    return 0


def cmd_list(args):
    rows = [runtime.state(args.root, i) for i in runtime.list_ids(args.root)]
    if args.format == 'json':
        sys.stdout.write(json.dumps(rows) + '\n')
        return 0
    sys.stdout.write('%-24s %-8s %-10s %s\n' % ('ID', 'PID', 'STATUS', 'BUNDLE'))
    for row in rows:
        sys.stdout.write('%-24s %-8d %-10s %s\n' % (row['id'], row['pid'], row['status'], row['bundle']))
    return 0


def _verb(sub, name, func, text, with_id=True):
    sp = sub.add_parser(name, help=text, description=text)
    sp.set_defaults(func=func)
    if with_id:
        sp.add_argument('id', metavar='ID', help='the container id')
    return sp


def _create_flags(sp):
    sp.add_argument('-b', '--bundle', default='.', help='the bundle directory (holding config.json; default: .)')
    sp.add_argument('--pid-file', default=None, help='write the init\'s pid here')
    sp.add_argument('--console-socket', default=None, help='unix socket that receives the pty master (process.terminal)')
    sp.add_argument('--preserve-fds', type=int, default=0, help='not supported (must be 0)')
    sp.add_argument('--no-pivot', action='store_true', help='accepted; nsbox always pivot_roots')
    sp.add_argument('--no-new-keyring', action='store_true', help='accepted; no session keyring is made')


def parser():
    p = argparse.ArgumentParser(prog=PROG, description='nsbox as an OCI runtime (runc\'s command line).')
    p.add_argument('-v', '--version', action='store_true', help='print the version')
    p.add_argument('--root', default=runtime.DEFAULT_ROOT, help='state of the OCI containers (default %s)' % runtime.DEFAULT_ROOT)
    p.add_argument('--log', default=None, help='also write errors to this file')
    p.add_argument('--log-format', choices=('text', 'json'), default='text', help='format of --log')
    p.add_argument('--systemd-cgroup', action='store_true', help='cgroupsPath is "slice:prefix:name" (systemd driver)')
    p.add_argument('--debug', action='store_true', help='accepted')
    p.add_argument('--log-level', default=None, help='accepted')
    p.add_argument('--rootless', default=None, help='accepted (nsbox runs as root)')
    sub = p.add_subparsers(dest='verb', metavar='COMMAND')
    _create_flags(_verb(sub, 'create', cmd_create, 'create a container up to its start barrier'))
    _create_flags(_verb(sub, 'run', cmd_run, 'create, start, wait for and delete a container; exits with its code'))
    _verb(sub, 'start', cmd_start, 'start a created container (its init execs the process)')
    _verb(sub, 'state', cmd_state, 'print the state of a container (JSON)')
    sp = _verb(sub, 'kill', cmd_kill, 'send a signal to the container\'s init (default TERM)')
    sp.add_argument('signal', nargs='?', default='TERM', help='name (TERM, SIGKILL) or number')
    sp.add_argument('-a', '--all', action='store_true', help='to every process of the container')
    sp = _verb(sub, 'delete', cmd_delete, 'delete a stopped (or created) container')
    sp.add_argument('-f', '--force', action='store_true', help='kill it first if it runs; no error if it does not exist')
    _verb(sub, 'pause', cmd_pause, 'freeze every process of the container')
    _verb(sub, 'resume', cmd_resume, 'thaw a paused container')
    sp = _verb(sub, 'exec', cmd_exec, 'run a process in a running container')
    sp.add_argument('-p', '--process', default=None, help='the process as OCI JSON (else: COMMAND with the bundle\'s env, user, cwd)')
    sp.add_argument('--pid-file', default=None, help='write the process\'s pid here')
    sp.add_argument('-d', '--detach', action='store_true', help='do not wait for it (it is orphaned to the caller\'s subreaper)')
    sp.add_argument('--console-socket', default=None, help='unix socket that receives the pty master')
    sp.add_argument('-t', '--tty', action='store_true', help='accepted (the process file says terminal)')
    sp.add_argument('--preserve-fds', type=int, default=0, help='accepted when 0')
    sp.add_argument('command', nargs=argparse.REMAINDER, help='the command (without --process)')
    _verb(sub, 'features', cmd_features, 'print what this runtime supports (JSON)', with_id=False)
    sp = _verb(sub, 'list', cmd_list, 'list the containers under --root', with_id=False)
    sp.add_argument('-f', '--format', choices=('table', 'json'), default='table')
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    if args.version:
        sys.stdout.write('%s version %s\nspec: %s\n' % (PROG, VERSION, OCI_VERSION))
        raise SystemExit(0)
    if not args.verb:
        parser().print_usage(sys.stderr)
        raise SystemExit(2)
    try:
        code = args.func(args)
    except NsboxError as exc:
        _log(args, exc.message)
        code = 1
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
