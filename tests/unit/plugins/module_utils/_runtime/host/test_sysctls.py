# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The host's sysctls against a /proc/sys and an /etc/sysctl.d of a test's own (the real ones: tests/integration)."""
from __future__ import annotations

import pytest

from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.host import sysctls
from ansible_collections.nsbox.runtime.plugins.module_utils._runtime.errors import ConfigError


@pytest.fixture
def proc(tmp_path):
    root = tmp_path / 'proc'
    (root / 'net' / 'ipv4').mkdir(parents=True)
    (root / 'net' / 'ipv4' / 'ip_forward').write_text('0\n')
    (root / 'net' / 'ipv4' / 'ping_group_range').write_text('1\t0\n')
    return str(root)


def test_file_and_live_values_then_nothing(tmp_path, proc):
    conf = str(tmp_path / 'sysctl.d' / '90-nsbox.conf')
    wanted = {'net.ipv4.ip_forward': 1, 'net.ipv4.ping_group_range': '0   2147483647'}
    planned, before = sysctls.plan(wanted, conf, proc)
    assert planned == [('file', 'write %s' % conf), ('live', 'set net.ipv4.ip_forward = 1 (was 0)'),
                       ('live', 'set net.ipv4.ping_group_range = 0 2147483647 (was 1 0)')]
    assert before == {'net.ipv4.ip_forward': '0', 'net.ipv4.ping_group_range': '1 0'}
    assert sysctls.apply(wanted, conf, proc) == (planned, before)
    with open(conf) as f:
        assert f.read() == '# Written by nsbox.runtime.host\nnet.ipv4.ip_forward = 1\nnet.ipv4.ping_group_range = 0 2147483647\n'
    assert sysctls.live(wanted, proc) == {'net.ipv4.ip_forward': '1', 'net.ipv4.ping_group_range': '0 2147483647'}
    assert sysctls.apply(wanted, conf, proc)[0] == []  # whitespace as sysctl prints it: no difference
    assert sysctls.apply({}, conf, proc)[0] == [('file', 'remove %s' % conf)]  # nothing wanted: our file goes
    assert sysctls.apply({}, conf, proc)[0] == []


@pytest.mark.parametrize('key, message', [('net.ipv4.nosuch', 'this kernel has no such parameter'),
                                          ('../../etc/passwd', 'expected a dotted kernel parameter name'),
                                          ('ip_forward', 'expected a dotted kernel parameter name')])
def test_a_bad_key_changes_nothing(tmp_path, proc, key, message):
    conf = str(tmp_path / '90-nsbox.conf')
    with pytest.raises(ConfigError, match=message):
        sysctls.apply({'net.ipv4.ip_forward': 1, key: 1}, conf, proc)
    assert not (tmp_path / '90-nsbox.conf').exists()
    assert sysctls.live({'net.ipv4.ip_forward': 1}, proc) == {'net.ipv4.ip_forward': '0'}


def test_a_file_that_is_not_ours_is_left_alone(tmp_path, proc):
    conf = tmp_path / '90-nsbox.conf'
    conf.write_text('# a person wrote this\nnet.ipv4.ip_forward = 1\n')
    assert sysctls.apply({}, str(conf), proc)[0] == [] and conf.exists()


def test_a_parameter_not_there_yet_is_predicted_only_when_asked(tmp_path, proc):
    """Check mode before the kernel module that makes a parameter is loaded (net.bridge.* and br_netfilter)."""
    conf = str(tmp_path / '90-nsbox.conf')
    wanted = {'net.bridge.bridge-nf-call-iptables': 1}
    with pytest.raises(ConfigError, match='this kernel has no such parameter'):
        sysctls.plan(wanted, conf, proc)
    assert sysctls.plan(wanted, conf, proc, absent_ok=True)[0] == [
        ('file', 'write %s' % conf), ('live', 'set net.bridge.bridge-nf-call-iptables = 1 (was not there yet)')]
    with pytest.raises(ConfigError, match='expected a dotted kernel parameter name'):
        sysctls.plan({'../x': 1}, conf, proc, absent_ok=True)  # a bad name is still refused
