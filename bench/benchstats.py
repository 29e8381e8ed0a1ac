"""Pure helpers of ``make bench``: parsing /proc, ticks, confidence intervals.

Standard library only: imported by run.py and by workloads.py inside each
virtualenv.
"""

import math
import statistics

# Two-sided 95 % quantiles of Student's t, by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447,
       7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179,
       13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101,
       19: 2.093, 20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064,
       25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048, 29: 2.045, 30: 2.042}


def ctxt_switches(status_text):
    """voluntary + nonvoluntary context switches of one /proc/.../status."""
    total = 0
    for line in status_text.splitlines():
        key, _, value = line.partition(':')
        if key in ('voluntary_ctxt_switches', 'nonvoluntary_ctxt_switches'):
            total += int(value)
    return total


def tick(heartbeat_timeout_threshold, heartbeat_rate):
    """Heartbeat period of the driver: threshold / rate / 2 seconds."""
    return float(heartbeat_timeout_threshold) / heartbeat_rate / 2.0


def ratio_ci(ratios):
    """Geometric mean and 95 % t-interval of per-round ratios.

    The interval is computed on the logarithms (ratios are multiplicative)
    and mapped back; returns (mean, low, high).
    """
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), float('nan'), float('nan')
    half = T95.get(len(logs) - 1, 1.96) * statistics.stdev(logs) / math.sqrt(
        len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def told_apart(low, high):
    """False when the interval [low, high] of a ratio contains 1.0."""
    return not low <= 1.0 <= high


def mean_ci(values):
    """Mean and 95 % t-interval of values; returns (mean, low, high)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float('nan'), float('nan')
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(
        values) / math.sqrt(len(values))
    return mean, mean - half, mean + half


def paired_summary(pairs):
    """Medians of (plain, wire) per-operation times and of their differences.

    The pairs are blocks of operations timed back to back: a difference
    taken within a pair cancels what the machine's load did to both.
    Medians, not means: a block that another process preempted takes ten
    times as long, whichever variant it ran.
    """
    return {'pairs': len(pairs),
            'plain': statistics.median(p for p, _ in pairs),
            'wire': statistics.median(w for _, w in pairs),
            'delta': statistics.median(w - p for p, w in pairs)}


def count_frames(data):
    """Number of AMQP frames in data, which must hold whole frames.

    A frame is type (1 byte), channel (2), payload size (4), the payload
    and the frame-end byte 0xCE.
    """
    data = bytes(data)
    count = offset = 0
    while offset < len(data):
        if offset + 7 > len(data):
            raise ValueError('partial frame header at byte %d' % offset)
        size = int.from_bytes(data[offset + 3:offset + 7], 'big')
        end = offset + 7 + size
        if end >= len(data) or data[end] != 0xCE:
            raise ValueError('frame at byte %d: no frame end after %d '
                             'bytes of payload' % (offset, size))
        offset = end + 1
        count += 1
    return count


def callgrind_part(text):
    """(part number, {event: count}) of one callgrind output file."""
    part, events, totals = 1, None, None
    for line in text.splitlines():
        key, _, value = line.partition(':')
        if key == 'part':
            part = int(value)
        elif key == 'events':
            events = value.split()
        elif key in ('totals', 'summary') and totals is None:
            totals = [int(v) for v in value.split()]
    if events is None or totals is None:
        raise ValueError('not a callgrind output file: no events/totals')
    return part, dict(zip(events, totals))


def instruction_slopes(blocks):
    """Instructions per operation, from blocks of n then 2n operations.

    blocks: [(operations, instructions), ...] in the order they ran,
    pairs of a block of n and one of 2n operations.  Each block also
    counts a fixed cost (the markers, setting up the loop): the
    difference within a pair, over n, is the cost of n operations alone.
    Returns one figure per pair.
    """
    if len(blocks) % 2:
        raise ValueError('blocks come in pairs, got %d' % len(blocks))
    slopes = []
    for (small, low), (large, high) in zip(blocks[::2], blocks[1::2]):
        if large <= small:
            raise ValueError('a pair needs a larger second block: %d, %d'
                             % (small, large))
        slopes.append((high - low) / (large - small))
    return slopes


def callgrind_blocks(labels, totals):
    """Instructions of each labelled block, by (case, variant).

    labels: for each part callgrind dumped, in order, [case, variant,
    operations] or None (not a block); totals: {part number (from 1):
    instructions}.  Returns {(case, variant): [(operations,
    instructions), ...]} in the order the blocks ran.
    """
    if sorted(totals) != list(range(1, len(labels) + 1)):
        raise ValueError('%d labels but callgrind parts %s'
                         % (len(labels), sorted(totals)))
    blocks = {}
    for part, label in enumerate(labels, 1):
        if label:
            case, variant, ops = label
            blocks.setdefault((case, variant), []).append(
                (ops, totals[part]))
    return blocks


def added_per_call(counts, deltas):
    """Added cost of one call: sum of operations per call x cost of each.

    counts: {case: operations per call}; deltas: {case: added cost of one
    operation}.  A case counted but not measured is an error: the bound
    would silently leave it out.
    """
    missing = [case for case, n in counts.items()
               if n and case not in deltas]
    if missing:
        raise KeyError('no measured cost for %s' % ', '.join(missing))
    return sum(n * deltas[case] for case, n in counts.items() if n)


def difference(after, before):
    """Counts by role between two snapshots {role: {name: count}}.

    'connections' (how many a role has, not a count of operations) is
    left out; a role or name missing before counts from 0.
    """
    return {role: {name: count - before.get(role, {}).get(name, 0)
                   for name, count in counts.items()
                   if name != 'connections'}
            for role, counts in after.items()}


def per_call(counts, calls):
    """{role: {name: count}} of `calls` calls, as counts per call."""
    return {role: {name: value / calls for name, value in names.items()}
            for role, names in counts.items()}


def operations_per_call(roles, tls):
    """Operations of each microbenchmark case that one RPC call makes.

    roles: {role: {name: per call}} from bench/wirecount.py, over TCP or
    TLS.  Writes go through Wire._write; over TLS, each SSL_read attempt
    (Wire._tls_read takes the wire lock for each, a read that waits for
    data makes two or more) counts as one tls-read operation; over TCP
    reads are not wrapped.  Every ensure() of a connection with the option
    on does the wire's hand-over.
    """
    total = {}
    for names in roles.values():
        for name, value in names.items():
            total[name] = total.get(name, 0) + value
    ops = {('tls-write' if tls else 'tcp-write'): total.get('writes', 0),
           'ensure': total.get('ensure', 0)}
    if tls:
        ops['tls-read'] = total.get('ssl_read_attempts', 0)
    return ops
