#!/usr/bin/env python3
"""``make bench``: the fork against pristine oslo.messaging 18.3.1.

Builds the fork's wheel, installs it and pristine 18.3.1 (from the package
index) into two fresh virtualenvs, starts a private RabbitMQ with pifpaf,
and measures, side by side in one run:

1. punctuality on the wire: during a 60 s stalled hub, the largest gap
   between client-to-broker AMQP frames, timestamped by a frame-parsing
   proxy (pristine, fork option off, fork option on);
2. RPC call throughput and p50/p99 latency, eventlet and threading
   executors, the three variants interleaved round by round;
3. idle cost per connection (CPU, wake-ups) and resident memory and OS
   threads for 1, 10 and 100 connections, option off vs on;
4. transport.cleanup() time with 1, 10 and 100 connections.

Prints figures and ratios; asserts nothing.  Results also go to
build/bench.json.
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
BUILD = os.path.join(ROOT, 'build')
CONSTRAINTS = os.path.join(ROOT, 'constraints.txt')
WORKLOADS = os.path.join(ROOT, 'bench', 'workloads.py')
sys.path.insert(0, os.path.join(ROOT, 'bench'))
import amqp_proxy  # noqa: E402

STALL = 60
RPC_ROUNDS = 5
RPC_CALLS = 2000
IDLE_SECONDS = 20
COUNTS = (1, 10, 100)
# (label, virtualenv, heartbeat_in_pthread)
VARIANTS = [('pristine 18.3.1', 'bench-pristine', '-'),
            ('fork, option off', 'bench-fork', 'off'),
            ('fork, option on', 'bench-fork', 'on')]


def python(venv):
    return os.path.join(BUILD, venv, 'bin', 'python')


def make_venv(name, *packages):
    path = os.path.join(BUILD, name)
    subprocess.run([sys.executable, '-m', 'venv', '--clear', path],
                   check=True)
    proc = subprocess.run([python(name), '-m', 'pip', 'install', '-q', '-c',
                           CONSTRAINTS] + list(packages),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0:
        sys.exit('bench: pip install into %s failed:\n%s'
                 % (name, proc.stdout))


def workload(venv, name, url, option, *args):
    proc = subprocess.run(
        [python(venv), WORKLOADS, name, url, option] + [str(a) for a in args],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONWARNINGS='ignore'), cwd=BUILD)
    lines = [line for line in proc.stdout.splitlines()
             if line.startswith('RESULT ')]
    if not lines:
        sys.exit('bench: %s %s %s failed:\n%s'
                 % (venv, name, option, proc.stdout[-3000:]))
    return json.loads(lines[-1][len('RESULT '):])


def in_parallel(jobs):
    results = [None] * len(jobs)

    def run(index, job):
        results[index] = job()

    threads = [threading.Thread(target=run, args=(i, job))
               for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def punctuality(url, port):
    print('bench: punctuality, %d s stalled hub, three variants in '
          'parallel' % STALL, flush=True)
    proxies = [amqp_proxy.AmqpProxy(port) for _ in VARIANTS]
    jobs = [lambda v=v, p=p: workload(
        v[1], 'stall', url.replace(':%d/' % port, ':%d/' % p.port), v[2],
        STALL) for v, p in zip(VARIANTS, proxies)]
    rows = []
    for (label, _, _), proxy, result in zip(VARIANTS, proxies,
                                            in_parallel(jobs)):
        gap = max(clock.largest_gap(result['stall_start'],
                                    result['stall_end'])
                  for clock in proxy.clocks)
        rows.append({'variant': label, 'largest_gap_s': gap,
                     'negotiated_s': result['negotiated']})
        proxy.close()
    return rows


def rpc(url):
    print('bench: RPC calls, %d rounds x %d calls, interleaved'
          % (RPC_ROUNDS, RPC_CALLS), flush=True)
    samples = {}
    for _ in range(RPC_ROUNDS):
        for executor in ('eventlet', 'threading'):
            for label, venv, option in VARIANTS:
                result = workload(venv, 'rpc', url, option, executor,
                                  RPC_CALLS)
                samples.setdefault((executor, label), []).append(result)
    rows = []
    for (executor, label), results in samples.items():
        rows.append({'executor': executor, 'variant': label, **{
            key: statistics.median(r[key] for r in results)
            for key in ('calls_per_s', 'p50_ms', 'p99_ms')}})
    for row in rows:
        base = next(r for r in rows if r['executor'] == row['executor'] and
                    r['variant'] == VARIANTS[0][0])
        row['throughput_ratio'] = row['calls_per_s'] / base['calls_per_s']
        row['p99_ratio'] = row['p99_ms'] / base['p99_ms']
    return rows


def idle(url):
    print('bench: idle cost, %d s per measure' % IDLE_SECONDS, flush=True)
    rows = []
    for count in COUNTS:
        jobs = [lambda v=v: workload(v[1], 'idle', url, v[2], count,
                                     IDLE_SECONDS) for v in VARIANTS[1:]]
        for (label, _, _), result in zip(VARIANTS[1:], in_parallel(jobs)):
            rows.append({'variant': label, 'connections': count, **result})
    return rows


def shutdown(url):
    print('bench: transport.cleanup()', flush=True)
    rows = []
    for count in COUNTS:
        for label, venv, option in VARIANTS:
            result = workload(venv, 'shutdown', url, option, count)
            rows.append({'variant': label, 'connections': count, **result})
    return rows


def report(results):
    print()
    print('1. Punctuality: largest gap between client frames during a %d s '
          'stalled hub' % STALL)
    for row in results['punctuality']:
        print('   %-18s %7.1f s   (negotiated heartbeat %s s)'
              % (row['variant'], row['largest_gap_s'], row['negotiated_s']))
    print('2. RPC call (median of %d rounds of %d calls)'
          % (RPC_ROUNDS, RPC_CALLS))
    print('   %-10s %-18s %9s %8s %8s %10s %9s' % (
        'executor', 'variant', 'calls/s', 'p50 ms', 'p99 ms',
        'tput ratio', 'p99 ratio'))
    for row in sorted(results['rpc'], key=lambda r: (r['executor'],
                                                     r['variant'])):
        print('   %-10s %-18s %9.0f %8.2f %8.2f %10.3f %9.3f' % (
            row['executor'], row['variant'], row['calls_per_s'],
            row['p50_ms'], row['p99_ms'], row['throughput_ratio'],
            row['p99_ratio']))
    print('3. Idle cost (eventlet-patched process, hub running)')
    print('   %-18s %5s %14s %16s %8s %8s' % (
        'variant', 'conns', 'CPU s/conn/min', 'wakeups/conn/min',
        'RSS MiB', 'threads'))
    for row in results['idle']:
        print('   %-18s %5d %14.5f %16.1f %8.1f %8d' % (
            row['variant'], row['connections'], row['cpu_s_per_conn_min'],
            row['wakeups_per_conn_min'], row['rss_mib'], row['os_threads']))
    print('4. transport.cleanup()')
    for row in results['shutdown']:
        print('   %-18s %5d connections %8.3f s  (OS threads after: %d)' % (
            row['variant'], row['connections'], row['cleanup_s'],
            row['os_threads_after']))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == '--measure':
        url = os.environ['BENCH_URL']
        port = int(os.environ['BENCH_PORT'])
        results = {'punctuality': punctuality(url, port), 'rpc': rpc(url),
                   'idle': idle(url), 'shutdown': shutdown(url)}
        with open(os.path.join(BUILD, 'bench.json'), 'w') as f:
            json.dump(results, f, indent=1)
        report(results)
        return
    out = subprocess.run([sys.executable, os.path.join(ROOT, 'tools',
                                                       'series.py'), 'wheel'],
                         check=True, stdout=subprocess.PIPE,
                         text=True).stdout
    wheel = out.strip().split()[-1]
    print('bench: virtualenvs for the fork (%s) and pristine 18.3.1'
          % os.path.basename(wheel), flush=True)
    make_venv('bench-fork', wheel, 'pifpaf')
    make_venv('bench-pristine', 'oslo.messaging==18.3.1')
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, 'rabbitmq.conf')
        open(conf, 'w').close()
        env = dict(os.environ, RABBITMQ_CONFIG_FILE=conf)
        port = 5762
        subprocess.run(
            [os.path.join(BUILD, 'bench-fork', 'bin', 'pifpaf'),
             '--env-prefix', 'BENCH', 'run', 'rabbitmq', '--port', str(port),
             '--nodename', 'bench', '--', 'sh', '-c',
             'BENCH_PORT=%d exec %s %s --measure' % (port, sys.executable,
                                                     __file__)],
            env=env, cwd=tmp, check=True)


if __name__ == '__main__':
    main()
