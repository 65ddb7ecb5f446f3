# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver of scripts/demo: an sshd on 127.0.0.1 for the demo inventory, then the demo playbook over SSH.

The roles converge the host twice (tag ``converge``); the second run must change nothing, which
is read from every task's recorded result. Then the page is shown (``show``) and the demo cleans
up (``cleanup``, also after a failure).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from harness.images import FixtureImages  # noqa: E402  pylint: disable=wrong-import-position
from harness.runner import AnsibleRunner  # noqa: E402  pylint: disable=wrong-import-position
from harness.testhost import TestHost  # noqa: E402  pylint: disable=wrong-import-position


IMAGE_CACHE = '/var/tmp/nsbox-demo-images'


def play(runner, image, tags, extra):
    """ansible-playbook demo.yml with ``tags``; returns (rc, the number of changed task results)."""
    fd, results = tempfile.mkstemp(prefix='results-', suffix='.json', dir=runner.workdir)
    os.close(fd)
    env = runner.env(results)
    env.pop('ANSIBLE_NOCOLOR')
    cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'), os.path.join(REPO, 'playbooks', 'demo.yml'),
           '--tags', tags, '-e', 'nsbox_demo_image_archive=%s' % image] + extra
    rc = subprocess.run(cmd, env=env, check=False).returncode
    with open(results) as f:
        records = json.load(f) if os.path.getsize(results) else []
    return rc, sum(1 for r in records if r['status'] == 'changed')


def main():
    # The demo image: Debian's static busybox as a docker-archive, made by the project's own code.
    image = FixtureImages(IMAGE_CACHE).build().docker_archive
    extra = sys.argv[1:]
    # Not private: the demo configures this machine itself, as a user's play would.
    with TestHost('demo', private=False) as host:
        runner = AnsibleRunner([host])
        rc = 1
        try:
            rc, changed = play(runner, image, 'converge', extra)
            if rc == 0:
                print('>>> converged (%d changed); converging again: nothing may change' % changed)
                rc, changed = play(runner, image, 'converge', extra)
                print('>>> second converge: changed=%d' % changed)
                if rc == 0 and changed:
                    print('>>> FAILED: the second converge changed %d task(s)' % changed)
                    rc = 1
            if rc == 0:
                rc, _changed = play(runner, image, 'show', extra)
        finally:
            cleanup_rc, _changed = play(runner, image, 'cleanup', extra)
            runner.close()
    sys.exit(rc or cleanup_rc)


if __name__ == '__main__':
    main()
