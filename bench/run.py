#!/usr/bin/env python3
"""``make bench``: heartbeat_in_pthread designs against pristine upstream.

Variants, side by side in one run:

1. pristine upstream, the pinned version of the series (SERIES, see
   series.layout; 18.3.1 for the default series) from the package index;
2. the fork (its current wheel), option off;
3. the per-connection design, option on: one native thread per
   connection, the wheel built from the series committed at
   PER_CONNECTION_REV (the default series only: a series other than
   the default one, the backport, skips it);
4. the fork, option on: one shared native thread per process.

Measured (workloads.py runs in each variant's virtualenv):

* connections, for each of COUNTS, in an eventlet-patched process of each
  variant (the four run in parallel, phases in step): the process opens
  N impl_rabbit Connections (heartbeat_timeout_threshold HEARTBEAT, so a
  tick of HEARTBEAT / heartbeat_rate / 2 s), then reports
  - OS threads (/proc/self/task) before the connections and with them,
    and RSS;
  - CPU seconds (getrusage, all threads) and wake-ups per minute over an
    IDLE s window with the hub running; a wake-up is a context switch
    (voluntary + nonvoluntary) of any thread of the process, read from
    /proc/self/task/*/status;
  - the largest gap between client frames of any connection while the
    main OS thread is blocked without yielding for STALL_TICKS ticks:
    from the frame-parsing proxy (amqp_proxy.AmqpProxy) up to PROXY_MAX
    connections, above it from TCP segments seen on the loopback
    interface (amqp_proxy.WireClock, root only);
  - time to close every connection and clean the transport up, and the
    OS threads left above the baseline at once and after 1 s;
* RPC call, eventlet and threading executors: for each variant and
  executor a server process and a client process, started once; then
  RPC_ROUNDS rounds in which the four variants' clients make calls for
  the same RPC_BLOCK seconds at the same time, so that they share
  whatever load the machine has (one after the other, the load changes
  between them: per-round ratios then spread by 20 % on a busy machine).
  Per round and variant: calls/s, p50/p99 latency and CPU time per call
  of each process (getrusage of the whole process around the timed
  calls; the server's read through an RPC call before and after).  The
  ratios (option on / option off, fork / pristine) are given as the
  geometric mean and 95 % t-interval of the per-round ratios, with
  "cannot be told apart" when the interval holds 1.0.  The RPC processes
  run at nice RPC_NICE when we may (root), ahead of other load.

* the overhead of the wire path (overhead.py): what the option adds to
  each write, TLS read and ensure() of a connection, by microbenchmarks
  on the real transports (time, and instructions under callgrind), times
  the operations one RPC call makes, over the time of a call: a bound on
  the option's cost per call that resolves well below 1 %, next to the
  end-to-end ratio of the RPC rounds.

Prints figures with the issue's targets next to them; asserts nothing.
Results also go to build/bench.json.  The private broker (pifpaf) gets a
free port, a TLS listener on the next one and the node name
$BENCH_NODENAME (default bench-PID).

    bench/run.py [--fork-rev REV] [--per-connection-rev REV]
                 [--counts 1,10,100] [--rounds N] [--build-dir DIR]
                 [--sections connections,rpc,wire]
    bench/run.py --report [--build-dir DIR]

--fork-rev builds the "fork" wheel from the patches committed at REV
instead of build/oslo.messaging (the live tree).
"""

import argparse
import json
import os
import queue
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
WORKLOADS = os.path.join(ROOT, 'bench', 'workloads.py')
sys.path.insert(0, os.path.join(ROOT, 'bench'))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import amqp_proxy  # noqa: E402
import benchstats  # noqa: E402
import overhead  # noqa: E402
import series  # noqa: E402

LAYOUT = series.layout_or_exit('bench')  # $SERIES
CONSTRAINTS = LAYOUT.constraints
VERSION = LAYOUT.pin['version']  # of pristine upstream

# The last series with one native heartbeat thread per connection.
PER_CONNECTION_REV = 'bc9e521d95168c39da0a51adb45c571af097fd84'

COUNTS = (1, 10, 100, 1000)
HEARTBEAT = 30         # heartbeat_timeout_threshold of the connection runs
IDLE = 30              # seconds of idle window
STALL_TICKS = 4        # stalled hub, in ticks
PROXY_MAX = 100        # above: WireClock instead of the proxy
RPC_ROUNDS = 50        # rounds of the RPC comparison (round 0 warms up, extra)
RPC_BLOCK = 2.0        # seconds of calls per round and variant
RPC_NICE = -10         # priority of the RPC processes over the machine's load
SECTIONS = ('connections', 'rpc', 'wire')
# Pinned in constraints.txt, as everything else.
PYPERF = 'pyperf'

# (label, virtualenv, heartbeat_in_pthread)
PRISTINE = ('pristine %s' % VERSION, 'bench-pristine', '-')
OFF = ('fork, option off', 'bench-fork', 'off')
PER_CONN = ('per-connection, on', 'bench-perconn', 'on')
SHARED = ('shared thread, on', 'bench-fork', 'on')
VARIANTS = [PRISTINE, OFF, PER_CONN, SHARED]
# RPC ratios: (numerator, denominator)
COMPARISONS = [(OFF, PRISTINE), (PER_CONN, OFF), (SHARED, OFF)]
# The landed per-connection design was built on the default series; a
# backport is measured without it.
if LAYOUT.name:
    VARIANTS.remove(PER_CONN)
    COMPARISONS.remove((PER_CONN, OFF))


class Workload:
    """One workloads.py process; its output is read by a thread."""

    def __init__(self, build, variant, name, url, *args, nice=0):
        _, venv, option = variant
        self.proc = subprocess.Popen(
            [os.path.join(build, venv, 'bin', 'python'), WORKLOADS, name,
             url or os.environ['BENCH_URL'], option] + [str(a) for a in args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, PYTHONWARNINGS='ignore'), cwd=build,
            preexec_fn=lambda: renice(nice))
        self.lines = []
        self.ready = threading.Event()
        self.results = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith('READY'):
                self.ready.set()
            elif line.startswith('RESULT '):
                self.results.put(json.loads(line[len('RESULT '):]))
        self.ready.set()
        self.results.put(None)

    def send(self, command):
        self.proc.stdin.write('%s\n' % command)
        self.proc.stdin.flush()

    def result(self, required=True):
        """The next RESULT line's data (None if it failed, not required)."""
        result = self.results.get()
        if result is None and required:
            sys.exit('bench: workload %s failed:\n%s'
                     % (self.proc.args[2:], self.error()))
        return result

    def error(self):
        return ''.join(self.lines)[-3000:]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        self.reader.join()


def renice(increment):
    try:
        os.nice(increment)
    except OSError:
        pass  # not root: the machine's load disturbs us a little more


def broker_port():
    return urllib.parse.urlsplit(os.environ['BENCH_URL']).port


def free_port(also=(1, 20000), candidates=None):
    """A port free on loopback, with port + each of also free too.

    The broker listens on port (AMQP) and port + 1 (TLS); RabbitMQ takes
    port + 20000 for Erlang distribution.  candidates: ports to try
    (default: a hundred the kernel hands out as free).
    """
    for port in candidates or ephemeral_ports(100):
        if port + max(also, default=0) > 65535:
            continue
        try:
            for offset in (0,) + tuple(also):
                with socket.socket() as probe:
                    probe.bind(('127.0.0.1', port + offset))
        except OSError:
            continue
        return port
    sys.exit('bench: no free port for the broker')


def ephemeral_ports(count):
    for _ in range(count):
        with socket.socket() as probe:
            probe.bind(('127.0.0.1', 0))
            port = probe.getsockname()[1]
        yield port


def connections(build, count):
    tick = benchstats.tick(HEARTBEAT, 3)  # heartbeat_rate: its default
    stall = STALL_TICKS * tick
    url = os.environ['BENCH_URL']
    proxied = count <= PROXY_MAX
    method = 'proxy' if proxied else 'wire'
    print('bench: %d connection(s) x %d variants: %d s idle, %d s stall '
          '(gaps from the %s)' % (count, len(VARIANTS), IDLE, stall, method),
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        go = os.path.join(tmp, 'go')
        clocks = [amqp_proxy.AmqpProxy(broker_port()) if proxied else None
                  for _ in VARIANTS]
        runs = [Workload(build, v, 'conns', url.replace(
            ':%d/' % broker_port(), ':%d/' % c.port) if c else url, count,
            IDLE, stall, HEARTBEAT, go) for v, c in zip(VARIANTS, clocks)]
        for run in runs:
            run.ready.wait()
        wire = None
        if not proxied:
            try:
                wire = amqp_proxy.WireClock(broker_port())
            except PermissionError:  # packet sockets need root
                method = 'n/a'
        open(go, 'w').close()
        results = [run.result(required=False) for run in runs]
        for run in runs:
            run.stop()
    rows = []
    for (label, _, _), clock, result, run in zip(VARIANTS, clocks, results,
                                                 runs):
        if result is None:  # e.g. a limit of the machine: say which
            error = run.error().strip().splitlines() or ['no output']
            print('bench: %s, %d connections failed:\n%s'
                  % (label, count, run.error()), flush=True)
            rows.append({'variant': label, 'connections': count,
                         'error': error[-1]})
            continue
        start, end = result.pop('stall_start'), result.pop('stall_end')
        ports = result.pop('ports')
        gap = None
        if clock:
            gap = max(c.largest_gap(start, end) for c in clock.clocks)
        elif wire:
            gap = wire.largest_gap(ports, start, end)
        rows.append(dict(result, variant=label, connections=count,
                         largest_gap_s=gap, gap_method=method,
                         stall_s=end - start))
    for closable in clocks + [wire]:
        if closable:
            closable.close()
    return rows


def rpc(build, rounds):
    print('bench: RPC calls, %d rounds of %.0f s, the %d variants at once, '
          'eventlet then threading executor'
          % (rounds, RPC_BLOCK, len(VARIANTS)), flush=True)
    pairs = {}
    for executor in ('eventlet', 'threading'):
        for variant in VARIANTS:
            topic = 'bench-rpc-%s-%s' % (executor, variant[0])
            pairs[(executor, variant)] = tuple(
                Workload(build, variant, name, None, executor, topic,
                         nice=RPC_NICE)
                for name in ('rpc-server', 'rpc-client'))
    for server, client in pairs.values():
        server.ready.wait()
        client.ready.wait()
    samples = {}
    for index in range(rounds + 1):  # round 0 warms up
        for executor in ('eventlet', 'threading'):
            clients = [pairs[(executor, v)][1] for v in VARIANTS]
            for client in clients:  # all together: the same machine load
                client.send(RPC_BLOCK)
            for variant, client in zip(VARIANTS, clients):
                result = client.result()
                if index:
                    samples.setdefault((executor, variant[0]),
                                       []).append(result)
    for server, client in pairs.values():
        client.stop()
        server.stop()
    return samples


def rpc_rows(samples):
    rows, ratios = [], []
    for (executor, label), results in samples.items():
        rows.append({'executor': executor, 'variant': label, **{
            key: sorted(r[key] for r in results)[len(results) // 2]
            for key in results[0]}})
    for executor in ('eventlet', 'threading'):
        for num, den in COMPARISONS:
            a = samples[(executor, num[0])]
            b = samples[(executor, den[0])]
            row = {'executor': executor, 'ratio': '%s / %s' % (num[0],
                                                               den[0])}
            for key in ('calls_per_s', 'client_cpu_us', 'server_cpu_us'):
                row[key] = benchstats.ratio_ci(
                    [x[key] / y[key] for x, y in zip(a, b)])
            ratios.append(row)
    return rows, ratios


def report_connections(results):
    tick = benchstats.tick(HEARTBEAT, 3)
    print('1. Connections in an eventlet-patched process (heartbeat '
          'threshold %d s, tick %.1f s; idle window %d s with the hub '
          'running; stall %d ticks)' % (HEARTBEAT, tick, IDLE, STALL_TICKS))
    print('   %-19s %5s %7s %5s %7s %9s %11s %8s %6s %7s %5s' % (
        'variant', 'conns', 'threads', 'base+', 'RSS MiB', 'CPU s/min',
        'wakeups/min', 'N*ticks', 'gap s', 'close s', 'left'))
    for row in results['connections']:
        if 'error' in row:
            print('   %-19s %5d failed: %s' % (row['variant'],
                                               row['connections'],
                                               row['error'][:80]))
            continue
        print('   %-19s %5d %7d %5s %7.1f %9.3f %11.0f %8.0f %6s %7.3f '
              '%3d/%d' % (
                  row['variant'], row['connections'], row['os_threads'],
                  '+%d' % (row['os_threads'] - row['baseline_threads']),
                  row['rss_mib'], row['cpu_s_per_min'],
                  row['wakeups_per_min'],
                  row['connections'] * 60 / row['tick_s'],
                  'n/a' if row['largest_gap_s'] is None else
                  '%.2f' % row['largest_gap_s'], row['close_s'],
                  row['threads_left_at_once'],
                  row['threads_left_after_1s']))
    print('   threads: OS threads with the connections open, "base+" above '
          'the process before them; N*ticks: connections x ticks per '
          'minute; gap: largest gap between client frames of any connection '
          'during the stall (proxy up to %d connections, loopback TCP '
          'segments above); left: OS threads above the baseline just after '
          'closing / 1 s later' % PROXY_MAX)
    print('   targets (shared thread, on): threads = baseline + 1 at every '
          'size; wake-ups/min <= N*ticks; gap <= tick + 10 %% = %.1f s at '
          '1000 connections; nothing left after close' % (1.1 * tick))


def report(results):
    print()
    if results.get('connections'):
        report_connections(results)
    if results.get('rpc'):
        report_rpc(results)
    if results.get('wire'):
        overhead.report(results['wire'], call_seconds(results),
                        e2e_ratio(results), call_cpu(results))


def call_seconds(results):
    """Seconds per call, option off, eventlet: (seconds, what it is)."""
    samples = results.get('rpc_samples', {}).get('eventlet|%s' % OFF[0])
    if samples:
        return (sum(1 / s['calls_per_s'] for s in samples) / len(samples),
                '%s, eventlet, mean of %d rounds' % (OFF[0], len(samples)))
    return (results['wire']['counts']['tcp']['seconds_per_call'],
            'option on, TCP, while counting: no RPC rounds run')


def call_cpu(results):
    """CPU seconds per call of client and server, option off, eventlet."""
    samples = results.get('rpc_samples', {}).get('eventlet|%s' % OFF[0])
    if not samples:
        return None
    return sum(1e-6 * (s['client_cpu_us'] + s['server_cpu_us'])
               for s in samples) / len(samples)


def e2e_ratio(results):
    """calls/s of the shared thread over option off, eventlet, or None."""
    for row in results.get('rpc_ratios', []):
        if (row['executor'] == 'eventlet' and
                row['ratio'] == '%s / %s' % (SHARED[0], OFF[0])):
            return row['calls_per_s']
    return None


def report_rpc(results):
    print('2. RPC call, median of %d rounds of %.0f s of calls, the %d '
          'variants at once (CPU per call of each process)' % (
              len(next(iter(results['rpc_samples'].values()))), RPC_BLOCK,
              len({row['variant'] for row in results['rpc']})))
    print('   %-10s %-19s %8s %7s %7s %13s %13s' % (
        'executor', 'variant', 'calls/s', 'p50 ms', 'p99 ms',
        'client us/call', 'server us/call'))
    for row in sorted(results['rpc'], key=lambda r: (r['executor'],
                                                     r['variant'])):
        print('   %-10s %-19s %8.0f %7.2f %7.2f %13.1f %13.1f' % (
            row['executor'], row['variant'], row['calls_per_s'],
            row['p50_ms'], row['p99_ms'], row['client_cpu_us'],
            row['server_cpu_us']))
    print('   ratios, geometric mean [95 % interval] of per-round ratios '
          '(target: option on within 1 % of option off)')
    for row in results['rpc_ratios']:
        cells, same = [], []
        for key, name in (('calls_per_s', 'calls/s'),
                          ('client_cpu_us', 'client CPU'),
                          ('server_cpu_us', 'server CPU')):
            mean, low, high = row[key]
            cells.append('%s %.3f [%.3f, %.3f]' % (name, mean, low, high))
            if not benchstats.told_apart(low, high):
                same.append(name)
        print('   %-10s %s' % (row['executor'], row['ratio']))
        print('      %s' % '; '.join(cells))
        if same:
            print('      cannot be told apart: %s' % ', '.join(same))


def measure(args):
    build = args.build_dir
    results = {'connections': []}
    if 'connections' in args.sections:
        for count in args.counts:
            results['connections'] += connections(build, count)
    if 'rpc' in args.sections:
        samples = rpc(build, args.rounds)
        results['rpc'], results['rpc_ratios'] = rpc_rows(samples)
        results['rpc_samples'] = {'%s|%s' % k: v
                                  for k, v in samples.items()}
    if 'wire' in args.sections:
        url = os.environ['BENCH_URL']
        tls_url = url.replace(':%d/' % broker_port(),
                              ':%d/' % (broker_port() + 1))
        results['wire'] = overhead.measure(
            os.path.join(build, 'bench-fork', 'bin', 'python'),
            {'tcp': url, 'tls': tls_url}, args.certs, build)
    with open(os.path.join(build, 'bench.json'), 'w') as f:
        json.dump(results, f, indent=1)
    report(results)


def wheel_at(rev, build, name=series.DEFAULT_SERIES):
    """The wheel of the series name committed at rev (cached by commit)."""
    sha = subprocess.run(['git', '-C', ROOT, 'rev-parse', rev + '^{commit}'],
                         check=True, stdout=subprocess.PIPE,
                         text=True).stdout.strip()
    cache = os.path.join(build, 'bench-wheels', sha)
    if os.path.isdir(cache) and os.listdir(cache):
        return os.path.join(cache, os.listdir(cache)[0])

    with tempfile.TemporaryDirectory(dir=build) as tmp:
        # the default series' files, which a backport's series file may
        # name, and the backport's folder
        paths = ['upstream.pin', 'patches'] + ([name] if name else [])
        archive = subprocess.run(['git', '-C', ROOT, 'archive', sha] + paths,
                                 check=True, stdout=subprocess.PIPE).stdout
        subprocess.run(['tar', '-x', '-C', tmp], input=archive, check=True)
        committed = series.Series(tmp, name)
        download = series.layout(name, ROOT).download
        if os.path.isdir(download):  # the verified sdist, if fetched
            shutil.copytree(download, committed.layout.download)
        print('bench: building the wheel of the series at %s' % sha[:12],
              flush=True)
        wheel = committed.wheel()
        os.makedirs(cache, exist_ok=True)
        final = os.path.join(cache, os.path.basename(wheel))
        shutil.move(wheel, final)
    return final


def make_venv(build, name, *packages):
    path = os.path.join(build, name)
    subprocess.run([sys.executable, '-m', 'venv', '--clear', path],
                   check=True)
    proc = subprocess.run([os.path.join(path, 'bin', 'python'), '-m', 'pip',
                           'install', '-q', '-c', CONSTRAINTS] +
                          list(packages), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        sys.exit('bench: pip install into %s failed:\n%s'
                 % (name, proc.stdout))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--fork-rev', help='build the fork from the patches '
                        'committed at this revision, not the live tree')
    parser.add_argument('--per-connection-rev', default=PER_CONNECTION_REV)
    parser.add_argument('--counts', default=','.join(map(str, COUNTS)),
                        type=lambda s: [int(n) for n in s.split(',') if n])
    parser.add_argument('--rounds', type=int, default=RPC_ROUNDS)
    parser.add_argument('--build-dir', default=LAYOUT.build)
    parser.add_argument('--sections', default=','.join(SECTIONS),
                        help='what to measure, of %s' % ','.join(SECTIONS),
                        type=lambda s: [n for n in s.split(',') if n])
    parser.add_argument('--report', action='store_true',
                        help='print the tables of the last bench.json')
    parser.add_argument('--measure', action='store_true',
                        help=argparse.SUPPRESS)
    parser.add_argument('--certs', help=argparse.SUPPRESS)
    args = parser.parse_args()
    unknown = [n for n in args.sections if n not in SECTIONS]
    if unknown or not args.sections:
        parser.error('--sections %s: choose from %s'
                     % (','.join(args.sections), ','.join(SECTIONS)))
    args.build_dir = os.path.abspath(args.build_dir)
    if args.report:
        with open(os.path.join(args.build_dir, 'bench.json')) as f:
            return report(json.load(f))
    if args.measure:
        return measure(args)
    started = time.monotonic()
    os.makedirs(args.build_dir, exist_ok=True)
    try:
        per_conn = (wheel_at(args.per_connection_rev, args.build_dir)
                    if PER_CONN in VARIANTS else None)
        fork = (wheel_at(args.fork_rev, args.build_dir, LAYOUT.name)
                if args.fork_rev else series.Series(ROOT).wheel())
    except series.SeriesError as exc:
        sys.exit('bench: %s' % exc)
    if per_conn:
        print('bench: virtualenvs: fork %s, per-connection %s, pristine %s'
              % (os.path.basename(fork), os.path.basename(per_conn),
                 VERSION), flush=True)
    else:
        print('bench: virtualenvs: fork %s, pristine %s; no per-connection '
              'design (landed on the default series only)'
              % (os.path.basename(fork), VERSION), flush=True)
    venvs = [(args.build_dir, 'bench-fork', fork, 'pifpaf', PYPERF)]
    if set(args.sections) & {'connections', 'rpc'}:
        venvs.append((args.build_dir, 'bench-pristine',
                      'oslo.messaging==%s' % VERSION))
        if per_conn:
            venvs.append((args.build_dir, 'bench-perconn', per_conn))
    in_parallel = [threading.Thread(target=make_venv, args=a)
                   for a in venvs]
    for thread in in_parallel:
        thread.start()
    for thread in in_parallel:
        thread.join()
    # Room for every connection in this process (proxies), the broker and
    # the workloads, which inherit it.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    port = free_port()
    nodename = os.environ.get('BENCH_NODENAME') or 'bench-%d' % os.getpid()
    with tempfile.TemporaryDirectory() as tmp:
        certs = overhead.certificates(tmp)
        conf = os.path.join(tmp, 'rabbitmq.conf')
        with open(conf, 'w') as f:  # ours, not the system broker's
            f.write(overhead.rabbitmq_tls(certs, port + 1))
        env = dict(os.environ, RABBITMQ_CONFIG_FILE=conf)
        inner = [sys.executable, os.path.abspath(__file__), '--measure',
                 '--counts', ','.join(map(str, args.counts)),
                 '--rounds', str(args.rounds), '--build-dir', args.build_dir,
                 '--sections', ','.join(args.sections), '--certs', certs]
        print('bench: private broker %s on port %d (TLS %d)'
              % (nodename, port, port + 1), flush=True)
        subprocess.run(
            [os.path.join(args.build_dir, 'bench-fork', 'bin', 'pifpaf'),
             '--env-prefix', 'BENCH', 'run', 'rabbitmq', '--port',
             str(port), '--nodename', nodename, '--'] + inner,
            env=env, cwd=tmp, check=True)
    print('bench: done in %.0f s' % (time.monotonic() - started))


if __name__ == '__main__':
    main()
