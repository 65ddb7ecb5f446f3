# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-in for ansible-test's get-pip bootstrap script, whose download host is unreachable here.

ansible-test runs ``python get_pip_<ver>.py [pip options] pip==<ver> --no-setuptools --no-wheel``
in a fresh venv. This does the same with the interpreter's own ensurepip plus ``pip install``
from the package index, so sanity runs offline (but for PyPI). scripts/test puts it in
``~/.ansible/test/cache``.
"""
from __future__ import annotations

import subprocess
import sys


def main():
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    subprocess.run([sys.executable, '-m', 'ensurepip', '--default-pip'], check=True, stdout=subprocess.DEVNULL)
    subprocess.run([sys.executable, '-m', 'pip', 'install', '--quiet'] + args, check=True)


if __name__ == '__main__':
    main()
