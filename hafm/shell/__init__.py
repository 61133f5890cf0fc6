"""The asyncio I/O shell: sockets, netlink, timers and subprocesses around the sans-IO core.

Nothing here decides protocol behaviour or policy; see :mod:`hafm.vrrp`.
"""
