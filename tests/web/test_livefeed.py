"""H.264 helpers of the live relay's camera feeds (pure functions, no network)."""

from __future__ import annotations

from gtvision.web.h264rtp import nal_units, parameter_sets, with_parameter_sets


def test_keyframes_get_parameter_sets_in_front_of_the_picture() -> None:
    sps, pps, idr, aud, sei = b"\x67\x42", b"\x68\xce", b"\x65\x88\x84", b"\x09\xf0", b"\x06\x05"
    sets = parameter_sets(nal_units(b"\x00\x00\x00\x01" + sps + b"\x00\x00\x01" + pps))
    assert nal_units(sets) == [sps, pps]
    bare = b"\x00\x00\x00\x01" + sei + b"\x00\x00\x01" + idr
    assert nal_units(with_parameter_sets(bare, sets)) == [sps, pps, sei, idr]
    with_aud = b"\x00\x00\x00\x01" + aud + b"\x00\x00\x00\x01" + idr
    assert nal_units(with_parameter_sets(with_aud, sets)) == [aud, sps, pps, idr]  # AUD first
    own = b"\x00\x00\x00\x01" + sps + b"\x00\x00\x00\x01" + pps + b"\x00\x00\x01" + idr
    assert with_parameter_sets(own, sets) == own  # already has them
    assert with_parameter_sets(bare, b"") == bare  # nothing known yet
