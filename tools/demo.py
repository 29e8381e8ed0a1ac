#!/usr/bin/env python3
"""``make demo``: the fork's wheel, installed fresh, against a real RabbitMQ.

1. build the wheel from the patch series (``tools/series.py wheel``);
2. install it into a fresh virtualenv at build/demo-venv (constraints.txt);
3. start a private RabbitMQ with pifpaf on 127.0.0.1:5682;
4. run tools/demo_service.py twice in that virtualenv, as an
   eventlet-patched service with ``heartbeat_in_pthread = false`` and then
   ``= true`` in a real config file: an RPC call and a notification round
   trip, then its main OS thread blocked without yielding (what a WSGI
   worker does between requests) for five heartbeat intervals;
5. print a table: was the connection kept or dropped, when did the broker
   drop it, how many reconnects.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
BUILD = os.path.join(ROOT, 'build')
VENV = os.path.join(BUILD, 'demo-venv')
PY = os.path.join(VENV, 'bin', 'python')
CONSTRAINTS = os.path.join(ROOT, 'constraints.txt')
THRESHOLD = 2
STALL = 5 * THRESHOLD


def step(msg):
    print('demo: ' + msg, flush=True)


def run(cmd, **kwargs):
    proc = subprocess.run(cmd, **kwargs)
    if proc.returncode != 0:
        sys.exit('demo: failed: %s' % ' '.join(cmd))
    return proc


def main():
    step('building the wheel from the patch series')
    out = run([sys.executable, os.path.join(ROOT, 'tools', 'series.py'),
               'wheel'], stdout=subprocess.PIPE, text=True).stdout
    print(out, end='')
    wheel = out.strip().split()[-1]
    step('installing it into a fresh virtualenv (%s)'
         % os.path.relpath(VENV))
    run([sys.executable, '-m', 'venv', '--clear', VENV])
    proc = subprocess.run([PY, '-m', 'pip', 'install', '-q', '-c',
                           CONSTRAINTS, wheel, 'pifpaf'],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0:
        print(proc.stdout)
        sys.exit('demo: pip install failed')
    with tempfile.TemporaryDirectory() as tmp:
        conf = os.path.join(tmp, 'rabbitmq.conf')
        open(conf, 'w').close()
        env = dict(os.environ, RABBITMQ_CONFIG_FILE=conf,
                   PYTHONWARNINGS='ignore')
        step('starting a private RabbitMQ with pifpaf on 127.0.0.1:5682')
        service = os.path.join(ROOT, 'tools', 'demo_service.py')
        script = ('for mode in false true; do %s %s "$RABBITMQ_URL" '
                  '$mode %d %d || exit 1; done'
                  % (PY, service, THRESHOLD, STALL))
        start = time.monotonic()
        proc = subprocess.run(
            [os.path.join(VENV, 'bin', 'pifpaf'), '--env-prefix',
             'RABBITMQ', 'run', 'rabbitmq', '--', 'sh', '-c', script],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, cwd=tmp)
    results = []
    for line in proc.stdout.splitlines():
        if line.startswith('RESULT '):
            results.append(json.loads(line[len('RESULT '):]))
        elif not line.startswith('WARNING [pifpaf'):
            print('  ' + line)
    if proc.returncode != 0 or len(results) != 2:
        sys.exit('demo: the service runs failed (exit %d)'
                 % proc.returncode)
    print()
    print('Stalled hub for %d s, heartbeat_timeout_threshold = %d s '
          '(broker drops a silent client after 2-3 intervals)'
          % (STALL, THRESHOLD))
    print('%-22s %-10s %-28s %-11s %s' % (
        'heartbeat_in_pthread', 'connection', 'dropped by broker after',
        'reconnects', 'heartbeat thread'))
    for r in results:
        dropped = ('%.1f s into the stall' % r['dropped_after']
                   if r['dropped_after'] is not None else '-')
        print('%-22s %-10s %-28s %-11d %s' % (
            r['heartbeat_in_pthread'], 'kept' if r['kept'] else 'DROPPED',
            dropped, r['reconnects'], r['thread']))
    step('done in %.0f s' % (time.monotonic() - start))


if __name__ == '__main__':
    main()
