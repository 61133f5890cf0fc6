"""The doorbell filter: a classic BPF program that lets through only the VRRP packets worth waking for.

A steady Backup hears the same advert from its Master every interval and needs to look at
them only when its Master_Down timer is due, so the daemon reads its data socket lazily (see
:mod:`hafm.shell.sockets`).  Some packets cannot wait: a priority-0 advert (the Master resigns:
take over after Skew_Time), an advert for a VRID we are Master of (a better Master, or one to
answer), anything for a VRID we do not back (unknown VRIDs, floods, forgeries: counted at
once), and packets too short to read.  A second raw socket carries this filter; it receives
only those, and its only job is to wake the daemon, which then drains the data socket.

The kernel hands a raw IPv4 socket's filter the packet from its IP header and a raw IPv6
socket's filter the VRRP header itself, so the program first puts the VRRP header's offset in X.
"""

from __future__ import annotations

import ctypes
import socket
import struct
from collections.abc import Iterable

# Classic BPF opcodes (linux/filter.h).
_LD_B_IND = 0x50  # A = byte at X + k
_LD_W_LEN = 0x80  # A = packet length
_LDX_IMM = 0x01  # X = k
_LDX_B_MSH = 0xB1  # X = 4 * (byte at k & 0xf): the IPv4 header length
_ALU_SUB_X = 0x1C  # A -= X
_JGE_K = 0x35
_JEQ_K = 0x15
_RET_K = 0x06

SO_ATTACH_FILTER = getattr(socket, "SO_ATTACH_FILTER", 26)
MAX_INSTRUCTIONS = 4096  # BPF_MAXINSNS
VRRP_HEADER = 8  # bytes before the addresses: enough to read VRID and priority
RING = 64  # bytes of a ringing packet kept: the doorbell reads only its arrival
QUIET = 0

Instruction = tuple[int, int, int, int]  # (code, jt, jf, k)


def doorbell_program(family: int, quiet_vrids: Iterable[int]) -> list[Instruction]:
    """A filter passing every packet except a routine advert: long enough, priority > 0, VRID in ``quiet_vrids``.

    ``quiet_vrids`` are the VRIDs this socket's instances back (state BACKUP).
    """
    vrids = sorted(set(quiet_vrids))
    if any(not 1 <= vrid <= 255 for vrid in vrids):
        raise ValueError(f"VRIDs must be 1-255: {vrids}")
    header = (_LDX_B_MSH, 0, 0, 0) if family == 4 else (_LDX_IMM, 0, 0, 0)
    program: list[Instruction] = [
        header,
        (_LD_W_LEN, 0, 0, 0),
        (_ALU_SUB_X, 0, 0, 0),
        (_JGE_K, 1, 0, VRRP_HEADER),  # long enough: go on; else ring
        (_RET_K, 0, 0, RING),
        (_LD_B_IND, 0, 0, 2),  # priority
        (_JEQ_K, 0, 1, 0),
        (_RET_K, 0, 0, RING),  # priority 0: the Master resigns
        (_LD_B_IND, 0, 0, 1),  # VRID
    ]
    for vrid in vrids:
        # Two instructions a VRID: jumps are 8-bit, so each match returns right there.
        program += [(_JEQ_K, 0, 1, vrid), (_RET_K, 0, 0, QUIET)]
    program.append((_RET_K, 0, 0, RING))
    return program


def attach(sock: socket.socket, program: list[Instruction]) -> None:
    """Attach (or replace) ``sock``'s filter; the kernel copies the program."""
    if len(program) > MAX_INSTRUCTIONS:
        raise ValueError(f"BPF program of {len(program)} instructions; the kernel takes {MAX_INSTRUCTIONS}")
    code = b"".join(struct.pack("=HBBI", *instruction) for instruction in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = struct.pack("@HP", len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
