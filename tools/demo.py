#!/usr/bin/env python3
"""``make demo``: the fork's wheel against a real RabbitMQ, option off and on.

1. build the wheel from the patch series (``tools/series.py wheel
   --reuse``: kept when the tree has not changed);
2. install it into a virtualenv at build/demo-venv (constraints.txt),
   kept when neither the wheel's content nor constraints.txt changed;
3. start a private RabbitMQ with pifpaf on a free port of 127.0.0.1, with
   a node name of its own;
4. run tools/demo_service.py twice in that virtualenv, as an
   eventlet-patched service with ``heartbeat_in_pthread = false`` and then
   ``= true`` in a real config file: an RPC call and a notification round
   trip, then its main OS thread blocked without yielding (what a WSGI
   worker does between requests) for five heartbeat intervals, then the
   RPC call whose latency users feel;
5. print a table: was the connection kept or dropped, when did the broker
   drop it, how many reconnects, how long the call after the stall took.

Any failure ends the demo with one line saying what failed and why.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import run_tests  # noqa: E402  (free ports, node names, broker errors)
import series  # noqa: E402

LAYOUT = series.layout_or_exit('demo')  # $SERIES: build/ or build/NAME/
BUILD = LAYOUT.build
VENV = os.path.join(BUILD, 'demo-venv')
PY = os.path.join(VENV, 'bin', 'python')
VENV_KEY = os.path.join(VENV, 'demo-key.txt')
LOG = os.path.join(BUILD, 'demo.log')
CONSTRAINTS = LAYOUT.constraints
THRESHOLD = 2
STALL = 5 * THRESHOLD
RECONNECTS = ('reconnects: how many times the service re-established a '
              'connection to the broker (the driver\'s "Reconnected to '
              'AMQP server" log lines) from the start of the stall to the '
              'end of the call and notification after it')


class DemoFailed(Exception):
    """What failed and why, in one line."""


def step(msg):
    print('demo: ' + msg, flush=True)


def run(cmd, what, **kwargs):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, **kwargs)
    if proc.returncode != 0:
        raise DemoFailed('%s failed (exit %d): %s' % (
            what, proc.returncode, run_tests.failure_reason(proc.stdout)))
    return proc.stdout


def sha256(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def venv_key(wheel):
    """What the demo virtualenv is made of: the wheel and the pins."""
    return 'wheel %s sha256 %s\nconstraints.txt sha256 %s\n' % (
        os.path.basename(wheel), sha256(wheel), sha256(CONSTRAINTS))


def venv_is_current(key):
    try:
        with open(VENV_KEY) as f:
            return f.read() == key and os.path.exists(PY)
    except FileNotFoundError:
        return False


def build_wheel():
    out = run([sys.executable, os.path.join(ROOT, 'tools', 'series.py'),
               'wheel', '--reuse'], 'building the wheel')
    print(out, end='')
    return out.strip().split()[-1]


def install(wheel):
    key = venv_key(wheel)
    if venv_is_current(key):
        step('reusing %s (same wheel content and constraints.txt)'
             % os.path.relpath(VENV))
        return
    step('installing the wheel into a fresh virtualenv (%s)'
         % os.path.relpath(VENV))
    if os.path.exists(VENV_KEY):
        os.unlink(VENV_KEY)
    run([sys.executable, '-m', 'venv', '--clear', VENV], 'python3 -m venv')
    run([PY, '-m', 'pip', 'install', '-q', '-c', CONSTRAINTS, wheel,
         'pifpaf'], 'pip install')
    with open(VENV_KEY, 'w') as f:
        f.write(key)


def parse(output):
    """(results, other lines) of the broker run's output."""
    results, lines = [], []
    for line in output.splitlines():
        if line.startswith('RESULT '):
            results.append(json.loads(line[len('RESULT '):]))
        elif not line.startswith('WARNING [pifpaf'):
            lines.append(line)
    return results, lines


def run_services():
    port = run_tests.free_broker_port()
    nodename = run_tests.broker_nodename(port, prefix='demo')
    step('starting a private RabbitMQ with pifpaf: node %s@localhost on '
         '127.0.0.1:%d' % (nodename, port))
    service = os.path.join(ROOT, 'tools', 'demo_service.py')
    script = ('for mode in false true; do %s %s "$RABBITMQ_URL" '
              '$mode %d %d || exit 1; done' % (PY, service, THRESHOLD, STALL))
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, PYTHONWARNINGS='ignore',
                   PATH=os.path.dirname(PY) + os.pathsep + os.environ['PATH'],
                   **run_tests.pifpaf_env(tmp))
        proc = subprocess.run(
            run_tests.broker_command(port, nodename, ['sh', '-c', script]),
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=tmp)
    os.makedirs(BUILD, exist_ok=True)
    with open(LOG, 'w') as f:
        f.write(proc.stdout)
    if run_tests.BROKER_UP not in proc.stdout:
        raise DemoFailed(
            'the private RabbitMQ (node %s, 127.0.0.1:%d) failed to start: '
            '%s (full output: %s)' % (nodename, port,
                                      run_tests.failure_reason(proc.stdout),
                                      os.path.relpath(LOG)))
    results, lines = parse(proc.stdout)
    for line in lines:
        if not line.startswith(run_tests.BROKER_UP):
            print('  ' + line)
    if proc.returncode != 0 or len(results) != 2:
        mode = ('false', 'true')[min(len(results), 1)]
        raise DemoFailed(
            'the service with heartbeat_in_pthread = %s failed (exit %d): '
            '%s (full output: %s)' % (mode, proc.returncode,
                                      run_tests.failure_reason(proc.stdout),
                                      os.path.relpath(LOG)))
    return results


def table(results):
    rows = ['Stalled hub for %d s, heartbeat_timeout_threshold = %d s '
            '(broker drops a silent client after 2-3 intervals)'
            % (STALL, THRESHOLD),
            '%-21s %-10s %-27s %-10s %-18s %s' % (
                'heartbeat_in_pthread', 'connection',
                'dropped by broker after', 'reconnects',
                'call after stall', 'heartbeat thread')]
    for r in results:
        dropped = ('%.1f s into the stall' % r['dropped_after']
                   if r['dropped_after'] is not None else '-')
        if r['call_ok']:
            latency = '%.0f ms' % (r['call_latency'] * 1000)
        else:
            latency = 'FAILED after %.1f s' % r['call_latency']
        rows.append('%-21s %-10s %-27s %-10d %-18s %s' % (
            r['heartbeat_in_pthread'], 'kept' if r['kept'] else 'DROPPED',
            dropped, r['reconnects'], latency, r['thread']))
    rows.append(textwrap.fill(RECONNECTS, 79))
    return '\n'.join(rows)


def main():
    start = time.monotonic()
    try:
        step('building the wheel from the patch series')
        install(build_wheel())
        results = run_services()
    except DemoFailed as exc:
        sys.exit('demo: %s' % exc)
    print()
    print(table(results))
    step('done in %.0f s (wall time of the whole command)'
         % (time.monotonic() - start))


if __name__ == '__main__':
    main()
