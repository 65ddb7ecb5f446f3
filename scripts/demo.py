# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Driver of scripts/demo: an sshd on 127.0.0.1 for the demo inventory, then the demo play over SSH."""
from __future__ import annotations

import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'tests'))

from harness.images import FixtureImages  # noqa: E402  pylint: disable=wrong-import-position
from harness.runner import AnsibleRunner  # noqa: E402  pylint: disable=wrong-import-position
from harness.testhost import TestHost  # noqa: E402  pylint: disable=wrong-import-position


IMAGE_CACHE = '/var/tmp/nsbox-demo-images'


def main():
    # The demo image: Debian's static busybox as a docker-archive, made by the project's own code.
    image = FixtureImages(IMAGE_CACHE).build().docker_archive
    # Not private: the demo configures this machine itself, as a user's play would.
    with TestHost('demo', private=False) as host:
        runner = AnsibleRunner([host])
        try:
            env = runner.env(os.devnull)
            env.pop('ANSIBLE_NOCOLOR')
            cmd = [os.path.join(os.path.dirname(sys.executable), 'ansible-playbook'),
                   os.path.join(REPO, 'playbooks', 'demo.yml'), '-e', 'nsbox_demo_image_archive=%s' % image] + sys.argv[1:]
            rc = subprocess.run(cmd, env=env, check=False).returncode
        finally:
            runner.close()
    sys.exit(rc)


if __name__ == '__main__':
    main()
