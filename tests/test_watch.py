"""Tests for hafm watch: the pure SegmentView fed with scapy-built frames on a fake clock, and its renderers."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any

import pytest
from scapy.layers.inet import IP
from scapy.layers.inet6 import IPv6
from scapy.layers.l2 import Dot1Q, Ether
from scapy.layers.vrrp import VRRP, VRRPv3
from scapy.packet import Packet, Raw

from hafm.cli import main
from hafm.config.model import Config
from hafm.errors import HafmError
from hafm.vrrp.codec import checksum
from hafm.watch import capture
from hafm.watch.analysis import (
    CONFLICT_EVENTS,
    Checksum,
    Expected,
    FindingKind,
    SegmentView,
    combine,
    expectations_from_config,
    parse_expect,
)
from hafm.watch.capture import heard_from_packet
from hafm.watch.report import WIDTH, render_json, render_table
from tests.helpers import instance_config

A, B, C = "198.51.100.1", "198.51.100.2", "198.51.100.3"
VIP, VIP2 = "198.51.100.100", "198.51.100.101"
MCAST4, MCAST6 = "224.0.0.18", "ff02::12"
LL_A, LL_B = "fe80::a", "fe80::b"
VIP6 = "2001:db8::100"


def v2(source: str, *, vrid: int = 51, priority: int = 100, interval: int = 1, addresses: tuple[str, ...] = (VIP,),
       ttl: int = 255, authtype: int = 1) -> Packet:  # fmt: skip
    vrrp = VRRP(vrid=vrid, priority=priority, adv=interval, addrlist=list(addresses), authtype=authtype,
                auth1=0x31313131 if authtype == 1 else 0)  # fmt: skip
    return Ether() / IP(src=source, dst=MCAST4, ttl=ttl) / vrrp


def v3(source: str, *, vrid: int = 51, priority: int = 100, centiseconds: int = 100,
       addresses: tuple[str, ...] | None = None, ttl: int = 255, as_v2: bool = False) -> Packet:  # fmt: skip
    """VRRPv3 over IPv4 or IPv6 (by ``source``); scapy sums the RFC pseudo-header, ``as_v2`` leaves it out."""
    six = ":" in source
    if addresses is None:
        addresses = (VIP6,) if six else (VIP,)
    ip = IPv6(src=source, dst=MCAST6, hlim=ttl) if six else IP(src=source, dst=MCAST4, ttl=ttl)
    frame = Ether() / ip / VRRPv3(vrid=vrid, priority=priority, adv=centiseconds, addrlist=list(addresses))
    if as_v2:
        frame[VRRPv3].chksum = 0
        frame[VRRPv3].chksum = checksum(bytes(frame[VRRPv3]))
    return frame


class Segment:
    """A SegmentView and a fake clock; frames go through bytes and back, as from a capture."""

    def __init__(self, **view: Any) -> None:
        self.view = SegmentView(**view)
        self.now = 1000.0

    def hear(self, frame: Packet, at: float | None = None) -> None:
        if at is not None:
            self.now = at
        heard = heard_from_packet(Ether(bytes(frame)), self.now)
        assert heard is not None
        self.view.observe(heard)

    def kinds(self) -> list[FindingKind]:
        return [finding.kind for finding in self.view.findings()]

    def messages(self) -> str:
        return "\n".join(finding.message for finding in self.view.findings())


# -- rows ---------------------------------------------------------------------------------------


def test_v2_row_shows_every_field_and_counts() -> None:
    seg = Segment()
    seg.hear(v2(A, interval=2), at=10.0)
    seg.hear(v2(A, interval=2), at=12.0)
    [row] = seg.view.rows()
    assert (row.vrid, row.family, row.source, row.destination) == (51, 4, IPv4Address(A), IPv4Address(MCAST4))
    assert (row.version, row.priority, row.interval, row.auth_type) == (2, 100, 2.0, 1)
    assert row.addresses == (IPv4Address(VIP),)
    assert (row.first_seen, row.last_seen, row.count, row.checksum) == (10.0, 12.0, 2, Checksum.V2)
    assert seg.view.findings() == []


def test_v3_ipv6_row_and_same_vrid_in_both_families_is_no_conflict() -> None:
    seg = Segment()
    for at in (0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0):
        seg.hear(v3(LL_A), at=at)
        seg.hear(v2(B, priority=90, interval=2), at=at + 0.1)  # VRID 51 over IPv4 is another router
    rows = seg.view.rows()
    assert [(row.family, str(row.source)) for row in rows] == [(4, B), (6, LL_A)]
    six = rows[1]
    assert (six.version, six.interval, six.auth_type, six.checksum) == (3, 1.0, None, Checksum.RFC)
    assert six.addresses == (IPv6Address(VIP6),)
    assert seg.view.findings() == []


def test_vrid_filter_ignores_other_vrids() -> None:
    seg = Segment(vrid=52)
    seg.hear(v2(A, vrid=51))
    seg.hear(v2(B, vrid=52))
    assert [str(row.source) for row in seg.view.rows()] == [B]


# -- two Masters --------------------------------------------------------------------------------


def test_two_masters_are_flagged_once_their_adverts_interleave_often_enough() -> None:
    seg = Segment()
    # A, B, A, B, ...: from the third advert on, each one interleaves with the other source's.
    for number in range(1, CONFLICT_EVENTS + 3):
        source, priority = (A, 100) if number % 2 else (B, 90)
        seg.hear(v2(source, priority=priority), at=number * 0.5)
        flagged = FindingKind.TWO_MASTERS in seg.kinds()
        assert flagged is (number - 2 >= CONFLICT_EVENTS), f"advert {number}"
    [finding] = seg.view.findings()
    assert finding.sources == (IPv4Address(A), IPv4Address(B))
    assert finding.message == (
        f"VRID 51 IPv4: two Masters: {A} (priority 100) and {B} (priority 90) advertise at the same time "
        f"({CONFLICT_EVENTS} interleaved adverts)"
    )


def test_preemption_race_is_not_two_masters() -> None:
    """B is Master; A comes back and preempts; B sends one more advert before it hears A."""
    seg = Segment()
    for at in (0.0, 1.0, 2.0):
        seg.hear(v2(B, priority=90), at=at)
    seg.hear(v2(A), at=2.5)
    seg.hear(v2(B, priority=90), at=2.6)
    for at in (3.5, 4.5, 5.5, 6.5):
        seg.hear(v2(A), at=at)
    assert FindingKind.TWO_MASTERS not in seg.kinds()


def test_failover_and_priority_zero_are_not_two_masters() -> None:
    seg = Segment()
    for at in (0.0, 1.0, 2.0):
        seg.hear(v2(A), at=at)
    seg.hear(v2(A, priority=0), at=2.2)  # A leaves
    for at in (2.3, 3.3, 4.3, 5.3):
        seg.hear(v2(B, priority=90), at=at)
        seg.hear(v2(A, priority=0), at=at + 0.1)  # even repeated, priority 0 is no Master
    assert FindingKind.TWO_MASTERS not in seg.kinds()


# Master_Down_Interval for 1 s v2 adverts and the lowest priority: 3 + 255/256 s.
@pytest.mark.parametrize(("gap", "flagged"), [(3.9, True), (4.0, False)])
def test_same_time_means_within_a_master_down_interval(gap: float, flagged: bool) -> None:
    seg = Segment()
    for at in (0.0, 2 * gap, 4 * gap, 6 * gap, 8 * gap):
        seg.hear(v2(A, interval=1), at=at)
        seg.hear(v2(B, priority=90, interval=1), at=at + gap)
    assert (FindingKind.TWO_MASTERS in seg.kinds()) is flagged


# -- mismatches ---------------------------------------------------------------------------------


def test_different_address_lists_name_every_source_and_list() -> None:
    seg = Segment()
    seg.hear(v2(A, addresses=(VIP, VIP2)))
    seg.hear(v2(B, priority=0, addresses=(VIP2, VIP)))  # same set, other order: fine
    seg.hear(v2(C, priority=80, addresses=(VIP,)))
    [finding] = seg.view.findings()
    assert finding.kind is FindingKind.ADDRESS_MISMATCH
    assert finding.message == (f"VRID 51 IPv4: different address lists: {VIP}, {VIP2} from {A}, {B}; {VIP} from {C}")


def test_different_intervals() -> None:
    seg = Segment()
    seg.hear(v2(A, interval=1))
    seg.hear(v2(B, interval=3, priority=0))
    assert seg.messages() == f"VRID 51 IPv4: different advert intervals: 1 s from {A}; 3 s from {B}"


def test_v2_v3_mismatch_on_one_vrid() -> None:
    seg = Segment()
    seg.hear(v2(A, priority=0))
    seg.hear(v3(B, priority=0))
    assert seg.kinds() == [FindingKind.VERSION_MISMATCH]
    assert seg.messages() == f"VRID 51 IPv4: different VRRP versions: v2 from {A}; v3 from {B}"


def test_checksum_variant_is_detected_and_a_mismatch_flagged() -> None:
    seg = Segment()
    seg.hear(v3(A, priority=0))
    seg.hear(v3(B, priority=0, as_v2=True))
    rows = seg.view.rows()
    assert [row.checksum for row in rows] == [Checksum.RFC, Checksum.AS_V2]
    assert seg.kinds() == [FindingKind.CHECKSUM_MISMATCH]
    assert f"without pseudo-header (v3_checksum_as_v2) from {B}" in seg.messages()


def test_as_v2_on_both_sides_is_consistent() -> None:
    seg = Segment()
    seg.hear(v3(A, priority=0, as_v2=True))
    seg.hear(v3(B, priority=0, as_v2=True))
    assert seg.view.findings() == []


def test_bad_checksum_in_both_rules_is_malformed_and_no_row() -> None:
    seg = Segment()
    frame = v3(A)
    frame[VRRPv3].chksum = 0x1234
    seg.hear(frame)
    seg.hear(frame)
    assert seg.view.rows() == []
    [finding] = seg.view.findings()
    assert finding.kind is FindingKind.MALFORMED
    assert finding.message.startswith(f"VRID 51 IPv4: 2 advert(s) from {A} no peer accepts: bad_checksum")


def test_wrong_ttl_keeps_the_row_and_is_flagged() -> None:
    seg = Segment()
    seg.hear(v2(A, ttl=64))
    seg.hear(v2(A, ttl=255))
    [row] = seg.view.rows()
    assert (row.ttl, row.bad_ttl) == (255, 64)
    assert seg.messages() == f"VRID 51 IPv4: {A} sends with TTL/hop limit 64, not 255: peers drop its adverts"


def test_wrong_hop_limit_ipv6() -> None:
    seg = Segment()
    seg.hear(v3(LL_A, ttl=1))
    assert seg.kinds() == [FindingKind.BAD_TTL]


# -- expectations -------------------------------------------------------------------------------


def test_parse_expect() -> None:
    expected = parse_expect(f"51={A}, {LL_B}")
    assert (expected.vrid, expected.routers) == (51, frozenset({IPv4Address(A), IPv6Address(LL_B)}))
    for bad, reason in [
        ("51", "is not VRID=ADDR"),
        ("x=1.2.3.4", "is not an integer"),
        ("256=1.2.3.4", "outside 1..255"),
        ("51=foo", "'foo' is not an IP address"),
    ]:
        with pytest.raises(ValueError, match=reason):
            parse_expect(bad)


def test_unknown_router_on_an_expected_vrid() -> None:
    seg = Segment(expected=[parse_expect(f"51={A},{B}")])
    seg.hear(v2(A))
    seg.hear(v2(C, priority=0))
    seg.hear(v2(C, vrid=52))  # not ours: anyone may use it
    seg.hear(v3(LL_A))  # no IPv6 router named: IPv6 not checked
    assert seg.messages() == f"VRID 51 IPv4: unknown router {C} (expected {A}, {B}, from --expect)"


def config_with(**overrides: Any) -> Config:
    return Config(path=Path("/etc/hafm.toml"), instances={"VI_1": instance_config(**overrides)})


def test_config_says_which_vrids_are_ours_and_how_they_look() -> None:
    config = config_with(unicast_src_ip=ip_address(A), unicast_peer=(ip_address(B),))  # VIP: 198.51.100.100/24
    [expected] = expectations_from_config(config)
    assert expected == Expected(
        vrid=51,
        family=4,
        routers=frozenset({IPv4Address(A), IPv4Address(B)}),
        origin="VI_1 in /etc/hafm.toml",
        version=2,
        interval=1.0,
        addresses=frozenset({IPv4Address(VIP)}),
        checksum=Checksum.V2,
    )
    seg = Segment(expected=[expected])
    seg.hear(v2(A))
    seg.hear(v2(C, priority=0, interval=2, addresses=(VIP, VIP2)))
    messages = seg.messages()
    assert f"unknown router {C} (expected {A}, {B}, from VI_1 in /etc/hafm.toml)" in messages
    assert (
        f"VRID 51 IPv4: {C} differs from VI_1 in /etc/hafm.toml: interval 2 s, configured 1 s; "
        f"addresses {VIP}, {VIP2}, configured {VIP}" in messages
    )
    assert f"{A} differs" not in messages


def test_an_instance_without_vips_does_not_judge_addresses() -> None:
    [expected] = expectations_from_config(config_with(virtual_ipaddress=()))
    seg = Segment(expected=[expected])
    seg.hear(v2(A))
    assert seg.view.findings() == []


def test_config_checksum_rule_is_checked() -> None:
    [expected] = expectations_from_config(config_with(version=3, v3_checksum_as_v2=True))
    assert expected.checksum is Checksum.AS_V2
    seg = Segment(expected=[expected])
    seg.hear(v3(A))
    assert "checksum rfc, configured as_v2" in seg.messages()


def test_expect_routers_replace_the_configured_ones_for_that_vrid() -> None:
    configured = expectations_from_config(config_with(unicast_src_ip=ip_address(A), unicast_peer=(ip_address(B),)))
    combined = combine([parse_expect(f"51={C}"), parse_expect(f"60={A}")], configured)
    assert [(e.vrid, e.routers) for e in combined] == [
        (51, frozenset({IPv4Address(C)})),
        (60, frozenset({IPv4Address(A)})),
    ]
    assert combined[0].version == 2  # the rest of the configured expectation stays


# -- capture: frames to messages ----------------------------------------------------------------


def test_frame_padding_and_vlan_tags_reach_the_codec_as_sent() -> None:
    seg = Segment()
    padded = Ether(bytes(v3(A)) + b"\0" * 18)  # Ethernet pads short frames to 60 bytes
    tagged = Ether() / Dot1Q(vlan=7) / v2(B, priority=0)[IP]
    for frame in (padded, tagged):
        seg.hear(frame)
    assert [str(row.source) for row in seg.view.rows()] == [A, B]
    assert FindingKind.MALFORMED not in seg.kinds()


def test_truncated_message_is_malformed() -> None:
    seg = Segment()
    raw = bytes(v2(A)[VRRP])[:-4]
    seg.hear(Ether() / IP(src=A, dst=MCAST4, ttl=255, proto=112) / Raw(raw))
    assert seg.kinds() == [FindingKind.MALFORMED]
    assert "bad_length" in seg.messages()


def test_non_vrrp_frames_are_ignored() -> None:
    assert heard_from_packet(Ether(bytes(Ether() / IP(src=A, dst=B) / Raw(b"x"))), 0.0) is None
    assert heard_from_packet(Ether(bytes(Ether() / IPv6(src=LL_A, dst=LL_B) / Raw(b"x"))), 0.0) is None


# -- rendering ----------------------------------------------------------------------------------


def busy_segment() -> Segment:
    seg = Segment()
    seg.hear(v2(A, addresses=tuple(f"198.51.100.{n}" for n in range(100, 120))), at=1.0)
    seg.hear(v2(B, priority=90, ttl=64), at=1.5)
    seg.hear(v3("2001:db8:ffff:ffff:ffff:ffff:ffff:ff01", addresses=(VIP6, "2001:db8::200")), at=2.0)
    seg.hear(v3(LL_A, vrid=7, centiseconds=4095), at=2.5)
    return seg


def test_table_fits_80_columns_and_shows_every_speaker() -> None:
    seg = busy_segment()
    table = render_table(seg.view, now=3.0, interface="eth0", elapsed=2.0)
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= WIDTH, "\n" + table
    assert lines[0] == "hafm watch eth0: 4 speaker(s) in 2.0 s"
    assert lines[1].split() == ["VRID", "VER", "SOURCE", "PRIO", "INTVL", "AUTH", "CKSUM", "SEEN", "COUNT", "ADDRESSES"]
    assert f"  51 v2  {A}" in table and "198.51.100.119" in table and "40.95s" in table
    assert "2001:db8:ffff:ffff:ffff:ffff:ffff:ff01" in table and "2001:db8::200" in table
    assert "! VRID 51 IPv4: different address lists" in table
    assert "! VRID 51 IPv4: 198.51.100.2 sends with TTL/hop limit 64" in table


def test_a_wide_ipv6_source_gets_its_own_line_and_the_vip_stays_on_the_row() -> None:
    seg = Segment()
    seg.hear(v3("fe80::b4dc:a2ff:fea0:93cb", vrid=52, addresses=("2001:db8::52",)), at=1.0)
    seg.hear(v2(A), at=1.0)
    lines = render_table(seg.view, now=2.0, interface="br0", elapsed=1.0).splitlines()
    assert lines[2].split() == ["51", "v2", A, "100", "1s", "pass", "v2", "1.0s", "1", VIP]
    assert lines[3] == "  52 v3  fe80::b4dc:a2ff:fea0:93cb"
    assert lines[4].split() == ["100", "1s", "-", "rfc", "1.0s", "1", "2001:db8::52"]
    assert lines[4].index(" 100 ") == lines[2].index(" 100 "), "columns stay aligned"


def test_table_without_findings_says_so() -> None:
    seg = Segment()
    seg.hear(v2(A), at=1.0)
    table = render_table(seg.view, now=13.0, interface="br0", elapsed=12.0)
    assert table.splitlines()[2].split() == ["51", "v2", A, "100", "1s", "pass", "v2", "12s", "1", VIP]
    assert table.endswith("\nno findings\n")


def test_json_document() -> None:
    seg = busy_segment()
    document = json.loads(json.dumps(render_json(seg.view, now=3.0, interface="eth0", elapsed=2.0)))
    assert (document["schema"], document["interface"], document["vrid"], document["elapsed"]) == (1, "eth0", None, 2.0)
    assert len(document["speakers"]) == 4
    [first] = [speaker for speaker in document["speakers"] if speaker["source"] == A]
    assert first["source"] == A and first["auth_type"] == 1 and first["seen_ago"] == 2.0
    assert {"ttl", "bad_ttl", "checksum", "count", "first_seen", "last_seen", "interval"} <= first.keys()
    kinds = {finding["kind"] for finding in document["findings"]}
    assert kinds == {"address_mismatch", "bad_ttl"}
    assert all(finding["message"] and finding["sources"] for finding in document["findings"])


# -- command line -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--expect", "51=foo"], "hafm: watch: --expect '51=foo': 'foo' is not an IP address"),
        (["--vrid", "0"], "hafm: watch: --vrid 0 is outside 1..255"),
        (["--seconds", "0"], "hafm: watch: --seconds 0 must be more than 0"),
    ],
)
def test_bad_arguments_are_one_line_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["watch", "lo", *argv]) == 1
    assert capsys.readouterr().err == message + "\n"


def test_bad_config_is_reported_not_raised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "hafm.toml"
    config.write_text("[vrrp_instance.VI_1]\npriority = 300\n")
    assert main(["watch", "lo", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert str(config) in err and "Traceback" not in err


def test_scapy_is_not_imported_on_the_daemon_path() -> None:
    code = "import sys, hafm.cli, hafm.watch, hafm.watch.report, hafm.shell.daemon; print('scapy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_docs_name_every_finding_kind_and_json_key() -> None:
    docs = (Path(__file__).parent.parent / "docs" / "watch.md").read_text()
    missing = [f"`{kind.value}`" for kind in FindingKind if f"`{kind.value}`" not in docs]
    document = render_json(busy_segment().view, now=3.0, interface="eth0", elapsed=2.0)
    keys = [*document, *document["speakers"][0], *document["findings"][0]]
    missing += [f"`{key}`/`.{key}`" for key in keys if f"`{key}`" not in docs and f".{key}`" not in docs]
    missing += [
        f"`{c.value}`" for c in Checksum if f"`{c.value}`" not in docs and f"`{c.value.replace('_', '-')}`" not in docs
    ]
    assert not missing, f"docs/watch.md does not describe {missing}"


class FakeListenSocket:
    """Stands in for scapy's L2listen socket: ``frames`` come out of recv() as dissected packets stamped
    with a fixed time, then the user presses Ctrl-C."""

    def __init__(self, frames: list[Packet]) -> None:
        self._reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        for frame in frames:
            writer.send(bytes(frame))
        writer.send(b"")  # the end: Ctrl-C
        writer.close()

    def fileno(self) -> int:
        return self._reader.fileno()

    def recv(self) -> Packet | None:
        data = self._reader.recv(65536)
        if not data:
            raise KeyboardInterrupt
        packet = Ether(data)
        packet.time = 1000.0
        return packet

    def __enter__(self) -> FakeListenSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self._reader.close()


def test_watch_feeds_captured_frames_to_the_view_and_prints_after_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = [v2(A), Ether() / IP(src=A, dst=B) / Raw(b"not vrrp"), v3(LL_A)]
    calls: list[dict[str, Any]] = []

    def listen(**kwargs: Any) -> FakeListenSocket:
        calls.append(kwargs)
        return FakeListenSocket(frames)

    monkeypatch.setattr(capture.conf, "L2listen", listen)
    out = io.StringIO()
    assert capture.watch("eth9", SegmentView(), seconds=None, as_json=True, refresh=3600, out=out) == 0
    assert calls == [{"iface": "eth9", "filter": capture.BPF_FILTER}]
    [line] = out.getvalue().splitlines()
    document = json.loads(line)
    assert [(s["source"], s["count"], s["last_seen"]) for s in document["speakers"]] == [
        (A, 1, 1000.0),
        (LL_A, 1, 1000.0),
    ]


def test_watch_cannot_capture_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def listen(**kwargs: Any) -> FakeListenSocket:
        raise OSError("Interface 'eth9' not found !")

    monkeypatch.setattr(capture.conf, "L2listen", listen)
    with pytest.raises(HafmError, match=r"^watch: cannot capture on 'eth9': Interface 'eth9' not found$"):
        capture.watch("eth9", SegmentView(), seconds=1, as_json=False)


def test_watch_ends_quietly_when_the_reader_goes_away(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(capture.conf, "L2listen", lambda **kwargs: FakeListenSocket([v2(A)]))
    read_end, write_end = os.pipe()
    os.close(read_end)  # `| head -1` has exited
    with open(write_end, "w") as out:
        assert capture.watch("eth9", SegmentView(), seconds=None, as_json=True, refresh=3600, out=out) == 0
