# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One container task, as the ``container`` module takes it and the ``containers`` module takes each item:
its options (the argument spec) and how it is run (the library's ``converge.ensure``)."""
from __future__ import annotations

from ._runtime.container import options, converge


def argument_spec():
    """The options of one container: what to converge it to (name, state...) and its settings."""
    return dict(name={'type': 'str', 'required': True},
                state={'type': 'str', 'default': 'started', 'choices': list(converge.STATES)},
                recreate={'type': 'bool', 'default': False}, force_kill={'type': 'bool', 'default': False},
                pull={'type': 'str', 'default': 'missing', 'choices': list(converge.PULL)},
                comparisons={'type': 'dict'},
                healthy_wait_timeout={'type': 'float', 'default': converge.HEALTHY_WAIT_TIMEOUT},
                **options.argument_spec())


def check(cfg, params):
    """Refuse what :func:`ensure` would refuse for ``params``, with nothing done (ConfigError)."""
    converge.check(cfg, params['name'], {k: params[k] for k in options.OPTIONS}, state=params['state'], pull=params['pull'],
                   comparisons=params['comparisons'], healthy_wait_timeout=params['healthy_wait_timeout'])


def ensure(cfg, params, check_mode):
    """Converge the container ``params`` (validated against :func:`argument_spec`) describe; the library's result."""
    return converge.ensure(cfg, params['name'], {k: params[k] for k in options.OPTIONS}, state=params['state'],
                           recreate=params['recreate'], force_kill=params['force_kill'], check_mode=check_mode,
                           pull=params['pull'], comparisons=params['comparisons'],
                           healthy_wait_timeout=params['healthy_wait_timeout'])
