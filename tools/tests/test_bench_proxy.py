"""Tests of the frame clock behind bench/'s punctuality figures."""

import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..',
                                'bench'))
import amqp_proxy  # noqa: E402

HEADER = b'AMQP\x00\x00\x09\x01'
HEARTBEAT = b'\x08\x00\x00\x00\x00\x00\x00\xce'


def frame(ftype, payload, channel=1):
    return struct.pack('>BHI', ftype, channel, len(payload)) + payload + \
        b'\xce'


def test_frames_are_timed_when_their_last_byte_arrives():
    clock = amqp_proxy.FrameClock()
    method = frame(1, b'x' * 20)
    clock.feed(HEADER + method[:10], now=1.0)
    assert clock.frames == []
    clock.feed(method[10:] + HEARTBEAT[:3], now=2.0)
    assert clock.frames == [(2.0, 1)]
    clock.feed(HEARTBEAT[3:], now=3.0)
    assert clock.frames == [(2.0, 1), (3.0, 8)]


def test_largest_gap_counts_the_edges_of_the_window():
    clock = amqp_proxy.FrameClock()
    clock.feed(HEADER, now=0.0)
    for t in (12.0, 22.0, 30.0):
        clock.feed(HEARTBEAT, now=t)
    assert clock.largest_gap(10.0, 50.0) == 20.0  # 30 -> 50
    assert clock.largest_gap(10.0, 31.0) == 10.0  # 12 -> 22
    assert amqp_proxy.FrameClock().largest_gap(0.0, 60.0) == 60.0


def test_corrupt_stream_is_reported():
    clock = amqp_proxy.FrameClock()
    with pytest.raises(ValueError):
        clock.feed(HEADER + HEARTBEAT[:-1] + b'\x00', now=1.0)
