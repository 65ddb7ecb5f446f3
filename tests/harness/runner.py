# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Running Ansible against test hosts over SSH, and reading back every task's result."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HARNESS = os.path.dirname(os.path.abspath(__file__))


def collections_path(workdir):
    """A collections path holding this checkout as nsbox.runtime (a symlink, so edits show at once)."""
    given = os.environ.get('NSBOX_COLLECTIONS_PATH')
    if given:
        return given
    ns = os.path.join(workdir, 'collections', 'ansible_collections', 'nsbox')
    os.makedirs(ns, exist_ok=True)
    link = os.path.join(ns, 'runtime')
    if not os.path.islink(link):
        os.symlink(REPO, link)
    return os.path.join(workdir, 'collections')


class PlayResult:
    """All task results of one ansible-playbook run."""

    def __init__(self, rc, records, stdout, stderr):
        self.rc = rc
        self.records = records
        self.stdout = stdout
        self.stderr = stderr

    def task(self, name, host=None):
        """The result dict of the last task called ``name`` (on ``host``)."""
        for rec in reversed(self.records):
            if rec['task'] == name and (host is None or rec['host'] == host):
                return dict(rec['result'], _status=rec['status'])
        raise KeyError('no task %r in the results; tasks run: %s' % (name, [r['task'] for r in self.records]))

    @property
    def changed(self):
        return [r for r in self.records if r['status'] == 'changed']

    @property
    def failed(self):
        return [r for r in self.records if r['status'] in ('failed', 'unreachable')]

    def __repr__(self):
        return 'PlayResult(rc=%d, %d tasks)\n%s\n%s' % (self.rc, len(self.records), self.stdout[-4000:], self.stderr[-2000:])


class AnsibleRunner:
    """An inventory and ansible.cfg for a set of TestHosts, with playbook/module helpers."""

    def __init__(self, hosts, workdir=None, forks=10, collections=None):
        """``collections``: a collections path of its own (e.g. another release's nsbox.runtime) instead of this checkout."""
        self.hosts = {h.name: h for h in hosts}
        self.collections = collections
        self._own = workdir is None
        self.workdir = workdir or tempfile.mkdtemp(prefix='nsbox-ansible-', dir='/tmp')
        self.inventory = os.path.join(self.workdir, 'inventory')
        with open(self.inventory, 'w') as f:
            f.write('[testhosts]\n' + ''.join(h.inventory_line() + '\n' for h in hosts))
        cp = hosts[0].control_dir if hosts else self.workdir
        self.config = os.path.join(self.workdir, 'ansible.cfg')
        with open(self.config, 'w') as f:
            f.write('\n'.join([
                '[defaults]', 'inventory = %s' % self.inventory, 'host_key_checking = False',
                'forks = %d' % forks, 'callbacks_enabled = nsbox_results', 'callback_plugins = %s/callback_plugins' % HARNESS,
                'collections_path = %s' % (collections or collections_path(self.workdir)), 'retry_files_enabled = False',
                'interpreter_python = /usr/bin/python3', 'local_tmp = %s/local-tmp' % self.workdir,
                '[ssh_connection]', 'pipelining = True',
                'ssh_args = -o ControlMaster=auto -o ControlPersist=120s -o UserKnownHostsFile=/dev/null -o IdentitiesOnly=yes',
                'control_path = %s/%%%%C' % cp, '',
            ]))

    def env(self, results_path):
        env = dict(os.environ)
        env.update(ANSIBLE_CONFIG=self.config, NSBOX_RESULTS=results_path, ANSIBLE_FORCE_COLOR='0',
                   ANSIBLE_NOCOLOR='1', PYTHONDONTWRITEBYTECODE='1')
        if self.collections:  # over any ANSIBLE_COLLECTIONS_PATH of the caller's: this runner's collection is the point
            env['ANSIBLE_COLLECTIONS_PATH'] = self.collections
        return env

    def _bin(self, name):
        return os.path.join(os.path.dirname(sys.executable), name)

    def playbook(self, playbook, check=False, diff=False, extra_vars=None, limit=None, timeout=900):
        """Run a playbook (a path, or a list of plays to write out); returns a PlayResult."""
        fd, results = tempfile.mkstemp(prefix='results-', suffix='.json', dir=self.workdir)
        os.close(fd)
        if not isinstance(playbook, str):
            fd, path = tempfile.mkstemp(prefix='play-', suffix='.yml', dir=self.workdir)
            with os.fdopen(fd, 'w') as f:
                yaml.safe_dump(playbook, f, sort_keys=False)
            playbook = path
        cmd = [self._bin('ansible-playbook'), playbook]
        if check:
            cmd.append('--check')
        if diff:
            cmd.append('--diff')
        if extra_vars:
            cmd += ['-e', json.dumps(extra_vars)]
        if limit:
            cmd += ['--limit', limit]
        # stdin: never the test's (an ssh started beside may have made that file non-blocking, which Ansible refuses)
        proc = subprocess.run(cmd, env=self.env(results), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                              check=False)
        with open(results) as f:
            records = json.load(f) if os.path.getsize(results) else []
        return PlayResult(proc.returncode, records, proc.stdout, proc.stderr)

    def tasks(self, tasks, hosts='testhosts', **kwargs):
        """Run a list of tasks as one play."""
        return self.playbook([{'hosts': hosts, 'gather_facts': False, 'tasks': tasks}], **kwargs)

    def module(self, name, args=None, hosts='testhosts', **kwargs):
        """Run one module as a one-task play; returns that task's result for the first host."""
        res = self.tasks([{'name': 'module', name: args or {}}], hosts=hosts, **kwargs)
        if not res.records:
            raise AssertionError('no result recorded: %r' % res)
        return dict(res.records[0]['result'], _status=res.records[0]['status'])

    def adhoc(self, module, args, pattern='all', timeout=300):
        """``ansible PATTERN -i INVENTORY -m MODULE -a ARGS``, as a person types it; the CompletedProcess."""
        cmd = [self._bin('ansible'), pattern, '-i', self.inventory, '-m', module, '-a', args]
        return subprocess.run(cmd, env=self.env(os.devnull), stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                              check=False)

    def close(self):
        if self._own:
            shutil.rmtree(self.workdir, ignore_errors=True)
