"""hafm.shell.httpx_lean: the daemon's httpx comes without its command-line client (click, rich, pygments)."""

import subprocess
import sys

PROBE = """
import sys
from hafm.shell.httpx_lean import keep_cli_out
keep_cli_out()
import httpx
assert callable(httpx.main) and httpx.AsyncClient and httpx.URL("http://198.51.100.1/")
print(sorted({name.split(".")[0] for name in sys.modules} & {"click", "rich", "pygments"}))
"""


def test_httpx_works_without_importing_its_cli() -> None:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
