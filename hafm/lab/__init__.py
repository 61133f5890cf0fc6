"""The network-namespace lab: hosts, daemons, a test page and ``hafm demo``.

Only ``hafm demo``, ``bench/`` and the tests import it; the daemon never does.
"""
