# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host command's tables and texts (pure: ``now`` is given), and its argument parsing."""
from __future__ import annotations

import errno
import json

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.cli import main, run, term, views
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import logs

NOW = views.parse_time('2026-11-23T10:00:00.000000000Z')


def _state(**kw):
    out = {'status': 'running', 'running': True, 'pid': 4242, 'exit_code': None, 'started_at': None, 'finished_at': None}
    out.update(kw)
    return out


def test_parse_time_reads_the_stores_stamps():
    assert views.parse_time('2026-11-23T10:00:01.500000000Z') == NOW + 1.5
    assert views.parse_time(None) is None and views.parse_time('garbage') is None


@pytest.mark.parametrize('seconds, text', [
    (0, 'Less than a second'), (1, '1 second'), (59, '59 seconds'), (60, 'About a minute'), (119, 'About a minute'),
    (180, '3 minutes'), (3600, 'About an hour'), (5 * 3600, '5 hours'), (47 * 3600, '47 hours'), (3 * 86400, '3 days'),
    (20 * 86400, '2 weeks'), (90 * 86400, '3 months'), (800 * 86400, '2 years'), (-5, 'Less than a second'),
])
def test_human_duration_as_docker_says_it(seconds, text):
    assert views.human_duration(seconds) == text


@pytest.mark.parametrize('value, decimal, binary', [
    (0, '0B', '0B'), (999, '999B', '999B'), (1000, '1kB', '1000B'), (1536, '1.536kB', '1.5KiB'),
    (5 * 1024 * 1024, '5.243MB', '5MiB'), (3 * 10 ** 9, '3GB', '2.794GiB'),
])
def test_sizes(value, decimal, binary):
    assert views.human_size(value) == decimal
    assert views.bytes_size(value) == binary


def test_status_texts():
    assert views.status_text(_state(started_at='2026-11-23T09:57:00.1Z'), NOW) == 'Up 2 minutes'
    assert views.status_text(_state(started_at='2026-11-23T09:59:58Z', health={'status': 'healthy'}), NOW) == 'Up 2 seconds (healthy)'
    # its supervisor died (issue 20 item 4: ps said only 'Up 4 minutes')
    assert views.status_text(_state(started_at='2026-11-23T09:57:00.1Z', supervised=False), NOW) == 'Up 2 minutes (unsupervised)'
    assert views.status_text(_state(started_at='2026-11-23T09:59:58Z', health={'status': 'healthy'}, supervised=False), NOW) == \
        'Up 2 seconds (healthy, unsupervised)'
    exited = _state(status='exited', running=False, pid=None, exit_code=3, finished_at='2026-11-23T09:58:00Z')
    assert views.status_text(exited, NOW) == 'Exited (3) 2 minutes ago'
    assert views.status_text(dict(exited, exit_code=None), NOW) == 'Exited (?) 2 minutes ago'
    assert views.status_text(dict(exited, status='restarting', exit_code=1), NOW) == 'Restarting (1) 2 minutes ago'
    assert views.status_text(_state(status='created', running=False, pid=None), NOW) == 'Created'


def test_table_lines_up_and_has_no_trailing_blanks():
    text = views.table(('A', 'LONGER', 'C'), [('xxxx', '', 'z'), ('y', 'b', '')])
    lines = text.splitlines()
    assert lines == ['A      LONGER   C', 'xxxx            z', 'y      b']
    assert views.table(('NAME', 'X'), []) == 'NAME   X'


def test_ps_rows_and_table():
    containers = [
        {'id': 'a' * 64, 'name': 'web', 'image': {'name': 'busybox', 'digest': 'sha256:' + 'd' * 64, 'id': 'sha256:' + 'c' * 64},
         'state': _state(started_at='2026-11-23T09:57:00Z', ports=['127.0.0.1:8080->80/tcp', '0.0.0.0:53->53/udp'])},
        {'id': 'b' * 64, 'name': 'job', 'image': {'name': None, 'digest': 'x', 'id': 'sha256:' + 'e' * 64},
         'state': _state(status='exited', running=False, pid=None, exit_code=0, finished_at='2026-11-23T08:00:00Z')},
    ]
    rows = views.ps_rows(containers, NOW)
    assert rows[0]['image'] == 'busybox' and rows[1]['image'] == 'e' * 12
    assert rows[1]['status_text'] == 'Exited (0) 2 hours ago' and rows[1]['ports'] == []
    json.dumps(rows)  # --format json prints them
    lines = views.ps_table(rows).splitlines()
    assert lines[0].split() == ['NAME', 'IMAGE', 'STATUS', 'PORTS', 'PID']
    assert lines[1].startswith('web    busybox        Up 3 minutes   ') and lines[1].endswith('4242')
    assert '127.0.0.1:8080->80/tcp, 0.0.0.0:53->53/udp' in lines[1]
    assert lines[2].endswith('-')
    col = lines[0].index('STATUS')
    assert lines[1][col:].startswith('Up 3 minutes') and lines[2][col:].startswith('Exited (0)')


def test_image_rows_one_per_reference_untagged_once():
    imgs = [{'id': 'sha256:1', 'digest': 'sha256:' + 'f' * 64, 'references': ['docker.io/library/busybox:latest', 'b:1'], 'size': 2_200_000},
            {'id': 'sha256:2', 'digest': 'sha256:' + '0' * 64, 'references': [], 'size': 10}]
    rows = views.image_rows(imgs)
    assert [r['reference'] for r in rows] == ['<none>', 'b:1', 'docker.io/library/busybox:latest']
    lines = views.images_table(rows).splitlines()
    assert lines[0].split() == ['REPOSITORY:TAG', 'DIGEST', 'SIZE']
    assert lines[3].split() == ['docker.io/library/busybox:latest', 'f' * 12, '2.2MB']


def test_stats_cpu_percent_and_table():
    before = {'cpu': {'usage_usec': 1_000_000}, 'memory': {'usage': 100}, 'pids': 1}
    after = {'cpu': {'usage_usec': 1_500_000}, 'memory': {'usage': 3 * 1024 * 1024}, 'pids': 2}
    assert views.cpu_percent(before, after, 1.0) == pytest.approx(50.0)
    assert views.cpu_percent(None, after, 1.0) is None and views.cpu_percent(before, after, 0) is None
    rows = views.stats_rows([('a', before, after, 0.5, 64 * 1024 * 1024), ('b', None, None, 0, None)])
    assert rows[0]['cpu_percent'] == pytest.approx(100.0)
    lines = views.stats_table(rows).splitlines()
    assert lines[1].split() == ['a', '100.00%', '3MiB', '/', '64MiB', '2']
    assert lines[2].split() == ['b', '--', '--', '/', 'unlimited', '--']


def test_network_and_volume_tables():
    nets = [{'name': 'nsbox0', 'driver': 'bridge', 'subnet': '10.77.0.0/16', 'gateway': '10.77.0.1', 'containers': ['x', 'y']}]
    assert views.network_table(nets).splitlines()[1].split() == ['nsbox0', 'bridge', '10.77.0.0/16', '10.77.0.1', '2']
    vols = [{'Name': 'data', 'Driver': 'local', 'UsedBy': ['db']}, {'Name': 'x', 'Driver': 'local', 'UsedBy': []}]
    assert [line.split() for line in views.volume_table(vols).splitlines()] == [['NAME', 'DRIVER', 'CONTAINERS'], ['data', 'local', 'db'], ['x', 'local', '-']]


def test_parser_takes_the_verbs():
    p = main.parser()
    args = p.parse_args(['exec', 'c', 'sh', '-c', 'exit 3'])
    assert (args.name, args.cmd) == ('c', ['sh', '-c', 'exit 3'])
    args = p.parse_args(['--config', '/x.json', 'ps', '-a', '--format', 'json'])
    assert args.all and args.format == 'json' and args.config == '/x.json'
    assert p.parse_args(['logs', '-f', '--tail', '5', 'c']).tail == 5
    assert p.parse_args(['rm', '-f', 'a', 'b']).names == ['a', 'b']
    assert p.parse_args(['network', 'ls']).func is main.cmd_network_ls
    assert p.parse_args(['volume', 'ls', '--format', 'json']).func is main.cmd_volume_ls
    for bad in (['ps', '--format', 'yaml'], ['inspect'], ['network'], ['logs', '--tail', 'x', 'c']):
        with pytest.raises(SystemExit) as exc:
            p.parse_args(bad)
        assert exc.value.code == 2


def test_parser_takes_run_pull_prune_and_exec_it():
    p = main.parser()
    args = p.parse_args(['exec', '-it', 'c', 'sh'])
    assert args.interactive and args.tty and args.cmd == ['sh']
    args = p.parse_args(['run', '-d', '--name', 'w', '-e', 'A=1', '-e', 'B=x=y', '-p', '8080:80', '-v', 'data:/d', '--network', 'none',
                         '-it', 'busybox', 'sh', '-c', 'echo hi'])
    assert run.run_options(args) == {'image': 'busybox', 'tty': True, 'interactive': True, 'command': ['sh', '-c', 'echo hi'],
                                     'env': {'A': '1', 'B': 'x=y'}, 'volumes': ['data:/d'], 'published_ports': ['8080:80'],
                                     'network_mode': 'none'}
    assert args.detach and args.name == 'w' and not args.rm
    assert run.run_options(p.parse_args(['run', 'busybox'])) == {'image': 'busybox', 'tty': False, 'interactive': False}
    args = p.parse_args(['pull', '-q', 'reg/x:1'])
    assert args.quiet and args.ref == 'reg/x:1' and args.func is main.cmd_pull
    args = p.parse_args(['prune', '-a', '--volumes', '-f', '--format', 'json'])
    assert args.all and args.volumes and args.force and args.format == 'json'


def test_pull_lines():
    digest = 'sha256:' + 'ab' * 32
    assert views.pull_line(digest, 'downloading', 500, 1000, width=10) == 'abababababab: Downloading [=====>    ] 500B/1kB'
    assert views.pull_line(digest, 'downloading', 1000, 1000, width=10) == 'abababababab: Downloading [==========] 1kB/1kB'
    assert views.pull_line(digest, 'downloading', 0, 1000, width=4) == 'abababababab: Downloading [>   ] 0B/1kB'
    assert views.pull_line(digest, 'exists', 10, 10) == 'abababababab: Already exists'
    assert views.pull_plain(digest, 'downloading', 5, 10) is None
    assert views.pull_plain(digest, 'downloaded', 2500000, 2500000) == 'abababababab: Download complete (2.5MB)'
    assert views.pull_plain(digest, 'unpacked', 1, 1) == 'abababababab: Pull complete'
    assert views.pull_summary('r:1', 'sha256:d', False) == ['Digest: sha256:d', 'Status: Image is up to date for r:1']


def test_board_redraws_in_place_and_throttles():
    class Out:
        text = ''

        def write(self, s):
            self.text += s

        def flush(self):
            pass
    clock = [0.0]
    out = Out()
    board = term.Board(out, interval=0.1, clock=lambda: clock[0])
    assert board.set('a', 'a: 1') and board.set('b', 'b: 1')
    board.draw()
    assert out.text == '\r\x1b[2Ka: 1\n\r\x1b[2Kb: 1\n'
    assert not board.set('a', 'a: 1') and board.set('a', 'a: 2')
    board.draw()  # too soon: nothing drawn
    assert out.text.count('a:') == 1
    clock[0] = 0.2
    board.draw()
    assert out.text.endswith('\x1b[2A\r\x1b[2Ka: 2\n\r\x1b[2Kb: 1\n')
    board.set('a', 'a: 3')
    board.draw(force=True)
    assert out.text.endswith('\x1b[2A\r\x1b[2Ka: 3\n\r\x1b[2Kb: 1\n')


def test_prune_text():
    out = {'containers': [{'id': 'c' * 64, 'name': 'old', 'size': 4096}],
           'images': {'untagged': ['reg/x:1'], 'images': ['sha256:' + 'd' * 64], 'blobs': ['sha256:' + 'e' * 64], 'layers': [],
                      'size': 2000000},
           'networks': [], 'volumes': [{'name': 'v', 'size': 0}], 'reclaimed': 2004096}
    assert views.prune_text(out).splitlines() == [
        'Deleted containers:', 'old (cccccccccccc)', '', 'Untagged images:', 'reg/x:1', '', 'Deleted images:', 'sha256:' + 'd' * 64, '',
        'Deleted blobs:', 'eeeeeeeeeeee', '', 'Deleted volumes:', 'v', '', 'Total reclaimed space: 2.004MB']
    empty = {'containers': [], 'images': {'untagged': [], 'images': [], 'blobs': [], 'layers': [], 'size': 0}, 'networks': [],
             'volumes': [], 'reclaimed': 0}
    assert views.prune_text(empty) == 'Total reclaimed space: 0B'
    assert views.prune_warning(True, True).count('  - ') == 5 and 'dangling' in views.prune_warning(False, False)


def test_exit_codes_of_exec_and_run():
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch.process import ProcessError
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import NsboxError
    assert run.exit_for(ProcessError('find', 'the command x', 'not found', errno=errno.ENOENT)) == 127
    assert run.exit_for(ProcessError('exec', '/etc', 'Permission denied', errno=errno.EACCES)) == 126
    assert run.exit_for(ProcessError('exec', '/x', 'No such file', errno=errno.ENOENT)) == 127
    assert run.exit_for(NsboxError('exec in', 'container c', 'it does not exist')) == 125
    # nsbox run: the start's error as the supervisor reported it (a ContainerError keeping the action and errno)
    from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container.store import ContainerError
    sent = ProcessError('find', 'the command x', 'executable file not found in $PATH', errno=errno.ENOENT).to_dict()
    assert run.exit_for(ContainerError.from_dict(sent, 'start', 'container r')) == 127
    sent = ProcessError('exec', '/etc/passwd', 'Permission denied', errno=errno.EACCES).to_dict()
    assert run.exit_for(ContainerError.from_dict(sent, 'start', 'container r')) == 126
    assert run.exit_for(ContainerError('find', "user 'x'", 'no matching entry')) == 125


@pytest.mark.parametrize('verb', ['ps', 'images', 'logs', 'inspect', 'stats', 'start', 'stop', 'rm', 'exec', 'network', 'volume', 'run', 'pull',
                                  'prune', 'info', 'version'])
def test_every_verb_has_help(verb, capsys):
    with pytest.raises(SystemExit) as exc:
        main.parser().parse_args([verb, '--help'])
    assert exc.value.code == 0
    assert 'usage: nsbox %s' % verb in capsys.readouterr().out


def test_a_runtime_error_exits_1_with_nsbox_on_stderr(tmp_path, capsys):
    cfg = tmp_path / 'config.json'
    cfg.write_text(json.dumps({'data_root': str(tmp_path / 'data'), 'state_dir': str(tmp_path / 'run')}))
    with pytest.raises(SystemExit) as exc:
        main.main(['--config', str(cfg), 'logs', 'nosuch'])
    assert exc.value.code == 1
    assert capsys.readouterr().err == 'nsbox: failed to show the logs of container nosuch: it does not exist\n'
    with pytest.raises(SystemExit) as exc:
        main.main(['--config', str(cfg), 'ps', '--format', 'json'])
    assert exc.value.code == 0 and json.loads(capsys.readouterr().out) == []


def test_follower_sees_new_entries_once_and_survives_truncation(tmp_path):
    path = str(tmp_path / 'c-json.log')
    log = logs.JsonFileLog(path, clock=iter(range(1, 100)).__next__)
    log.write('stdout', b'one\n')
    follower = logs.Follower(path)  # opened at the end: 'one' is history
    log.write('stderr', b'two\n')
    history = logs.tail(path, None)
    follower.skip(history)
    assert [e['log'] for e in history] == ['one\n', 'two\n']
    assert follower.read() == []  # 'two' was in the history
    log.write('stdout', b'three\n')
    assert [(e['stream'], e['log']) for e in follower.read()] == [('stdout', 'three\n')]
    with open(path, 'w'):
        pass  # truncated in place, as a rotation with max_files 1 does
    log2 = logs.JsonFileLog(path, clock=iter(range(200, 300)).__next__)
    log2.write('stdout', b'four\n')
    log2.close()
    assert [e['log'] for e in follower.read()] == ['four\n']
    follower.close()
    log.close()
