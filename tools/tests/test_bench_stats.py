"""Tests of the pure helpers behind bench/'s figures."""

import math
import os
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..',
                                'bench'))
import amqp_proxy  # noqa: E402
import benchstats  # noqa: E402

STATUS = """Name:\tpython
State:\tS (sleeping)
Threads:\t3
voluntary_ctxt_switches:\t150
nonvoluntary_ctxt_switches:\t7
"""


def test_ctxt_switches_adds_voluntary_and_nonvoluntary():
    assert benchstats.ctxt_switches(STATUS) == 157
    assert benchstats.ctxt_switches('Name:\tx\n') == 0


def test_tick_is_threshold_over_rate_over_two():
    assert benchstats.tick(60, 3) == 10.0
    assert benchstats.tick(30, 3) == 5.0


def test_ratio_ci_of_identical_ratios_is_a_point():
    mean, low, high = benchstats.ratio_ci([1.02] * 5)
    assert mean == pytest.approx(1.02)
    assert (low, high) == pytest.approx((1.02, 1.02))


def test_ratio_ci_is_a_t_interval_on_logarithms():
    ratios = [0.9, 1.0, 1.1, 1.0]
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / 4
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 3)
    half = 3.182 * sd / 2  # t(0.975, 3 degrees of freedom)
    assert benchstats.ratio_ci(ratios) == pytest.approx(
        (math.exp(mean), math.exp(mean - half), math.exp(mean + half)))
    # Symmetric in the direction of the ratio.
    mean2, low2, high2 = benchstats.ratio_ci([1 / r for r in ratios])
    assert (mean2, low2, high2) == pytest.approx(
        (1 / math.exp(mean), 1 / math.exp(mean + half),
         1 / math.exp(mean - half)))


def test_ratio_ci_beyond_the_table_uses_the_normal_quantile():
    ratios = [1.0, 1.1] * 20
    _, low, high = benchstats.ratio_ci(ratios)
    logs = [math.log(r) for r in ratios]
    mean = sum(logs) / 40
    sd = math.sqrt(sum((x - mean) ** 2 for x in logs) / 39)
    assert math.log(high) - mean == pytest.approx(1.96 * sd / math.sqrt(40))


def test_told_apart_only_when_the_interval_excludes_one():
    assert not benchstats.told_apart(0.99, 1.01)
    assert not benchstats.told_apart(1.0, 1.02)
    assert benchstats.told_apart(1.001, 1.02)
    assert benchstats.told_apart(0.95, 0.999)


def ip_tcp(sport, dport, data, options=b''):
    tcp = struct.pack('>HHIIBBHHH', sport, dport, 0, 0,
                      (20 + len(options)) // 4 << 4, 0x18, 0, 0, 0)
    tcp += options + data
    ip = struct.pack('>BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 0, 0, 64, 6,
                     0, b'\x7f\0\0\x01', b'\x7f\0\0\x01')
    return ip + tcp


def test_tcp_data_segment_reads_ports_and_data_length():
    heartbeat = b'\x08\x00\x00\x00\x00\x00\x00\xce'
    assert amqp_proxy.tcp_data_segment(
        ip_tcp(40000, 5672, heartbeat)) == (40000, 5672, 8)
    # TCP options (timestamps) are not data; a bare ACK has none.
    assert amqp_proxy.tcp_data_segment(
        ip_tcp(40000, 5672, heartbeat, options=b'\x01' * 12)) == (
            40000, 5672, 8)
    assert amqp_proxy.tcp_data_segment(ip_tcp(5672, 40000, b'')) == (
        5672, 40000, 0)


def test_tcp_data_segment_ignores_other_packets():
    udp = bytearray(ip_tcp(1, 2, b'x'))
    udp[9] = 17
    assert amqp_proxy.tcp_data_segment(bytes(udp)) is None
    assert amqp_proxy.tcp_data_segment(b'\x60' + b'\0' * 39) is None  # IPv6
    assert amqp_proxy.tcp_data_segment(b'\x45\0') is None


def test_largest_gap_over_unsorted_times_and_empty_windows():
    assert amqp_proxy.largest_gap([30.0, 12.0, 22.0], 10.0, 50.0) == 20.0
    assert amqp_proxy.largest_gap([], 0.0, 20.0) == 20.0
    assert amqp_proxy.largest_gap([5.0, 25.0], 10.0, 20.0) == 10.0
