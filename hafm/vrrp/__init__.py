"""The VRRP protocol core: codec, state machine, instances and their coordinator.

Pure: no sockets, no clock, no config files.  Events in, actions out.
"""
