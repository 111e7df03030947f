"""Accept parsing (meao.api.negotiation): media ranges with parameters and q-values (RFC 9110 12.5.1),
as GET …/appd (MEC 010-2 clause 7.3.6.3.2) and GET …/package_content (clause 7.3.7.3.2) need them."""

from __future__ import annotations

import pytest

from meao.api.negotiation import parse_accept, preferred, quality

TEXT, ZIP = "text/plain; charset=utf-8", "application/zip"


@pytest.mark.parametrize("header,media_type,q", [
    (None, ZIP, 1.0),
    ("", ZIP, 1.0),
    ("application/zip", ZIP, 1.0),
    ("application/json", ZIP, 0.0),
    ("text/plain; charset=utf-8", TEXT, 1.0),
    ("text/plain;charset=UTF-8", TEXT, 1.0),
    ('text/plain; charset="utf-8"', TEXT, 1.0),
    ("text/plain", TEXT, 1.0),
    ("text/plain; charset=iso-8859-1", TEXT, 0.0),
    ("TEXT/Plain;q=0.4", TEXT, 0.4),
    ("text/*;q=0.3, */*;q=0.1", TEXT, 0.3),
    ("*/*;q=0.1, text/*;q=0.3", TEXT, 0.3),
    ("application/*", ZIP, 1.0),
    ("*/*", ZIP, 1.0),
    ("*/*;q=0", ZIP, 0.0),
    ("application/zip;q=0, */*", ZIP, 0.0),  # the most specific range wins, q=0 is "not acceptable"
    ("text/plain;q=0, text/plain;charset=utf-8;q=0.7", TEXT, 0.7),
    ("application/zip;q=0.5;ext=1", ZIP, 0.5),  # accept-extensions after the weight are not parameters
    ("application/zip;q=2, text/plain", ZIP, 0.0),  # a malformed element is ignored, not the header
    ("garbage", ZIP, 1.0),  # nothing well formed: the header is ignored (RFC 9110 12.5.1)
])
def test_quality_parses_parameters_and_weights(header: str | None, media_type: str, q: float) -> None:
    assert quality(media_type, header) == q


def test_quoted_parameter_may_hold_a_comma() -> None:
    (only,) = parse_accept('text/plain; note="a, b"; q=0.2')
    assert only.params == {"note": "a, b"} and only.q == 0.2


@pytest.mark.parametrize("header,offers,chosen", [
    ("text/plain; charset=utf-8", [TEXT, ZIP], TEXT),
    ("text/plain, application/zip", [TEXT, ZIP], TEXT),  # a tie: the first offer
    ("text/plain;q=0.5, application/zip", [TEXT, ZIP], ZIP),
    ("text/plain;q=0, */*", [TEXT, ZIP], ZIP),
    ("application/json", [TEXT, ZIP], None),
    ("text/plain", [ZIP], None),
    (None, [ZIP], ZIP),
])
def test_preferred_picks_the_highest_weight(header: str | None, offers: list[str], chosen: str | None) -> None:
    assert preferred(offers, header) == chosen
