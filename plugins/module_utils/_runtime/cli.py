# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``nsbox`` host command: a thin front on the library, for people and scripts.

Exit codes: 0 success, 1 the operation failed (message on stderr), 2 bad usage.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from . import config as hostconfig
from . import hostinfo
from .errors import NsboxError
from .version import VERSION

EXIT_FAILED = 1


def _out(text='', stream=None):
    (stream or sys.stdout).write(text + '\n')


def _archive():
    """The zipapp this process runs from, if any."""
    loader = globals().get('__loader__')
    archive = getattr(loader, 'archive', None)
    return os.path.realpath(archive) if archive else None


def cmd_version(args):
    info = {'version': VERSION, 'library': _archive(), 'python': sys.version.split()[0]}
    if args.format == 'json':
        _out(json.dumps(info, indent=2, sort_keys=True))
    else:
        _out('nsbox %s' % VERSION)
    return 0


def _rows(facts):
    cg = facts['cgroup']
    st = facts['storage']
    return [
        ('Version', VERSION),
        ('Library', facts['library'] or '(not installed: running from source)'),
        ('Config', '%s%s' % (facts['config'], '' if facts['config_exists'] else ' (absent: defaults)')),
        ('Data root', facts['data_root']),
        ('State dir', facts['state_dir']),
        ('Storage driver', '%s (on %s%s)' % (st['driver'], st['backing_fs'], '' if st['driver'] in st['drivers'] else '; NOT usable: %s' % st['reason'])),
        ('Cgroup version', cg['version']),
        ('Cgroup driver', cg['driver']),
        ('Cgroup controllers', ' '.join(cg['controllers']) or '-'),
        ('Systemd', 'yes (PID 1)' if facts['systemd'] else 'no'),
        ('Kernel', '%s %s' % (facts['kernel']['release'], facts['kernel']['machine'])),
        ('Overlay', 'yes' if facts['overlay'] else 'no'),
        ('Idmapped mounts', 'yes' if facts['idmapped_mounts'] else 'no'),
        ('Python', '%s %s' % (facts['python']['executable'], facts['python']['version'])),
    ]


def cmd_info(args):
    cfg = hostconfig.load(args.config)
    facts = hostinfo.gather(cfg)
    facts.update(version=VERSION, library=_archive(), config=cfg.path, config_exists=cfg.exists)
    if args.format == 'json':
        _out(json.dumps(facts, indent=2, sort_keys=True))
        return 0
    rows = _rows(facts)
    width = max(len(k) for k, _v in rows) + 1
    for key, value in rows:
        _out('%-*s %s' % (width, key + ':', value))
    return 0


def parser():
    p = argparse.ArgumentParser(prog='nsbox', description='nsbox container runtime: host command.')
    p.add_argument('--config', default=None, help='host config file (default: $NSBOX_CONFIG or %s)' % hostconfig.CONFIG_PATH)
    sub = p.add_subparsers(dest='command', metavar='COMMAND')
    sub.required = True
    for name, func, text in (('info', cmd_info, 'show how this host is set up for nsbox'),
                             ('version', cmd_version, 'show the nsbox version')):
        sp = sub.add_parser(name, help=text, description=text)
        sp.add_argument('--format', choices=('table', 'json'), default='table', help='output format')
        sp.set_defaults(func=func)
    return p


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        code = args.func(args)
    except NsboxError as exc:
        _out('nsbox: %s' % exc.message, sys.stderr)
        code = EXIT_FAILED
    except BrokenPipeError:
        # `nsbox info | head`: not an error; keep Python from complaining at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    raise SystemExit(code)
