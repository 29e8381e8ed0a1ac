"""Tests of the figures of make bench's wire-path overhead (section 3)."""

import math
import os
import socket
import struct
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..',
                                'bench'))
import benchstats  # noqa: E402
import overhead  # noqa: E402
import run  # noqa: E402


def frame(ftype, payload, channel=1):
    return struct.pack('>BHI', ftype, channel, len(payload)) + payload + \
        b'\xce'


def test_mean_ci_is_a_t_interval():
    values = [1.0, 2.0, 3.0, 6.0]
    mean = 3.0
    sd = math.sqrt((4 + 1 + 0 + 9) / 3)
    half = 3.182 * sd / 2  # t(0.975, 3 degrees of freedom)
    assert benchstats.mean_ci(values) == pytest.approx(
        (mean, mean - half, mean + half))
    # Beyond the table: the normal quantile.
    many = [0.0, 1.0] * 20
    _, low, high = benchstats.mean_ci(many)
    assert high - 0.5 == pytest.approx(
        1.96 * math.sqrt(40 / 39 * 0.25) / math.sqrt(40))
    mean, low, high = benchstats.mean_ci([5.0])
    assert mean == 5.0 and math.isnan(low) and math.isnan(high)


def test_paired_summary_takes_the_median_of_differences():
    # The difference of the medians would be 10 - 3 = 7; the pairs say
    # the wire adds 1 or 2.
    pairs = [(1.0, 2.0), (3.0, 5.0), (10.0, 11.0)]
    summary = benchstats.paired_summary(pairs)
    assert summary == {'pairs': 3, 'plain': 3.0, 'wire': 5.0,
                       'delta': 1.0}


def test_paired_summary_ignores_a_preempted_block():
    pairs = [(8.0, 9.0)] * 10 + [(8.0, 900.0), (800.0, 9.0)]
    summary = benchstats.paired_summary(pairs)
    assert summary['delta'] == 1.0
    assert summary['plain'] == 8.0 and summary['wire'] == 9.0


def test_count_frames_counts_whole_frames():
    message = frame(1, b'm' * 40) + frame(2, b'h' * 120) + frame(3, b'')
    assert benchstats.count_frames(message) == 3
    assert benchstats.count_frames(memoryview(message)) == 3
    assert benchstats.count_frames(b'') == 0
    # A payload holding 0xCE bytes does not end a frame early.
    assert benchstats.count_frames(frame(3, b'\xce' * 9)) == 1


def test_count_frames_rejects_partial_or_corrupt_frames():
    with pytest.raises(ValueError):
        benchstats.count_frames(frame(1, b'x' * 10)[:-1])
    with pytest.raises(ValueError):
        benchstats.count_frames(frame(1, b'x')[:5])
    with pytest.raises(ValueError):
        benchstats.count_frames(frame(1, b'x')[:-1] + b'\x00')


CALLGRIND = """# callgrind format
version: 1
creator: callgrind-3.19.0
pid: 1234
cmd:  python wirebench.py --callgrind 3
part: 7

desc: I1 cache:
desc: Trigger: --dump-before=getppid

positions: line
events: Ir Dr
summary: 196082 5000
totals: 196082 5000

fl=(1) ceval.c
fn=(1) _PyEval_EvalFrameDefault
0 1000 30
"""


def test_callgrind_part_reads_part_and_totals():
    part, events = benchstats.callgrind_part(CALLGRIND)
    assert part == 7
    assert events == {'Ir': 196082, 'Dr': 5000}


def test_callgrind_part_reads_totals_without_summary():
    text = CALLGRIND.replace('summary: 196082 5000\n', '')
    assert benchstats.callgrind_part(text)[1] == {'Ir': 196082, 'Dr': 5000}
    text = CALLGRIND.replace('totals: 196082 5000\n', '')
    assert benchstats.callgrind_part(text)[1] == {'Ir': 196082, 'Dr': 5000}


def test_callgrind_part_of_a_single_dump_is_part_one():
    text = CALLGRIND.replace('part: 7\n', '')
    assert benchstats.callgrind_part(text)[0] == 1


def test_callgrind_part_rejects_other_files():
    with pytest.raises(ValueError):
        benchstats.callgrind_part('hello\n')
    with pytest.raises(ValueError):
        benchstats.callgrind_part('events: Ir\nfn=main\n')


def test_instruction_slopes_cancel_the_fixed_cost():
    # 1000 instructions of markers and loop, 300 per operation.
    blocks = [(16, 1000 + 16 * 300), (32, 1000 + 32 * 300),
              (16, 1010 + 16 * 300), (32, 1000 + 32 * 301)]
    assert benchstats.instruction_slopes(blocks) == pytest.approx(
        [300.0, (32 * 301 - 16 * 300 - 10) / 16])


def test_instruction_slopes_want_pairs_small_then_large():
    with pytest.raises(ValueError):
        benchstats.instruction_slopes([(16, 100)])
    with pytest.raises(ValueError):
        benchstats.instruction_slopes([(32, 200), (16, 100)])


def test_callgrind_blocks_match_labels_to_parts():
    labels = [None, ['tcp-write', 'plain', 16], None,
              ['tcp-write', 'plain', 32], None, ['ensure', 'wire', 8], None]
    totals = {1: 9999, 2: 160, 3: 5, 4: 320, 5: 5, 6: 80, 7: 1}
    assert benchstats.callgrind_blocks(labels, totals) == {
        ('tcp-write', 'plain'): [(16, 160), (32, 320)],
        ('ensure', 'wire'): [(8, 80)]}
    del totals[7]
    with pytest.raises(ValueError):
        benchstats.callgrind_blocks(labels, totals)


def test_difference_leaves_connections_out_and_counts_new_roles():
    before = {'server listener': {'connections': 1, 'ensure': 57,
                                  'writes': 32}}
    after = {'server listener': {'connections': 1, 'ensure': 251,
                                 'writes': 132},
             'server reply publisher': {'connections': 1, 'writes': 100}}
    assert benchstats.difference(after, before) == {
        'server listener': {'ensure': 194, 'writes': 100},
        'server reply publisher': {'writes': 100}}


def test_per_call_divides_every_count():
    assert benchstats.per_call({'a': {'writes': 200, 'ensure': 444}},
                               200) == {'a': {'writes': 1.0,
                                              'ensure': 2.22}}


ROLES = {'client publisher': {'ensure': 1.0, 'writes': 1.0,
                              'frames_written': 3.0, 'tls_reads': 4.0,
                              'ssl_read_attempts': 4.5},
         'client reply listener': {'ensure': 2.5, 'writes': 1.0,
                                   'tls_reads': 10.5,
                                   'ssl_read_attempts': 11.3}}


def test_operations_per_call_over_tcp_leave_reads_out():
    assert benchstats.operations_per_call(ROLES, tls=False) == {
        'tcp-write': 2.0, 'ensure': 3.5}


def test_operations_per_call_over_tls_count_ssl_read_attempts():
    ops = benchstats.operations_per_call(ROLES, tls=True)
    assert ops == pytest.approx({'tls-write': 2.0, 'ensure': 3.5,
                                 'tls-read': 15.8})


def test_added_per_call_sums_operations_times_cost():
    assert benchstats.added_per_call(
        {'tcp-write': 4, 'ensure': 6.5}, {'tcp-write': 1.5, 'ensure': 3.0,
                                          'tls-read': 0.3}) == 25.5
    # A case that a call never makes needs no measurement.
    assert benchstats.added_per_call({'tls-read': 0, 'ensure': 2},
                                     {'ensure': 3.0}) == 6.0


def test_added_per_call_refuses_an_unmeasured_operation():
    with pytest.raises(KeyError):
        benchstats.added_per_call({'tls-read': 30, 'ensure': 2},
                                  {'ensure': 3.0})


def wire_results(deltas_by_process, callgrind=None):
    micro = [{case: {'pairs': 10, 'plain': 5e-6, 'wire': 5e-6 + delta,
                     'delta': delta, 'block': 16}
              for case, delta in deltas.items()}
             for deltas in deltas_by_process]
    counts = {'tcp': {'calls': 100, 'seconds_per_call': 0.004, 'per_call': {
        'client publisher': {'ensure': 1.0, 'writes': 1.0}}},
        'tls': {'calls': 100, 'seconds_per_call': 0.005, 'per_call': {
            'client publisher': {'ensure': 1.0, 'writes': 2.0,
                                 'ssl_read_attempts': 10.0}}}}
    return {'counts': counts, 'micro': micro,
            'callgrind': callgrind or {}, 'pyperf_json': 'x.json',
            'seconds': 1.0}


def test_analyse_bounds_each_process_then_takes_the_interval():
    processes = [
        {'tcp-write': 1e-6, 'tls-write': 2e-6, 'tls-read': 0.1e-6,
         'ensure': 3e-6},
        {'tcp-write': 2e-6, 'tls-write': 2e-6, 'tls-read': 0.3e-6,
         'ensure': 5e-6}]
    figures = overhead.analyse(wire_results(processes), (0.002, 'test'))
    # TCP: 1 write + 1 ensure per call: 4 us and 7 us in the processes.
    tcp = figures['bounds']['tcp']
    assert tcp['operations'] == {'tcp-write': 1.0, 'ensure': 1.0}
    assert tcp['added_ns'] == pytest.approx(benchstats.mean_ci(
        [4000.0, 7000.0]))
    assert tcp['fraction'] == pytest.approx(
        tuple(x * 1e-9 / 0.002 for x in tcp['added_ns']))
    # TLS: 2 writes, 10 reads, 1 ensure: 8 us and 12 us.
    tls = figures['bounds']['tls']
    assert tls['added_ns'][0] == pytest.approx(10000.0)
    assert figures['per_op']['ensure']['delta_ns'][0] == pytest.approx(
        4000.0)
    assert 'added_instr' not in tcp  # no callgrind figures given
    assert 'fraction_cpu' not in tcp  # no CPU time of a call given


def test_analyse_bounds_cpu_by_the_cpu_time_of_a_call():
    processes = [{'tcp-write': 1e-6, 'tls-write': 2e-6, 'tls-read': 1e-7,
                  'ensure': 3e-6}] * 2
    figures = overhead.analyse(wire_results(processes), (0.020, 'test'),
                               call_cpu=0.004)
    tcp = figures['bounds']['tcp']
    assert tcp['fraction_cpu'][0] == pytest.approx(4e-6 / 0.004)
    assert tcp['fraction'][0] == pytest.approx(4e-6 / 0.020)


def test_analyse_adds_instructions_when_callgrind_ran():
    processes = [{'tcp-write': 1e-6, 'tls-write': 2e-6, 'tls-read': 1e-7,
                  'ensure': 3e-6}] * 2
    callgrind = {case: {'plain': [1000.0, 1002.0], 'wire': [1300.0, 1298.0]}
                 for case in overhead.CASES}
    figures = overhead.analyse(wire_results(processes, callgrind),
                               (0.002, 'test'))
    assert figures['per_op']['tcp-write']['delta_instr'] == pytest.approx(
        (298.0, 296.0, 300.0))
    assert figures['bounds']['tcp']['added_instr'] == pytest.approx(596.0)
    assert figures['bounds']['tls']['added_instr'] == pytest.approx(
        298.0 * 13)
    assert 'fraction_instr' not in figures['bounds']['tcp']


def test_analyse_bounds_instructions_by_those_of_a_call():
    processes = [{'tcp-write': 1e-6, 'tls-write': 2e-6, 'tls-read': 1e-7,
                  'ensure': 3e-6}] * 2
    callgrind = {case: {'plain': [1000.0], 'wire': [1300.0]}
                 for case in overhead.CASES}
    wire = wire_results(processes, callgrind)
    wire['call_instructions'] = {'calls': 50, 'client': 20000.0,
                                 'server': 40000.0}
    figures = overhead.analyse(wire, (0.002, 'test'))
    assert figures['call_instructions'] == 60000.0
    assert figures['bounds']['tcp']['fraction_instr'] == pytest.approx(
        600.0 / 60000.0)


def test_free_port_leaves_the_tls_and_distribution_ports_free():
    port = run.free_port()
    for offset in (0, 1, 20000):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', port + offset))


def test_free_port_skips_a_port_whose_tls_port_is_taken():
    with socket.socket() as taken:
        taken.bind(('127.0.0.1', 0))
        busy = taken.getsockname()[1]
        good = run.free_port(also=(1,), candidates=[
            p for p in run.ephemeral_ports(20) if abs(p - busy) > 1])
        assert run.free_port(also=(1,), candidates=[busy - 1, good]) == good
        assert run.free_port(also=(), candidates=[busy, good]) == good
