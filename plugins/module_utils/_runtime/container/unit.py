# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A container's systemd unit (DESIGN D2): its text, its file, and systemctl.

With ``supervisor: systemd`` the container is ``nsbox-<name>.service``: ``Type=notify`` running
``nsbox run-unit NAME`` (runner.py), which sets the container up, reports its init as
``MAINPID`` and exits — systemd then supervises the init itself, its stdout and stderr go to the
journal, ``Restart=`` comes from the restart policy (policy.systemd_restart), the stop is
systemd's (``KillSignal=`` the stop signal to the init, then ``SIGKILL`` to the whole unit after
``TimeoutStopSec=`` the stop timeout), and ``ExecStopPost=nsbox unit-stopped NAME`` records the
exit code and tears the container down. ``Delegate=yes`` gives the unit's cgroup to the runtime:
on a cgroup v2 host under the systemd cgroup driver the container's cgroup is a child of it
(runner.delegated_cgroup), so systemd's view and the runtime's are the same cgroup tree.

The text is a pure function of the container's stored config (``unit_text``); ``Units`` writes
the file atomically only when its content differs, runs ``daemon-reload`` only then, and starts,
stops, enables and removes through ``systemctl``: with a unit, every start and stop is systemd's,
so systemd never fights the module.
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess

from ..kernel.fsutil import atomic_write
from ..host.install import BIN_PATH
from . import policy
from .store import ContainerError

UNIT_DIR = '/etc/systemd/system'
SYSTEMCTL = '/usr/bin/systemctl'
HEADER = '# nsbox container %s: managed by nsbox.runtime, do not edit\n'
# Directives newer than some supported systemd versions: left out where systemd would not know them
# (systemd logs unknown keys, and systemd-analyze verify would complain about every unit).
SINCE = {'RestartSteps': 254, 'RestartMaxDelaySec': 254}
UNIT_SECTION_KEYS = ('StartLimitBurst', 'StartLimitIntervalSec')  # [Unit] keys since systemd 230
SHOW = ('ActiveState', 'SubState', 'MainPID', 'UnitFileState', 'LoadState', 'Result', 'ExecMainStatus', 'NRestarts')


def unit_name(name):
    """Container ``web`` -> ``nsbox-web.service`` (container names are valid unit name characters)."""
    return 'nsbox-%s.service' % name


def _quote(arg):
    """One argument of an Exec line: systemd splits on whitespace and reads quotes and backslashes; % is a specifier."""
    arg = arg.replace('%', '%%')
    return arg if re.match(r'^[A-Za-z0-9_./:=@+-]+\Z', arg) else '"%s"' % arg.replace('\\', '\\\\').replace('"', '\\"')


def exec_line(args):
    return ' '.join(_quote(a) for a in args)


def timeout_text(seconds):
    """stop_timeout -> TimeoutStopSec=: 0 is "kill at once" to Docker but "no timeout" to systemd, so 1ms."""
    return '%ds' % seconds if seconds else '1ms'


def unit_text(config, systemd_version=None, config_path=None, data_root=None, nsbox=BIN_PATH):
    """The unit of a container's stored ``config`` (its name, stop signal and timeout, restart
    policy, ``enabled`` and ``depends_on``). ``config_path``/``data_root``: the host config file and
    data-root the module ran with, passed on to ``nsbox`` when they are not its defaults.
    ``systemd_version``: directives newer than it are left out."""
    name = config['name']
    glob = ['--config', config_path] if config_path else []
    tail = ['--data-root', data_root] if data_root else []
    restart = policy.systemd_restart(config.get('restart_policy'))
    restart = {k: v for k, v in restart.items() if not systemd_version or systemd_version >= SINCE.get(k, 0)}
    deps = [unit_name(d) for d in config.get('depends_on') or []]
    unit = ['Description=nsbox container %s' % name, 'After=network.target' + ''.join(' ' + d for d in deps)]
    if deps:
        unit.append('Requires=%s' % ' '.join(deps))
    unit += ['%s=%s' % (k, restart[k]) for k in UNIT_SECTION_KEYS if k in restart]
    service = [
        'Type=notify',
        'NotifyAccess=main',  # run-unit, then the init (MAINPID): never another process of the container
        'ExecStart=%s' % exec_line([nsbox] + glob + ['run-unit', name] + tail),
        'ExecStopPost=%s' % exec_line([nsbox] + glob + ['unit-stopped', name] + tail),
        'KillMode=mixed',  # the stop signal to the init only (as docker stop), SIGKILL to the whole unit after the timeout
        'KillSignal=%s' % (config.get('stop_signal') or 'SIGTERM'),
        'TimeoutStopSec=%s' % timeout_text(config.get('stop_timeout', 10)),
        'Delegate=yes',
    ]
    service += ['%s=%s' % (k, v) for k, v in restart.items() if k not in UNIT_SECTION_KEYS]
    service += ['StandardInput=null', 'StandardOutput=journal', 'StandardError=journal', 'SyslogIdentifier=%s' % name]
    install = ['WantedBy=multi-user.target']
    return (HEADER % name + '[Unit]\n' + ''.join(line + '\n' for line in unit) + '\n[Service]\n' + ''.join(line + '\n' for line in service)
            + '\n[Install]\n' + ''.join(line + '\n' for line in install))


def _run(argv, check=True):
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False,
                              env={'PATH': '/usr/sbin:/usr/bin:/sbin:/bin', 'LANG': 'C.UTF-8', 'SYSTEMD_PAGER': ''})
    except OSError as exc:
        raise ContainerError('run', ' '.join(argv[:2]), exc.strerror or str(exc)) from None
    if check and proc.returncode != 0:
        raise ContainerError('run', ' '.join(shlex.quote(a) for a in argv),
                             (proc.stderr.decode(errors='replace').strip() or 'exit code %d' % proc.returncode))
    return proc


def systemd_version(run=_run):
    """The running systemd's version number (``systemctl --version``: "systemd 252 (252.38-1~deb12u1)")."""
    out = run([SYSTEMCTL, '--version'], check=False).stdout.decode(errors='replace').split()
    return int(out[1]) if len(out) > 1 and out[0] == 'systemd' and out[1].isdigit() else None


class Units:
    """Container units in ``unit_dir`` and systemctl (``run`` is replaceable for tests)."""

    def __init__(self, unit_dir=UNIT_DIR, run=_run):
        self.unit_dir, self._run = unit_dir, run

    def path(self, name):
        return os.path.join(self.unit_dir, unit_name(name))

    def read(self, name):
        """The unit file's text, or None when there is none."""
        try:
            with open(self.path(name), encoding='utf-8') as f:
                return f.read()
        except FileNotFoundError:
            return None

    def is_ours(self, name):
        text = self.read(name)
        return text is not None and text.startswith(HEADER % name)

    def systemd_version(self):
        return systemd_version(self._run)

    def systemctl(self, *args, check=True):
        return self._run([SYSTEMCTL] + list(args), check=check)

    def show(self, name):
        """{property: value} of the unit (SHOW), as systemd sees it now."""
        out = self.systemctl('show', '--property=' + ','.join(SHOW), unit_name(name), check=False).stdout.decode(errors='replace')
        props = dict(line.split('=', 1) for line in out.splitlines() if '=' in line)
        return {k: props.get(k, '') for k in SHOW}

    def write(self, name, text):
        """Write the unit when its content differs, then daemon-reload. Returns True when written."""
        current = self.read(name)
        if current == text:
            return False
        if current is not None and not self.is_ours(name):
            raise ContainerError('write', 'unit %s' % self.path(name), 'a unit of that name exists and was not written by nsbox')
        os.makedirs(self.unit_dir, 0o755, exist_ok=True)
        atomic_write(self.path(name), text.encode(), 0o644)
        self.systemctl('daemon-reload')
        return True

    def set_enabled(self, name, enabled):
        """Enable or disable the unit (the symlink in multi-user.target.wants); returns True when it changed."""
        if self.enabled(name) == enabled:
            return False
        self.systemctl('enable' if enabled else 'disable', '--quiet', unit_name(name))
        return True

    def enabled(self, name):
        return self.systemctl('is-enabled', '--quiet', unit_name(name), check=False).returncode == 0

    def start(self, name):
        self.systemctl('reset-failed', unit_name(name), check=False)  # a start limit hit before does not refuse this start
        self.systemctl('start', unit_name(name))

    def stop(self, name, force=False):
        if force:
            self.systemctl('kill', '--signal=SIGKILL', unit_name(name), check=False)
        self.systemctl('stop', unit_name(name))

    def restart(self, name):
        self.systemctl('reset-failed', unit_name(name), check=False)
        self.systemctl('restart', unit_name(name))

    def remove(self, name, force=False):
        """Stop, disable and delete the unit, then daemon-reload. Returns True when there was one."""
        if self.read(name) is None:
            return False
        if not self.is_ours(name):
            raise ContainerError('remove', 'unit %s' % self.path(name), 'it was not written by nsbox (no "managed by nsbox.runtime" header)')
        self.stop(name, force)
        self.systemctl('disable', '--quiet', unit_name(name), check=False)
        os.unlink(self.path(name))
        self.systemctl('daemon-reload')
        self.systemctl('reset-failed', unit_name(name), check=False)
        return True
