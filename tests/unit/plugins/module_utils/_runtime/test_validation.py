# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation gaps of issue 19 item 7: names that end in a newline, nested values stored as their repr, values
(secrets) shown in errors, impossible registry ports, an error naming the wrong thing."""
from __future__ import annotations

import os
import re

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime import bundle, errors
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.container import options
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError, NsboxError
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import kmods, sysctls
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.image.reference import Reference
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.kernel import namespaces
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.launch.spec import Exec
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.network import store as network_store
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.volume import store as volume_store

LIB = os.path.dirname(os.path.abspath(bundle.__file__))


def test_no_pattern_of_the_library_ends_in_a_dollar():
    """``$`` matches before a final newline: ``web\\n`` would pass for ``web``. ``\\Z`` (or fullmatch) is the end."""
    found = []
    for dirpath, _dirs, files in os.walk(LIB):
        for name in files:
            if name.endswith('.py'):
                with open(os.path.join(dirpath, name)) as f:
                    for number, line in enumerate(f, 1):
                        if re.search(r"re\.(compile|match|search|fullmatch)\(r?'[^']*\$'", line):
                            found.append('%s:%d' % (name, number))
    assert found == []


@pytest.mark.parametrize('check', [
    options.validate_name, network_store.validate_name, volume_store.validate_name, namespaces.validate_name,
    lambda n: kmods.text([n]) and kmods._check([n]),  # pylint: disable=protected-access
    lambda n: sysctls.check({'net.ipv4.ip_forward': '1', 'net.ipv4.' + n: '1'}, absent_ok=True),
    lambda n: options.check({'networks': [n]}), lambda n: options.check({'hostname': n}),
    lambda n: options.check({'depends_on': [n], 'supervisor': 'auto'}),
    lambda n: Reference.parse('busybox:' + n), lambda n: Reference.parse(n + '/busybox'),
])
def test_a_name_with_a_trailing_newline_is_refused(check):
    """(Options a user may write with spaces around, network_mode and dns_search, are stripped: stored without the newline.)"""
    check('web1')
    with pytest.raises(NsboxError):
        check('web1\n')


@pytest.mark.parametrize('option', ['labels', 'annotations'])
def test_a_nested_label_is_refused_not_stored_as_its_repr(option):
    with pytest.raises(ConfigError, match='%s a: values are strings, not dict' % option):
        options.check({option: {'a': {'b': 1}}})
    assert options.check({option: {'a': 1}})[option] == {'a': '1'}


def test_an_env_value_is_never_shown_in_an_error():
    secret = 'hunter2-%s' % os.getpid()
    with pytest.raises(ConfigError) as err:
        options.check({'env': {'PASSWORD': secret + '\0', 'OTHER': 'x'}})
    assert 'env PASSWORD' in str(err.value) and secret not in str(err.value)
    with pytest.raises(ConfigError) as err:
        Exec.of({'args': ['sh'], 'env': ['A=1', 'PASSWORD=%s\0' % secret]})
    assert 'variable PASSWORD' in str(err.value) and secret not in str(err.value)
    with pytest.raises(ConfigError, match='a value is a string, not a dict'):
        options.check({'env': {'A': {'b': 1}}})


@pytest.mark.parametrize('ref', ['localhost:99999/app', 'registry.example:0/app', 'registry.example:65536/app:1'])
def test_an_impossible_registry_port_is_a_bad_reference(ref):
    with pytest.raises(NsboxError, match='is not 1-65535'):
        Reference.parse(ref)
    assert Reference.parse('localhost:5000/app').registry == 'localhost:5000'


def test_an_error_from_another_process_keeps_what_it_names():
    """The supervisor sends its start error as to_dict(); the module reported 'container t6' for a missing user."""
    sent = ConfigError('find', "user 'nosuchuser'", "no matching entry in the image's /etc/passwd", errno=2).to_dict()
    got = errors.NsboxError.from_dict(sent, 'start', 'container t6')
    assert (got.action, got.obj, got.errno) == ('find', "user 'nosuchuser'", 2)
    assert 'container t6' not in str(got)
    assert errors.NsboxError.from_dict({}, 'start', 'container t6').obj == 'container t6'


def test_a_size_past_64_bits_is_refused_not_wrapped():
    with pytest.raises(ConfigError, match='more than the kernel can hold'):
        options.check({'memory': '18446744073776660480'})  # 2^64 + 64 MiB: the kernel read it as 64 MiB
    with pytest.raises(ConfigError, match='more than the kernel can hold'):
        options.check({'shm_size': '9000000p'})
    assert options.check({'memory': '64m'})['resources']['memory'] == 64 << 20


def test_pids_limit_has_one_meaning_and_says_it():
    assert options.check({'pids_limit': 0})['resources']['pids_limit'] == -1 == options.check({'pids_limit': -1})['resources']['pids_limit']
    with pytest.raises(ConfigError, match='from 1 to 4194304, or -1 or 0 for no limit'):
        options.check({'pids_limit': -5})
