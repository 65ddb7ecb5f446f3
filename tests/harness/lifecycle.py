# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the harness's test hosts and servers share: a start that undoes itself when it fails, use as a context
manager, and (for hosts) a shell command over SSH."""
from __future__ import annotations

import subprocess


class Started:
    """``start()`` runs the subclass's ``_start()``; when that fails, ``stop()`` removes what it had made so far (so a
    half-made host or server never outlives the failure). ``with X(...) as x:`` starts and stops."""

    def _start(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def start(self):
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class SshHost(Started):
    """A host the tests reach over SSH; the subclass gives ``name`` and ``ssh_args()`` (the ssh command line up to the
    destination)."""

    name = None

    def ssh_args(self):
        raise NotImplementedError

    def ssh(self, command, check=True, timeout=120, **kwargs):
        """Run a shell command on the host over SSH; returns the CompletedProcess (text). Never the test's stdin."""
        kwargs.setdefault('capture_output', True)
        res = subprocess.run(self.ssh_args() + ['--', command], text=True, timeout=timeout, check=False,
                             stdin=subprocess.DEVNULL, **kwargs)
        if check and res.returncode != 0:
            raise AssertionError('ssh %s %r exited %d\nstdout: %s\nstderr: %s'
                                 % (self.name, command, res.returncode, res.stdout, res.stderr))
        return res
