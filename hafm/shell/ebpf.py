"""The absorber: an eBPF socket filter that keeps a Backup's routine adverts out of user space.

A steady Backup hears the same advert from its Master every interval (1 000 a second for 100
instances at 0.1 s) and only needs to know, at each Master_Down check, that it kept coming.
For a VRID that is *armed* with the advert last read for it, this filter drops an identical
copy in the kernel and records its arrival (CLOCK_MONOTONIC, the loop's clock) and a count in a
per-socket array map, one :data:`SLOT` per VRID, which hafm reads and writes through ``mmap``:
no system call per packet, none per check.  Anything else (another source, priority, VIP list
or checksum, a TTL or length that differs, a disarmed VRID, a runt) passes to the socket as before.

"Identical" means every byte that matters: the whole VRRP message (up to :data:`MAX_WORDS` words;
a longer one is never absorbed), source and destination, length, TTL (hop limit) and, for IPv4,
protocol and header length.  The IPv4 ID and header checksum may differ.  IPv6 raw sockets hand
the filter the VRRP message without the IP header; the hop limit and addresses are read from it
through ``SKF_NET_OFF``.

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
from dataclasses import dataclass

log = logging.getLogger(__name__)

__all__ = ["Absorber", "Identity", "absorber_program", "identity_of"]

_NR_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351, "riscv64": 280}
_BPF_MAP_CREATE, _BPF_PROG_LOAD = 0, 5
_BPF_MAP_TYPE_ARRAY = 2
_BPF_F_MMAPABLE = 1 << 10
_BPF_PROG_TYPE_SOCKET_FILTER = 1
SO_ATTACH_BPF = getattr(socket, "SO_ATTACH_BPF", 50)
SKF_NET_OFF = -0x100000

SLOTS = 256  # one per VRID (0 unused)
MAX_WORDS = 32  # VRRP messages up to 128 bytes are absorbed (v2 with 28 VIPs, v3 IPv6 with 7); longer ones are read
# A slot: armed, VRRP words compared, length/TTL/protocol, IPv4 version/IHL byte, addresses (IPv4: source and
# destination; IPv6: both, 4 words each), the VRRP message's words, then what the filter writes.
SLOT = struct.Struct(f"=IIII8I{MAX_WORDS}IQQ")
_ARMED, _WORDS, _LENGTH, _BYTE0, _ADDRESSES, _MESSAGE = 0, 4, 8, 12, 16, 48
_LAST_NS = _MESSAGE + 4 * MAX_WORDS
_COUNT = _LAST_NS + 8

# Registers and opcodes (linux/bpf.h, linux/bpf_common.h).
R0, R1, R2, R3, R6, R7, R8, R9, R10 = 0, 1, 2, 3, 6, 7, 8, 9, 10
_MOV64_K, _MOV64_X, _AND64_K, _LSH64_K, _ADD64_K, _OR64_X = 0xB7, 0xBF, 0x57, 0x67, 0x07, 0x4F
_LDABS_B, _LDABS_H, _LDABS_W, _LDIND_B, _LDIND_W = 0x30, 0x28, 0x20, 0x50, 0x40
_LDX_W, _STX_W, _STX_DW, _ATOMIC_DW, _LD_IMM64 = 0x61, 0x63, 0x7B, 0xDB, 0x18
_JEQ_K, _JLE_K, _JNE_X, _JGT_X, _CALL, _EXIT = 0x15, 0xB5, 0x5D, 0x2D, 0x85, 0x95
_PSEUDO_MAP_FD = 1
_MAP_LOOKUP_ELEM, _KTIME_GET_NS = 1, 5
PASS, ABSORB = -1, 0  # a socket filter returns how many bytes to keep
# A jump's offset before it is resolved: to the PASS exit, or to the tail that absorbs.
_TO_PASS, _TO_MATCH = -0x8000, -0x7FFF

Instruction = tuple[int, int, int, int, int]  # (code, dst, src, off, imm)


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> Instruction:
    return (code, dst, src, off, imm)


def _same(load: list[Instruction], slot_offset: int) -> list[Instruction]:
    """``load`` puts a value in r0; pass the packet unless it equals the slot's u32 at ``slot_offset``."""
    return [*load, _insn(_LDX_W, R1, R7, off=slot_offset), _insn(_JNE_X, R0, R1, off=_TO_PASS)]


def absorber_program(family: int, map_fd: int) -> list[Instruction]:
    """The filter for a raw socket of ``family`` whose slots live in map ``map_fd``."""
    program: list[Instruction] = [_insn(_MOV64_X, R6, R1)]  # LD_ABS/LD_IND read the packet through r6
    if family == 4:
        program += [
            _insn(_LDABS_B, imm=0),
            _insn(_MOV64_X, R9, R0),  # r9: version and IHL, compared below
            _insn(_AND64_K, R0, imm=0x0F),
            _insn(_LSH64_K, R0, imm=2),
            _insn(_MOV64_X, R8, R0),  # r8: the IPv4 header length, where VRRP starts
        ]
    else:
        program += [_insn(_MOV64_K, R8, imm=0), _insn(_MOV64_K, R9, imm=0)]  # the VRRP message itself
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
        _insn(_LDX_W, R1, R7, off=_ARMED),
        _insn(_JEQ_K, R1, off=_TO_PASS, imm=0),
        *_same([_insn(_MOV64_X, R0, R9)], _BYTE0),
    ]
    if family == 4:
        program += _same(
            [
                _insn(_LDABS_H, imm=2),  # total length
                _insn(_LSH64_K, R0, imm=16),
                _insn(_MOV64_X, R9, R0),
                _insn(_LDABS_H, imm=8),  # TTL and protocol
                _insn(_OR64_X, R0, R9),
            ],
            _LENGTH,
        )
        program += _same([_insn(_LDABS_W, imm=12)], _ADDRESSES)  # source
        program += _same([_insn(_LDABS_W, imm=16)], _ADDRESSES + 4)  # destination
    else:
        program += _same(
            [
                _insn(_LDX_W, R0, R6, off=0),  # skb->len: the VRRP message's length
                _insn(_LSH64_K, R0, imm=16),
                _insn(_MOV64_X, R9, R0),
                _insn(_LDABS_B, imm=SKF_NET_OFF + 7),  # hop limit
                _insn(_LSH64_K, R0, imm=8),
                _insn(_OR64_X, R0, R9),
            ],
            _LENGTH,
        )
        for word in range(8):  # source and destination, from the IPv6 header
            program += _same([_insn(_LDABS_W, imm=SKF_NET_OFF + 8 + 4 * word)], _ADDRESSES + 4 * word)
    for word in range(MAX_WORDS):
        # Equal lengths were checked above, so no load runs past the end of the packet.
        program += [_insn(_LDX_W, R1, R7, off=_WORDS), _insn(_JLE_K, R1, off=_TO_MATCH, imm=word)]
        program += _same([_insn(_LDIND_W, src=R8, imm=4 * word)], _MESSAGE + 4 * word)
    match_at = len(program)
    program += [
        _insn(_CALL, imm=_KTIME_GET_NS),
        _insn(_STX_DW, R7, R0, off=_LAST_NS),
        _insn(_MOV64_K, R1, imm=1),
        _insn(_ATOMIC_DW, R7, R1, off=_COUNT),  # count += 1
        _insn(_MOV64_K, R0, imm=ABSORB),
        _insn(_EXIT),
    ]
    pass_at = len(program)
    program += [_insn(_MOV64_K, R0, imm=PASS), _insn(_EXIT)]
    targets = {_TO_PASS: pass_at, _TO_MATCH: match_at}
    return [
        (code, dst, src, targets[off] - index - 1 if off in targets else off, imm)
        for index, (code, dst, src, off, imm) in enumerate(program)
    ]


_said_unavailable = False


def _unavailable(message: str) -> None:
    """Once at INFO (a steady Backup then costs about 1.7 times the CPU), then at DEBUG."""
    global _said_unavailable
    log.log(logging.DEBUG if _said_unavailable else logging.INFO, "%s", message)
    _said_unavailable = True


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

    def __init__(self, map_fd: int, slots: mmap.mmap) -> None:
        self._map_fd = map_fd
        self._slots = slots
        self.armed: dict[int, tuple[object, int]] = {}  # VRID -> (what it was armed with, count read)
        self._unreported: list[tuple[int, object, int, float]] = []  # of an arming since replaced

    @classmethod
    def create(cls, sock: socket.socket, family: int) -> Absorber | None:
        """Load the filter onto ``sock``; None (and every packet read as before) where the kernel says no."""
        try:
            attr = ctypes.create_string_buffer(
                struct.pack("=5I", _BPF_MAP_TYPE_ARRAY, 4, SLOT.size, SLOTS, _BPF_F_MMAPABLE), 128
            )
            map_fd = _bpf(_BPF_MAP_CREATE, attr)
        except OSError as exc:
            _unavailable(f"eBPF absorber unavailable ({exc.strerror or exc}): every advert is read")
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
            _unavailable(f"eBPF absorber not loaded ({exc.strerror or exc}): every advert is read")
            return None
        return cls(map_fd, slots)

    def close(self) -> None:
        self._slots.close()
        os.close(self._map_fd)

    def _count(self, vrid: int) -> int:
        return int(struct.unpack_from("=Q", self._slots, vrid * SLOT.size + _COUNT)[0])

    def _newest(self, vrid: int) -> float:
        """The newest absorbed copy's arrival, CLOCK_MONOTONIC seconds."""
        return float(struct.unpack_from("=Q", self._slots, vrid * SLOT.size + _LAST_NS)[0] * 1e-9)

    def _set_armed(self, vrid: int, armed: bool) -> None:
        struct.pack_into("=I", self._slots, vrid * SLOT.size + _ARMED, int(armed))

    def _keep_unreported(self, vrid: int) -> None:
        """Copies absorbed under the slot's current arming and not yet reported: reported at the next call."""
        token, seen = self.armed[vrid]
        count = self._count(vrid)
        if count != seen:
            self._unreported.append((vrid, token, count - seen, self._newest(vrid)))

    def arm(self, vrid: int, identity: Identity, token: object) -> None:
        """Absorb copies of the advert whose ``identity`` (see :func:`identity_of`) is given; ``token`` comes back."""
        self._set_armed(vrid, False)  # first: the filter reads a slot while it is rewritten
        if vrid in self.armed:
            self._keep_unreported(vrid)
        offset = vrid * SLOT.size
        words = identity.words + (0,) * (MAX_WORDS - len(identity.words))
        struct.pack_into(
            f"=III8I{MAX_WORDS}I", self._slots, offset + _WORDS,
            len(identity.words), identity.length, identity.byte0, *identity.addresses, *words,
        )  # fmt: skip
        self.armed[vrid] = (token, self._count(vrid))
        self._set_armed(vrid, True)

    def disarm(self, vrid: int) -> None:
        if vrid in self.armed:
            self._set_armed(vrid, False)
            self._keep_unreported(vrid)
            del self.armed[vrid]

    def absorbed(self) -> list[tuple[int, object, int, float]]:
        """(VRID, token, copies, newest arrival in CLOCK_MONOTONIC seconds) absorbed since the last call."""
        found, self._unreported = self._unreported, []
        for vrid, (token, seen) in self.armed.items():
            count = self._count(vrid)  # before the arrival: the kernel writes the arrival, then counts
            if count != seen:
                found.append((vrid, token, count - seen, self._newest(vrid)))
                self.armed[vrid] = (token, count)
        return found


@dataclass(frozen=True)
class Identity:
    """What the filter compares (see the module docstring), as the values its loads produce."""

    byte0: int  # IPv4 version and IHL; 0 for IPv6
    length: int  # total length << 16 | TTL << 8 | protocol (IPv6: message length << 16 | hop limit << 8)
    addresses: tuple[int, ...]  # 8 words: IPv4 source, destination, zeros; IPv6 source, destination
    words: tuple[int, ...]  # the VRRP message, 4 bytes a word


def identity_of(family: int, data: bytes, *, source: bytes, destination: bytes, hop_limit: int) -> Identity | None:
    """The identity of a packet as the raw socket delivered it (IPv4: from its IP header); None if not absorbable."""
    if family == 4:
        ihl = (data[0] & 0x0F) * 4
        message = data[ihl:]
        total, ttl_proto = struct.unpack_from(">HxxxxH", data, 2)
        length = (total << 16) | ttl_proto
        addresses = (*struct.unpack_from(">II", data, 12), 0, 0, 0, 0, 0, 0)
        byte0 = data[0]
    else:
        message = data
        length = (len(data) << 16) | (hop_limit << 8)
        addresses = struct.unpack(">8I", source + destination)
        byte0 = 0
    if not 8 <= len(message) <= 4 * MAX_WORDS or len(message) % 4:
        return None
    return Identity(byte0, length, addresses, struct.unpack(f">{len(message) // 4}I", message))
