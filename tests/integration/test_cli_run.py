# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``nsbox`` host command's interactive and store verbs, for real over SSH: ``exec -it`` driven
through a real pseudo-terminal (``ssh -tt`` inside ``pty.fork``, so sshd gives nsbox a terminal
and window changes travel the whole way), ``run`` attached and detached, ``pull`` against the
harness's registry (plain lines without a terminal, redrawn bars with one), ``prune`` and ``info``."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import pty
import re
import secrets
import select
import shlex
import signal
import struct
import termios
import time

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cli import views
from harness import images
from harness.containers import LAYOUT, NOTHING, V1_ONLY, setup, teardown

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)

SLEEP = {'command': ['sleep', '3600'], 'stop_timeout': 1}


@pytest.fixture(scope='module')
def cli_host(testhost, ansible, fixtures, registry):
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    yield setup(testhost, ansible, parent, {'busybox': fixtures.docker_archive}, registries={'insecure': [registry.host]})
    teardown(testhost, parent)


@pytest.fixture
def box(cli_host, reaper):
    yield cli_host
    left = teardown(cli_host.host, cli_host.parent, everything=False)
    assert left == NOTHING, 'the test left these behind: %r' % left
    reaper.check()


def nsbox(box, *args, timeout=60, stdin=None):
    """``nsbox ARGS`` on the test host (``stdin``: text piped in): the CompletedProcess, any exit code."""
    line = 'nsbox ' + ' '.join(shlex.quote(a) for a in args)
    if stdin is not None:
        line = 'printf %%s %s | %s' % (shlex.quote(stdin), line)
    return box.host.ssh(line, check=False, timeout=timeout)


def ok(box, *args, **kw):
    res = nsbox(box, *args, **kw)
    assert res.returncode == 0, (args, res.returncode, res.stdout, res.stderr)
    return res.stdout


def remove(box, *names):
    box.ansible.tasks([{'nsbox.runtime.container': {'name': n, 'state': 'absent'}} for n in names])


class Terminal:
    """A command on the test host run by ``ssh -tt`` on the slave of a pty this test holds the master of."""

    def __init__(self, box, command, rows=30, cols=100):
        argv = box.host.ssh_args()
        argv.insert(1, '-tt')
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
                os.execvp(argv[0], argv + ['--', command])
            finally:
                os._exit(127)  # pylint: disable=protected-access
        self.seen = b''

    def resize(self, rows, cols):
        """As a terminal window does: the size on the master; the kernel sends ssh its SIGWINCH."""
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))

    def type(self, text):
        os.write(self.fd, text.encode())

    def expect(self, pattern, timeout=30):
        """Read until ``pattern`` (a regex over everything read since the last match) is seen; the match."""
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.seen.decode('utf-8', 'replace'))
            if found:
                self.seen = self.seen[len(self.seen.decode('utf-8', 'replace')[:found.end()].encode()):]
                return found
            left = deadline - time.monotonic()
            assert left > 0, 'no %r in %r' % (pattern, self.seen)
            if select.select([self.fd], [], [], left)[0]:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError as exc:
                    assert exc.errno == errno.EIO, exc
                    chunk = b''
                assert chunk, 'the terminal closed before %r; it said %r' % (pattern, self.seen)
                self.seen += chunk

    def wait(self, timeout=30):
        """The exit code of ssh (the remote command's), reading what is left meanwhile."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                os.close(self.fd)
                return os.waitstatus_to_exitcode(status)
            if select.select([self.fd], [], [], 0.1)[0]:
                try:
                    self.seen += os.read(self.fd, 4096)
                except OSError:
                    time.sleep(0.1)
        self.kill()
        raise AssertionError('still running after %ss: %r' % (timeout, self.seen))

    def kill(self):
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass


def test_exec_it_gets_a_pty_in_the_container(box):
    res = box.ansible.tasks([{'nsbox.runtime.container': dict(SLEEP, name='shell', image='busybox')}])
    assert res.rc == 0, res
    term = Terminal(box, 'nsbox exec -it shell sh', rows=30, cols=100)
    try:
        _exec_it(term)
        _exec_plain(box)
    finally:
        term.kill()
        remove(box, 'shell')


def _exec_it(term):
    def command(line):
        """At busybox's prompt: answer its cursor-position query (a real terminal does; typing before the answer is lost), type ``line``."""
        if term.expect(r'# (\x1b\[6n)?$').group(1):
            term.type('\x1b[1;5R')
            time.sleep(0.3)
        term.type(line + '\r')  # \r: the Enter key (the terminal is in raw mode on the far side)
    command('tty; stty size; echo M-$((6*7))')
    found = term.expect(r'(/dev/pts/\d+)\r\n(\d+ \d+)\r\nM-42')
    assert found.group(2) == '30 100', term.seen
    term.resize(40, 120)  # ssh -> sshd -> nsbox's terminal -> SIGWINCH -> the container's pty
    deadline = time.monotonic() + 10
    while True:
        command('stty size; echo M-$((6*7))')
        size = term.expect(r'(\d+ \d+)\r\nM-42').group(1)
        if size == '40 120' or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert size == '40 120'
    command('read x; echo got-$x')
    term.type('typed\r')
    term.expect(r'got-typed')
    command('exit 7')
    assert term.wait() == 7, term.seen


def _exec_plain(box):
    # -i without -t: stdin is streamed (a pipe); without -i the command reads end-of-file
    assert ok(box, 'exec', '-i', 'shell', 'sh', '-c', 'cat; echo end', stdin='hello\n') == 'hello\nend\n'
    assert ok(box, 'exec', 'shell', 'sh', '-c', 'cat; echo end', stdin='hello\n') == 'end\n'
    assert ok(box, 'exec', 'shell', 'sh', '-c', 'test -t 0 || echo no-tty') == 'no-tty\n'
    # exit codes: the command's own; 127 not found; 126 cannot be run; 125 nsbox's own failure
    assert nsbox(box, 'exec', 'shell', 'sh', '-c', 'exit 3').returncode == 3
    res = nsbox(box, 'exec', 'shell', 'nosuchcmd')
    assert res.returncode == 127 and 'executable file not found' in res.stderr, res
    res = nsbox(box, 'exec', 'shell', '/etc/passwd')  # a file, not executable
    assert res.returncode == 126, res
    res = nsbox(box, 'exec', 'nosuch', 'true')
    assert res.returncode == 125 and res.stderr == 'nsbox: failed to exec in container nosuch: it does not exist\n', res
    res = nsbox(box, 'exec', '-t', 'shell', 'sh', '-c', 'tty; exit 4')
    assert res.returncode == 4 and re.match(r'^/dev/pts/\d+\n$', res.stdout), res  # (text mode: the pty's \r\n read as \n)
    assert ok(box, 'rm', '-f', 'shell') == 'shell\n'


def ps(box, *args):
    return {r['name']: r for r in json.loads(ok(box, 'ps', '--format', 'json', *args))}


def test_run_attached_detached_interactive_and_rm(box):
    try:
        # attached: the streams apart as they came, the container's exit code; --rm removes it after
        res = nsbox(box, 'run', '--rm', '--name', 'r1', '-e', 'WHO=you', 'busybox', 'sh', '-c', 'echo hi $WHO; echo err >&2; exit 5')
        assert (res.returncode, res.stdout, res.stderr) == (5, 'hi you\n', 'err\n'), res
        assert 'r1' not in ps(box, '-a')
        # without --rm it stays, exited; the name is then in use (125, nsbox's own failure)
        res = nsbox(box, 'run', '--name', 'r1', 'busybox', 'true')
        assert (res.returncode, res.stdout) == (0, ''), res
        assert ps(box, '-a')['r1']['status_text'].startswith('Exited (0)')
        res = nsbox(box, 'run', '--name', 'r1', 'busybox', 'true')
        assert res.returncode == 125 and res.stderr == 'nsbox: failed to run container r1: the name is in use (remove it, or give another --name)\n', res
        # a command that is not there, or cannot be run: Docker's 127 and 126, and --rm leaves nothing (issue 20 item 6)
        res = nsbox(box, 'run', '--rm', '--name', 'r3', 'busybox', 'nosuchcmd')
        assert res.returncode == 127 and 'executable file not found' in res.stderr, res
        res = nsbox(box, 'run', '--rm', '--name', 'r3', 'busybox', '/etc/passwd')
        assert res.returncode == 126, res
        assert 'r3' not in ps(box, '-a')
        # detached: its id; a volume and the environment; then exec into it
        cid = ok(box, 'run', '-d', '--name', 'r2', '-e', 'A=b', '-v', 'runvol:/data', '--network', 'none', 'busybox',
                 'sh', '-c', 'echo $A > /data/x; exec sleep 3600').strip()
        assert re.match(r'^[0-9a-f]{64}$', cid), cid
        row = ps(box)['r2']
        assert row['id'] == cid and row['running']
        deadline = time.monotonic() + 10
        while nsbox(box, 'exec', 'r2', 'cat', '/data/x').stdout != 'b\n' and time.monotonic() < deadline:
            time.sleep(0.2)
        assert ok(box, 'exec', 'r2', 'cat', '/data/x') == 'b\n'
        # -i: this command's input reaches the container
        assert ok(box, 'run', '-i', '--rm', 'busybox', 'sh', '-c', 'read x; echo got-$x', stdin='hello\n') == 'got-hello\n'
        # what is refused: -d with --rm; a missing image that cannot be pulled; usage errors (2)
        res = nsbox(box, 'run', '-d', '--rm', 'busybox', 'true')
        assert res.returncode == 125 and '--rm needs the container attached' in res.stderr, res
        res = nsbox(box, 'run', '--rm', 'nosuch.invalid/nothing:latest', 'true')
        assert res.returncode == 125 and res.stderr.startswith('nsbox: failed to pull image nosuch.invalid/nothing:latest'), res
        assert nsbox(box, 'run').returncode == 2
        assert [n for n in ps(box, '-a') if n.startswith('run-')] == []  # the unnamed --rm ones are gone
        assert ok(box, 'rm', '-f', 'r1', 'r2') == 'r1\nr2\n'
        _run_it(box)
    finally:
        remove(box, 'r1', 'r2', 'rt')
        box.ansible.tasks([{'nsbox.runtime.volume': {'name': 'runvol', 'state': 'absent'}}])


def _run_it(box):
    """``run -it`` attached: the init's terminal is the command's pty (its size, typed input), the exit code is the container's."""
    term = Terminal(box, 'nsbox run -it --rm --name rt busybox sh', rows=25, cols=90)
    try:
        if term.expect(r'# (\x1b\[6n)?$').group(1):
            term.type('\x1b[1;5R')
            time.sleep(0.3)
        term.type('test -t 0 && test -t 1 && echo on-a-tty; stty size; read x; echo got-$x; exit 3\r')
        term.expect(r'on-a-tty\r\n25 90\r\n')
        term.type('typed\r')
        term.expect(r'got-typed')
        assert term.wait() == 3, term.seen
    finally:
        term.kill()
    assert 'rt' not in ps(box, '-a')


def _push(registry, fixtures, image, repo):
    images.push(registry, fixtures.ref(image), 'nsbox/%s' % repo, 'latest')
    return '%s/nsbox/%s:latest' % (registry.host, repo)


def test_pull_prints_a_line_per_layer_or_draws_bars(box, registry, fixtures):
    ref = _push(registry, fixtures, 'multilayer', 'cli-pull')
    # On a terminal: a line per layer, redrawn in place (cursor up, line cleared), bars while downloading.
    term = Terminal(box, 'nsbox pull %s' % ref)
    try:
        assert term.wait(timeout=60) == 0, term.seen
    finally:
        term.kill()
    seen = term.seen.decode('utf-8', 'replace')
    assert 'Downloading [' in seen and '\r\x1b[2K' in seen and 'Pull complete' in seen, seen
    assert re.search(r'\x1b\[\d+A', seen), seen  # drawn again over itself
    assert 'Status: Downloaded newer image for %s' % ref in seen
    # Without a terminal: each layer's steps, one line each, no bars (the image removed first, its own layers pruned)
    res = box.ansible.tasks([{'nsbox.runtime.image': {'name': ref, 'state': 'absent', 'prune': True}}])
    assert res.rc == 0, res
    res = nsbox(box, 'pull', ref)
    assert res.returncode == 0, res
    lines = res.stdout.splitlines()
    image = [i for i in json.loads(ok(box, 'images', '--format', 'json')) if i['reference'] == ref]
    assert len(image) == 1, image
    layers = json.loads(box.host.ssh('cat /var/lib/nsbox/images/index.json').stdout)['images'][image[0]['digest']]['layers']
    fetched = 0
    for lay in layers:
        short = lay['digest'].split(':')[1][:12]
        if '%s: Already exists' % short in lines:  # the base layer: busybox's
            continue
        assert '%s: Download complete (%s)' % (short, views.human_size(lay['size'])) in lines, lines
        assert '%s: Pull complete' % short in lines, lines
        fetched += 1
    assert fetched >= 1 and len(lines) == 1 + fetched * 2 + (len(layers) - fetched) + 2, lines
    assert lines[0] == 'Pulling %s' % ref, lines
    assert lines[-2:] == ['Digest: %s' % image[0]['digest'], 'Status: Downloaded newer image for %s' % ref], lines
    assert '\x1b' not in res.stdout and 'Downloading' not in res.stdout
    res = nsbox(box, 'pull', ref)
    assert res.returncode == 0 and res.stdout.splitlines()[-1] == 'Status: Image is up to date for %s' % ref, res
    assert ok(box, 'pull', '-q', ref) == ref + '\n'
    res = nsbox(box, 'pull', '%s/nsbox/not-there:latest' % registry.host)
    assert res.returncode == 1 and res.stderr.startswith('nsbox: failed to '), res
    box.ansible.tasks([{'nsbox.runtime.image': {'name': ref, 'state': 'absent', 'prune': True}}])


def test_info_and_help(box):
    facts = json.loads(ok(box, 'info', '--format', 'json'))
    assert facts['data_root'] == '/var/lib/nsbox' and facts['state_dir'] == '/run/nsbox'
    assert facts['storage']['driver'] in ('overlay', 'vfs') and facts['cgroup']['version'] in ('v1', 'v2', 'hybrid')
    assert facts['cgroup']['driver'] == 'cgroupfs' and facts['kernel']['release'] == os.uname().release
    assert set(facts['containers']) == {'total', 'running', 'stopped'} and facts['images'] >= 1
    assert facts['security']['no_new_privs_default'] is True and facts['security']['seccomp']['default_profile'] == 'default'
    lines = ok(box, 'info').splitlines()
    keys = dict(line.split(':', 1) for line in lines)
    for key in ('Data root', 'State dir', 'Storage driver', 'Cgroup version', 'Cgroup driver', 'Kernel', 'Containers', 'Images',
                'Security options'):
        assert key in keys, lines
    assert len({len(line) - len(line[line.index(':') + 1:].lstrip()) for line in lines}) == 1, lines  # the values line up
    assert 'no_new_privs' in keys['Security options'] and 'seccomp' in keys['Security options']
    for verb in ('ps', 'images', 'logs', 'inspect', 'stats', 'start', 'stop', 'rm', 'exec', 'run', 'pull', 'prune', 'info', 'version',
                 'network ls', 'volume ls'):
        res = nsbox(box, *verb.split(), '--help')
        assert res.returncode == 0 and res.stdout.startswith('usage: nsbox %s' % verb), (verb, res)


def test_prune_removes_what_nothing_refers_to(box, registry, fixtures):
    ref = _push(registry, fixtures, 'multilayer', 'cli-prune')
    try:
        ok(box, 'pull', '-q', ref)
        ok(box, 'run', '--name', 'ended', 'busybox', 'true')
        ok(box, 'run', '-d', '--name', 'keep', '-v', 'usedvol:/data', 'busybox', 'sleep', '3600')
        res = box.ansible.tasks([{'nsbox.runtime.volume': {'name': 'freevol'}}])
        assert res.rc == 0, res
        box.host.ssh('dd if=/dev/zero of=/var/lib/nsbox/volumes/freevol/_data/blob bs=1M count=2 2>/dev/null')
        # asked, and not answered yes: nothing goes
        res = nsbox(box, 'prune', stdin='n\n')
        assert res.returncode == 1 and 'WARNING! This will remove' in res.stderr and 'ended' in ps(box, '-a'), res
        # the stopped container only (every image is tagged; volumes only with --volumes)
        res = nsbox(box, 'prune', '-f')
        assert res.returncode == 0, res
        assert res.stdout.splitlines()[:2] == ['Deleted containers:', 'ended (%s)' % res.stdout.split('(')[1][:12]], res.stdout
        assert res.stdout.splitlines()[-1].startswith('Total reclaimed space: ')
        assert sorted(ps(box, '-a')) == ['keep']
        # --all --volumes: the images no container uses, their layers and blobs; the unused volume
        before = {i['reference'] for i in json.loads(ok(box, 'images', '--format', 'json'))}
        assert ref in before
        out = json.loads(ok(box, 'prune', '-f', '--all', '--volumes', '--format', 'json'))
        assert ref in out['images']['untagged'] and 'busybox:latest' not in ' '.join(out['images']['untagged']), out
        assert out['images']['layers'] and out['images']['blobs'], out
        assert [v['name'] for v in out['volumes']] == ['freevol'] and out['volumes'][0]['size'] >= 2 * 1024 * 1024, out
        assert out['reclaimed'] >= out['volumes'][0]['size'] + out['images']['size'] and out['images']['size'] > 0, out
        after = {i['reference'] for i in json.loads(ok(box, 'images', '--format', 'json'))}
        assert ref not in after and any('busybox' in r for r in after), after  # busybox: the running container uses it
        assert [v['Name'] for v in json.loads(ok(box, 'volume', 'ls', '--format', 'json'))] == ['usedvol']
        blobs = box.host.ssh('ls /var/lib/nsbox/blobs/sha256').stdout.split()
        assert not set(d.split(':')[1] for d in out['images']['blobs']) & set(blobs)
        # nothing left to prune: nothing said but the total
        assert ok(box, 'prune', '-f', '--all', '--volumes') == 'Total reclaimed space: 0B\n'
        assert ps(box)['keep']['running']
    finally:
        remove(box, 'ended', 'keep')
        box.ansible.tasks([{'nsbox.runtime.volume': {'name': n, 'state': 'absent'}} for n in ('freevol', 'usedvol')])
