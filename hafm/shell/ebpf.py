"""The absorber: an eBPF socket filter that keeps a Backup's routine adverts out of user space.

A steady Backup hears the same advert from its Master every interval (1 000 a second for 100
instances at 0.1 s) and only needs to know, at each Master_Down check, that it kept coming.
For a VRID that is *armed* with the advert last read for it, this filter drops an identical
copy in the kernel and records its arrival (CLOCK_MONOTONIC, the loop's clock) and a count in a
per-socket array map, one 40-byte slot per VRID, which hafm reads and writes through ``mmap``:
no system call per packet, none per check.  Anything else (another source, priority, VIP list
or checksum, a TTL or length that differs, a disarmed VRID, a runt) passes to the socket as before.

"Identical" is what the filter can compare: source, destination, total length, TTL and protocol
(IPv4), and the VRRP header's first 8 bytes, whose checksum covers the rest of the advert (and,
in v3, the addresses).  IPv6 raw sockets hand the filter the VRRP message without the IP header:
the hop limit is read through ``SKF_NET_OFF`` and the addresses are covered by v3's checksum.

Everything here is optional: without the ``bpf()`` system call (no CAP_BPF, an old kernel, a
seccomp filter) :func:`Absorber.create` returns None and every packet is read as before.
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import os
import platform
import socket
import struct

log = logging.getLogger(__name__)

__all__ = ["Absorber", "absorber_program"]

_NR_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}
_BPF_MAP_CREATE, _BPF_PROG_LOAD = 0, 5
_BPF_MAP_TYPE_ARRAY = 2
_BPF_F_MMAPABLE = 1 << 10
_BPF_PROG_TYPE_SOCKET_FILTER = 1
SO_ATTACH_BPF = getattr(socket, "SO_ATTACH_BPF", 50)
SKF_NET_OFF = -0x100000

SLOTS = 256  # one per VRID (0 unused)
SLOT = struct.Struct("=IIIIIIQQ")  # source, word0, word1, destination, length/ttl, pad, last_ns, count
_LAST_NS = 24

# Registers and opcodes (linux/bpf.h, linux/bpf_common.h).
R0, R1, R2, R3, R6, R7, R8, R9, R10 = 0, 1, 2, 3, 6, 7, 8, 9, 10
_MOV64_K, _MOV64_X, _AND64_K, _LSH64_K, _ADD64_K, _OR64_X = 0xB7, 0xBF, 0x57, 0x67, 0x07, 0x4F
_LDABS_B, _LDABS_H, _LDABS_W, _LDIND_B, _LDIND_W = 0x30, 0x28, 0x20, 0x50, 0x40
_LDX_W, _STX_W, _STX_DW, _ATOMIC_DW, _LD_IMM64 = 0x61, 0x63, 0x7B, 0xDB, 0x18
_JEQ_K, _JNE_X, _JGT_X, _CALL, _EXIT = 0x15, 0x5D, 0x2D, 0x85, 0x95
_PSEUDO_MAP_FD = 1
_MAP_LOOKUP_ELEM, _KTIME_GET_NS = 1, 5
PASS, ABSORB = -1, 0  # a socket filter returns how many bytes to keep
_TO_PASS = -0x8000  # a jump's offset before it is resolved: to the PASS exit

Instruction = tuple[int, int, int, int, int]  # (code, dst, src, off, imm)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Instruction:
    return (code, dst, src, off, imm)


def absorber_program(family: int, map_fd: int) -> list[Instruction]:
    """The filter for a raw socket of ``family`` whose slots live in map ``map_fd``."""
    program: list[Instruction] = [_insn(_MOV64_X, R6, R1)]  # LD_ABS/LD_IND read the packet through r6
    if family == 4:
        program += [
            _insn(_LDABS_B, imm=0),
            _insn(_AND64_K, R0, imm=0x0F),
            _insn(_LSH64_K, R0, imm=2),
            _insn(_MOV64_X, R8, R0),  # r8: the IPv4 header length, where VRRP starts
        ]
    else:
        program.append(_insn(_MOV64_K, R8, imm=0))  # the VRRP message itself
    program += [
        _insn(_LDX_W, R2, R6, off=0),  # skb->len
        _insn(_MOV64_X, R3, R8),
        _insn(_ADD64_K, R3, imm=8),
        _insn(_JGT_X, R3, R2, off=_TO_PASS),  # a runt: user space counts it
        _insn(_LDIND_B, src=R8, imm=1),  # VRID
        _insn(_STX_W, R10, R0, off=-4),
        _insn(_LD_IMM64, R1, _PSEUDO_MAP_FD, imm=map_fd),
        _insn(0),
        _insn(_MOV64_X, R2, R10),
        _insn(_ADD64_K, R2, imm=-4),
        _insn(_CALL, imm=_MAP_LOOKUP_ELEM),
        _insn(_JEQ_K, R0, off=_TO_PASS, imm=0),
        _insn(_MOV64_X, R7, R0),  # r7: the VRID's slot
        _insn(_LDX_W, R9, R7, off=4),
        _insn(_JEQ_K, R9, off=_TO_PASS, imm=0),  # not armed
        _insn(_LDIND_W, src=R8, imm=0),
        _insn(_JNE_X, R0, R9, off=_TO_PASS),
        _insn(_LDX_W, R9, R7, off=8),
        _insn(_LDIND_W, src=R8, imm=4),
        _insn(_JNE_X, R0, R9, off=_TO_PASS),
    ]
    if family == 4:
        program += [
            _insn(_LDX_W, R9, R7, off=0),
            _insn(_LDABS_W, imm=12),  # source
            _insn(_JNE_X, R0, R9, off=_TO_PASS),
            _insn(_LDX_W, R9, R7, off=12),
            _insn(_LDABS_W, imm=16),  # destination
            _insn(_JNE_X, R0, R9, off=_TO_PASS),
            _insn(_LDABS_H, imm=2),  # total length
            _insn(_LSH64_K, R0, imm=16),
            _insn(_MOV64_X, R9, R0),
            _insn(_LDABS_H, imm=8),  # TTL and protocol
            _insn(_OR64_X, R0, R9),
        ]
    else:
        program += [
            _insn(_LDX_W, R0, R6, off=0),  # skb->len: the VRRP message's length
            _insn(_LSH64_K, R0, imm=16),
            _insn(_MOV64_X, R9, R0),
            _insn(_LDABS_B, imm=SKF_NET_OFF + 7),  # hop limit
            _insn(_LSH64_K, R0, imm=8),
            _insn(_OR64_X, R0, R9),
        ]
    program += [
        _insn(_LDX_W, R9, R7, off=16),
        _insn(_JNE_X, R0, R9, off=_TO_PASS),
        _insn(_CALL, imm=_KTIME_GET_NS),
        _insn(_STX_DW, R7, R0, off=_LAST_NS),
        _insn(_MOV64_K, R1, imm=1),
        _insn(_ATOMIC_DW, R7, R1, off=_LAST_NS + 8),  # count += 1
        _insn(_MOV64_K, R0, imm=ABSORB),
        _insn(_EXIT),
    ]
    pass_at = len(program)
    program += [_insn(_MOV64_K, R0, imm=PASS), _insn(_EXIT)]
    return [
        (code, dst, src, pass_at - index - 1 if off == _TO_PASS else off, imm)
        for index, (code, dst, src, off, imm) in enumerate(program)
    ]


def _encode(program: list[Instruction]) -> bytes:
    return b"".join(struct.pack("<BBhi", code, (src << 4) | dst, off, imm) for code, dst, src, off, imm in program)


_libc = ctypes.CDLL(None, use_errno=True)


def _bpf(command: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    number = _NR_BPF.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, f"bpf() on {platform.machine()} is not known to hafm")
    fd = _libc.syscall(number, command, attr, len(attr))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(fd)


class Absorber:
    """One socket's filter and its slots; :meth:`arm` a VRID with the advert read for it."""

    def __init__(self, map_fd: int, slots: mmap.mmap, family: int) -> None:
        self._map_fd = map_fd
        self._slots = slots
        self.family = family
        self.armed: dict[int, tuple[object, int]] = {}  # VRID -> (what it was armed with, count read)

    @classmethod
    def create(cls, sock: socket.socket, family: int) -> Absorber | None:
        """Load the filter onto ``sock``; None (and every packet read as before) where the kernel says no."""
        try:
            attr = ctypes.create_string_buffer(
                struct.pack("=5I", _BPF_MAP_TYPE_ARRAY, 4, SLOT.size, SLOTS, _BPF_F_MMAPABLE), 128
            )
            map_fd = _bpf(_BPF_MAP_CREATE, attr)
        except OSError as exc:
            log.debug("eBPF absorber unavailable (%s): every advert is read", exc.strerror or exc)
            return None
        try:
            length = -(-SLOTS * SLOT.size // mmap.PAGESIZE) * mmap.PAGESIZE
            slots = mmap.mmap(map_fd, length, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            code = _encode(absorber_program(family, map_fd))
            insns = ctypes.create_string_buffer(code, len(code))
            license_ = ctypes.create_string_buffer(b"GPL")
            log_buf = ctypes.create_string_buffer(65536)
            attr = ctypes.create_string_buffer(128)
            struct.pack_into(
                "=IIQQIIQ",
                attr,
                0,
                _BPF_PROG_TYPE_SOCKET_FILTER,
                len(code) // 8,
                ctypes.addressof(insns),
                ctypes.addressof(license_),
                1,
                len(log_buf),
                ctypes.addressof(log_buf),
            )
            try:
                prog_fd = _bpf(_BPF_PROG_LOAD, attr)
            except OSError as exc:
                verifier = log_buf.value.decode(errors="replace").strip().splitlines()
                raise OSError(exc.errno, f"{exc.strerror}: {verifier[-1] if verifier else 'no verifier log'}") from None
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_BPF, prog_fd)
            finally:
                os.close(prog_fd)  # the socket holds the program
        except OSError as exc:
            os.close(map_fd)
            log.debug("eBPF absorber not loaded (%s): every advert is read", exc.strerror or exc)
            return None
        return cls(map_fd, slots, family)

    def close(self) -> None:
        self._slots.close()
        os.close(self._map_fd)

    def arm(self, vrid: int, identity: tuple[int, int, int, int, int], token: object) -> None:
        """Absorb copies of the advert whose ``identity`` (see :func:`identity_of`) is given; ``token`` comes back."""
        offset = vrid * SLOT.size
        count = SLOT.unpack_from(self._slots, offset)[7]
        source, word0, word1, destination, length_ttl = identity
        # word0 last: the filter treats a slot with word0 == 0 as disarmed.
        struct.pack_into("=I", self._slots, offset + 4, 0)
        struct.pack_into("=IIIIII", self._slots, offset, source, 0, word1, destination, length_ttl, 0)
        struct.pack_into("=I", self._slots, offset + 4, word0)
        self.armed[vrid] = (token, count)

    def disarm(self, vrid: int) -> None:
        if self.armed.pop(vrid, None) is not None:
            struct.pack_into("=I", self._slots, vrid * SLOT.size + 4, 0)

    def absorbed(self) -> list[tuple[int, object, int, float]]:
        """(VRID, token, copies, newest arrival in CLOCK_MONOTONIC seconds) absorbed since the last call."""
        found = []
        for vrid, (token, seen) in self.armed.items():
            last_ns, count = struct.unpack_from("=QQ", self._slots, vrid * SLOT.size + _LAST_NS)
            if count != seen:
                found.append((vrid, token, count - seen, last_ns * 1e-9))
        for vrid, token, copies, _ in found:
            self.armed[vrid] = (token, self.armed[vrid][1] + copies)
        return found


def identity_of(family: int, data: bytes, hop_limit: int) -> tuple[int, int, int, int, int] | None:
    """What the filter compares, for a packet as the raw socket delivered it (IPv4: from its IP header)."""
    if family == 4:
        ihl = (data[0] & 0x0F) * 4
        if len(data) < ihl + 8:
            return None
        total, ttl_proto = struct.unpack_from(">H", data, 2)[0], struct.unpack_from(">H", data, 8)[0]
        source, dest = struct.unpack_from(">II", data, 12)
        word0, word1 = struct.unpack_from(">II", data, ihl)
        return source, word0, word1, dest, (total << 16) | ttl_proto
    if len(data) < 8:
        return None
    word0, word1 = struct.unpack_from(">II", data, 0)
    return 0, word0, word1, 0, (len(data) << 16) | (hop_limit << 8)
