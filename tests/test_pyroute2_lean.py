"""hafm imports only the pyroute2 parts it uses, and pyroute2 still works in full for anyone else."""

from __future__ import annotations

import subprocess
import sys


def python(code: str) -> list[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_the_daemon_does_not_import_pyroute2s_other_apis() -> None:
    code = (
        "import sys, hafm.shell.daemon\n"
        "print(*sorted({m.split('.')[1] for m in sys.modules if m.startswith('pyroute2.')}))\n"
    )
    loaded = python(code)
    assert "iproute" in loaded and "netlink" in loaded
    for unused in ("ndb", "ipdb", "conntrack", "nftables", "wiset", "plan9"):
        assert unused not in loaded


def test_the_full_package_is_still_there_for_a_plugin() -> None:
    code = (
        "import hafm.shell.netlink as ours\n"
        "from pyroute2 import NDB, IPRoute, AsyncIPRoute\n"
        "import pyroute2\n"
        "print(AsyncIPRoute is ours.AsyncIPRoute, pyroute2.NDB is NDB, bool(pyroute2.__version__))\n"
    )
    assert python(code) == ["True", "True", "True"]
