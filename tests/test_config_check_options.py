"""Check-type options that passed check-config and then misbehaved: the built-in validators refuse them."""

from __future__ import annotations

import pytest

from hafm_plugins import check_http

URL = "http://127.0.0.1:8080/"


def test_a_huge_status_range_is_refused_by_its_bounds_without_expanding_it() -> None:
    # Expanded, this range was a list of 400 million ints (1.9 GB) and the message named 600.
    problems = check_http.validate({"url": URL, "expect_status": "100-400000000"})
    assert problems == [("expect_status", "400000000 is not an HTTP status code (100..599)")]


def test_status_ranges_are_kept_as_ranges_and_still_match() -> None:
    accepted = check_http.parse_status([204, "200-299", "301"])
    assert accepted == (range(204, 205), range(200, 300), range(301, 302))
    assert [code for code in (199, 200, 250, 299, 300, 301, 302) if any(code in r for r in accepted)] == [
        200,
        250,
        299,
        301,
    ]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("299-200", "'299-200' is an empty range"),
        ("200-", "'200-' is not a status code or a range like \"200-299\""),
        (99, "99 is not an HTTP status code (100..599)"),
        ([200, "50-60"], "50 is not an HTTP status code (100..599)"),
        ("9" * 5000, f"'{'9' * 5000}' is not a status code or a range like \"200-299\""),
    ],
)
def test_bad_status_specs(spec: object, message: str) -> None:
    assert check_http.validate({"url": URL, "expect_status": spec}) == [("expect_status", message)]


@pytest.mark.parametrize("source", ["eth0", "127.0.0.1/8", 5, ["127.0.0.1"], ""])
def test_source_address_must_be_an_ip_address(source: object) -> None:
    assert check_http.validate({"url": URL, "source_address": source}) == [
        ("source_address", f"{source!r} is not an IP address")
    ]


@pytest.mark.parametrize("source", ["127.0.0.2", "::1"])
def test_source_address_accepts_addresses(source: str) -> None:
    assert check_http.validate({"url": URL, "source_address": source}) == []
