# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Faults a production host meets (issue 19), for real on a test host of their own.

A full disk: the test host's data-root is a small tmpfs of its own (in its mount namespace, gone with it), filled by
a container writing to a volume on it. Stopping, removing and recording an exit must work then, and every error
must say which filesystem is full."""
from __future__ import annotations

import secrets
import time

import pytest

from harness import images
from harness.containers import DATA_ROOT, FIXTURE_CACHE, LAYOUT, NOTHING, V1_ONLY, setup, teardown
from harness.runner import AnsibleRunner
from harness.testhost import TestHost

pytestmark = pytest.mark.skipif(LAYOUT is None or LAYOUT.mode == 'v2', reason=V1_ONLY)


@pytest.fixture(scope='module')
def full_host(reaper):
    host = TestHost('fullhost').start()
    ansible = AnsibleRunner([host])
    parent = '/nsbox-test-%s' % secrets.token_hex(4)
    try:
        host.ssh('mkdir -p %s && mount -t tmpfs -o size=48m,mode=0711 nsbox-full %s' % (DATA_ROOT, DATA_ROOT))
        yield setup(host, ansible, parent, {'busybox': images.FixtureImages(FIXTURE_CACHE).build().docker_archive})
    finally:
        left = teardown(host, parent)
        ansible.close()
        host.stop()  # its mount namespace, and the tmpfs in it, go with it
    reaper.check()
    assert left == NOTHING, 'the tests left these behind: %r' % left


def _free(box):
    return int(box.sh('df --output=avail -k %s | tail -1' % DATA_ROOT))


def _until(box, name, accept, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        info = box.info(name)
        if accept(info) or time.monotonic() > deadline:
            return info
        time.sleep(0.3)


def test_a_full_disk_takes_nothing_down_and_loses_no_exit_code(full_host):
    box = full_host
    crash = dict(name='crash', image='busybox', command=['sh', '-c', 'sleep 6; exit 3'], restart_policy='on-failure:1', stop_timeout=0)
    assert box.run(**crash)['_status'] == 'changed'
    filler = dict(name='filler', image='busybox', command=['sh', '-c', 'dd if=/dev/zero of=/data/big bs=64k 2>/dev/null; sleep 3600'],
                  volumes=['fill:/data'], stop_timeout=0)
    assert box.run(**filler)['_status'] == 'changed'
    deadline = time.monotonic() + 30
    while _free(box) > 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _free(box) == 0, 'the volume did not fill the data-root'
    # crash ends while the disk is full: its exit code is recorded and its policy restarts it, once.
    info = _until(box, 'crash', lambda i: i['state']['restart_count'] == 1 and i['state']['status'] == 'exited', timeout=40)
    assert (info['state']['status'], info['state']['exit_code'], info['state']['restart_count']) == ('exited', 3, 1), info['state']
    # Anything that needs new room says where there is none, and changes nothing.
    other = box.run(name='other', image='busybox', command='sleep 1')
    assert other['_status'] == 'failed' and 'no space left on %s' % DATA_ROOT in other['msg'], other
    assert box.info('other') is None
    # Stopping and removing work on the full disk, from the module and from the command line.
    res = box.run(name='crash', state='absent')
    assert res['_status'] == 'changed', res
    out = box.host.ssh('nsbox stop filler && nsbox rm filler', check=False)
    assert out.returncode == 0 and 'Traceback' not in out.stderr, (out.stdout, out.stderr)
    assert box.ansible.module('nsbox.runtime.volume', {'name': 'fill', 'state': 'absent'})['_status'] == 'changed'
    assert _free(box) > 40000  # the volume's data went with it
