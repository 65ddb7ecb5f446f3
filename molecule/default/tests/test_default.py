# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the roles left on a test host, checked over SSH from the host's point of view (testinfra)."""
from __future__ import annotations

import json

import pytest

NAMESPACES = ('mnt', 'pid', 'net', 'uts', 'ipc')


def inspect(host, name):
    return json.loads(host.check_output('nsbox inspect %s' % name))[0]


@pytest.fixture(scope='module')
def config(host):
    return json.loads(host.file('/etc/nsbox/config.json').content_string)


def test_host_config_names_the_data_root_and_network(config):
    assert config['data_root'] == '/var/lib/nsbox'
    assert config['storage_driver'] == 'overlay'
    assert config['default_network'] == {'name': 'nsbox0', 'subnet': '10.77.0.0/16'}


def test_runtime_library_and_command_are_installed(host):
    assert host.file('/usr/local/bin/nsbox').mode & 0o111
    assert host.file('/usr/local/lib/nsbox/current').is_symlink
    assert 'overlay' in host.check_output('nsbox info')


def test_data_root_is_a_real_directory_not_an_overlay(host):
    assert host.check_output('findmnt -no FSTYPE --target /var/lib/nsbox') != 'overlay'
    assert host.file('/var/lib/nsbox/store.json').exists


def test_sysctl_for_bridge_networking(host):
    assert host.file('/etc/sysctl.d/90-nsbox.conf').contains('net.ipv4.ip_forward = 1')
    assert host.check_output('cat /proc/sys/net/ipv4/ip_forward') == '1'


def test_host_has_its_own_hostname_and_cgroup_root(host):
    assert host.check_output('hostname') == host.backend.get_hostname()
    assert all(line.endswith(':/') for line in host.file('/proc/self/cgroup').content_string.split())


def test_declared_containers_run_and_the_undeclared_one_was_pruned(host):
    ps = {c['name']: c for c in json.loads(host.check_output('nsbox ps -a --format json'))}
    assert set(ps) == {'web', 'client', 'by-hand'}  # retired (made by the role, no longer declared) is gone
    assert inspect(host, 'web')['state']['status'] == 'running'
    assert inspect(host, 'client')['state']['status'] == 'running'


def test_container_is_supervised(host):
    web = inspect(host, 'web')
    if host.file('/run/systemd/system').is_directory:
        assert host.service('nsbox-web').is_running
    else:
        assert web['state']['supervised']


@pytest.mark.parametrize('name', ['web', 'client'])
def test_container_processes_run_in_their_own_namespaces(host, name):
    pid = inspect(host, name)['state']['pid']
    for ns in NAMESPACES:
        mine = host.check_output('readlink /proc/self/ns/%s' % ns)
        theirs = host.check_output('readlink /proc/%d/ns/%s' % (pid, ns))
        assert theirs != mine, '%s of %s is the host\'s' % (ns, name)


def test_web_listens_in_its_namespace_and_its_port_is_published(host):
    pid = inspect(host, 'web')['state']['pid']
    # busybox httpd listens on [::]:80 where IPv6 is up, else 0.0.0.0:80: either table (LISTEN is state 0A).
    listening = host.check_output('nsenter --target %d --net cat /proc/net/tcp /proc/net/tcp6' % pid)
    assert any(f[1].endswith(':0050') and f[3] == '0A' for f in (line.split() for line in listening.splitlines()) if f[0] != 'sl')
    page = host.check_output("python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8080/', timeout=5).read().decode())\"")
    assert 'hello' in page.lower()


def test_client_fetches_web_by_name_on_the_user_defined_network(host):
    page = host.run('for i in 1 2 3 4 5 6 7 8 9 10; do nsbox exec client cat /tmp/page && exit 0; sleep 1; done; exit 1')
    assert page.rc == 0 and page.stdout.strip() == 'hello from nsbox', page.stderr


def test_web_cgroup_is_under_the_hosts_own_root(host):
    web = inspect(host, 'web')
    assert host.file('/sys/fs/cgroup/memory/nsbox/%s/memory.limit_in_bytes' % web['id']).content_string.strip() == str(32 << 20)
