# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every host of the fleet runs its web container, isolated from the others' (testinfra, over SSH).

Few commands per host: testinfra's ansible backend pays an Ansible run for each.
"""
from __future__ import annotations

import json

LAB_ADDRESSES = ['10.123.0.%d' % (10 + i) for i in range(10)]  # tests/harness/lab.py: host i at 10.123.0.(10+i)
FETCH_ALL = ("python3 -c \"import sys, urllib.request; "
             "print(json.dumps([urllib.request.urlopen('http://%s:8080/' % a, timeout=5).read().decode().strip() for a in sys.argv[1:]]))\" "
             .replace('import sys', 'import json, sys'))


def test_web_runs_and_the_host_sees_only_its_own_cgroup_tree(host):
    out = json.loads(host.check_output("printf '{\"ps\": %s, \"cgroups\": \"%s\"}' \"$(nsbox ps -a --format json)\" "
                                       "\"$(find /sys/fs/cgroup/pids/nsbox -mindepth 1 -maxdepth 1 -type d -printf '%f ')\""))
    assert [(c['name'], c['status']) for c in out['ps']] == [('web', 'running')], out['ps']
    # Its cgroup namespace is rooted at its own cgroup: /nsbox holds this host's one container only.
    assert len(out['cgroups'].split()) == 1


def test_every_hosts_page_is_reachable_over_the_lab_bridge(host):
    assert json.loads(host.check_output(FETCH_ALL + ' '.join(LAB_ADDRESSES))) == ['hello from nsbox'] * 10
