"""The three pyroute2 names hafm uses, without the package's ``__init__``.

``import pyroute2`` (and so ``from pyroute2.anything import ...``) runs
``pyroute2/__init__.py``, which imports every pyroute2 API: NDB, IPDB, conntrack,
nftables, wireguard, nl80211, plan9...  Measured here (pyroute2 0.9.7, Python 3.11)
that is ~30 ms of start-up and ~6 MiB of RSS the daemon never uses.

So, before the first pyroute2 import, the package is registered as a bare module
(its ``__path__`` set, its ``__init__`` not run) and only ``pyroute2.iproute`` and
``pyroute2.netlink`` are imported.  Anything else that asks the bare package for an
attribute (``from pyroute2 import NDB`` in a plugin) runs the real ``__init__`` at
that moment, once, and gets what it asked for: nothing else sees a difference.
"""

from __future__ import annotations

import importlib.util
import sys
from types import ModuleType
from typing import Any

__all__ = ["RTMGRP_LINK", "AsyncIPRoute", "NetlinkError"]


def _bare_package(name: str) -> None:
    if name in sys.modules:  # already imported in full: nothing left to save
        return
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ImportError(f"no module named {name!r}")
    loader = spec.loader
    package: ModuleType = importlib.util.module_from_spec(spec)

    def complete(attribute: str) -> Any:
        # pyroute2's own modules say `from pyroute2 import config`: a submodule is just imported.
        if not attribute.startswith("__") and importlib.util.find_spec(f"{name}.{attribute}") is not None:
            return importlib.import_module(f"{name}.{attribute}")
        del package.__dict__["__getattr__"]  # PEP 562 hook, used once
        loader.exec_module(package)
        return getattr(package, attribute)

    package.__dict__["__getattr__"] = complete
    sys.modules[name] = package


_bare_package("pyroute2")

from pyroute2.iproute import AsyncIPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402
from pyroute2.netlink.rtnl import RTMGRP_LINK  # noqa: E402
