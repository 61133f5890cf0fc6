"""httpx without its command-line client.

``import httpx`` also imports ``httpx._main``, its command-line client, whenever ``click`` and
``rich`` happen to be installed (any environment with developer tools): ~60 modules (rich,
pygments, click) and ~4 MiB of RSS that a daemon never uses.  httpx expects that import to fail
when they are missing and then defines a stub ``main``; :func:`keep_cli_out` makes it fail the
same way, before anything imports httpx.  Nothing else in httpx changes.
"""

from __future__ import annotations

import sys
from types import ModuleType

CLI_MODULE = "httpx._main"


def keep_cli_out() -> None:
    """Make ``from httpx._main import main`` fail in this process (the daemon's), as without click and rich."""
    if "httpx" in sys.modules:  # too late: imported in full already
        return
    sys.modules.setdefault(CLI_MODULE, ModuleType(CLI_MODULE))
