#!/usr/bin/env python3
"""make mutate: mutation testing of the series' own code with cosmic-ray.

Each target (TARGETS) is a module of the series and the unit test
modules that exercise it. JOBS ``cosmic-ray http-worker``s each serve
mutants on a clone of their own of the committed tree
(build/mutate/worker<N>), so build/oslo.messaging is never touched. For
each target, one after the other:

1. ``cosmic-ray baseline`` checks that the unmutated tests pass;
2. ``cosmic-ray init`` lists every mutant of the module;
3. ``cr-filter-operators`` drops the operators not in OPERATORS and
   ``cr-filter-lines`` the mutants outside the target's lines (for
   impl_rabbit.py: only the lines the series added to it);
4. ``cosmic-ray exec`` hands each mutant to a free worker, which applies
   it alone and runs the target's tests (testtools, --failfast); a run
   that outlives the timeout (TIMEOUT_FACTOR times the baseline's time,
   at least MIN_TIMEOUT) is killed with its process group and counts as
   a killed mutant.

A surviving mutant listed in tools/mutation-equivalents.txt (its id, a
location for the reader and `` -- `` a one-line reason) counts as
equivalent. The last line printed is

    mutation: K killed, S survived, E equivalent, score P %

with P = K / (K + S). The tests run from build/venv (``python3
tools/run_tests.py wheel``); cosmic-ray lives in build/mutate-venv,
pinned by constraints.txt. ``--count`` only counts the mutants. The
exit status is 1 when a mutant survived or none was killed.
"""

import collections
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import series  # noqa: E402

LAYOUT = series.layout_or_exit('mutate')  # $SERIES: build/ or build/NAME/
BUILD = LAYOUT.build
TREE = LAYOUT.tree
WORK = os.path.join(BUILD, 'mutate')
TEST_VENV = LAYOUT.venv
CR_VENV = os.path.join(BUILD, 'mutate-venv')
CONSTRAINTS = LAYOUT.constraints
EQUIVALENTS = os.path.join(ROOT, 'tools', 'mutation-equivalents.txt')

DRIVERS = 'oslo_messaging/_drivers/'
TESTS = 'oslo_messaging.tests.drivers.'

# module -> (lines to mutate, test modules or module.Class). 'all': the
# whole module (the series wrote it); 'series': only the lines the series
# added to an upstream module (git diff upstream HEAD), i.e. the
# heartbeat, fork, reconnect and WSGI code of impl_rabbit.py and not
# upstream's own.
TARGETS = collections.OrderedDict([
    ('native_heartbeat.py', ('all', ['test_heartbeat_in_pthread',
                                     'test_native_heartbeat'])),
    ('amqp_wire.py', ('all', ['test_amqp_wire', 'test_heartbeat_in_pthread',
                              'test_native_heartbeat'])),
    ('impl_rabbit.py', ('series', ['test_heartbeat_in_pthread',
                                   'test_rabbit_fork',
                                   'test_rabbit_wsgi_warning'])),
    ('amqp_fork.py', ('all', ['test_amqp_fork', 'test_rabbit_fork',
                              'test_native_heartbeat.ForkTestCase'])),
    ('native_threading.py', ('all', ['test_native_threading',
                                     'test_native_heartbeat'])),
])

# The operators kept: one realistic slip each, not every operator
# swapped for every other (cosmic-ray's 132 binary-operator pairs would
# multiply the run time for mutants that are nearly all the same bug).
OPERATORS = [
    r'core/ReplaceComparisonOperator_(Lt_LtE|LtE_Lt|Gt_GtE|GtE_Gt|'
    r'Eq_NotEq|NotEq_Eq|Is_IsNot|IsNot_Is|In_NotIn|NotIn_In)$',
    r'core/ReplaceBinaryOperator_(Add_Sub|Sub_Add|Mul_Div|Div_Mul|'
    r'FloorDiv_Mul)$',
    r'core/AddNot$',
    r'core/Replace(True|False)With(False|True)$',
    r'core/Replace(And|Or)With(Or|And)$',
    r'core/ExceptionReplacer$',
    r'core/ZeroIterationForLoop$',
    r'core/Replace(Break|Continue)With(Continue|Break)$',
]

# Workers (clones) testing mutants at once. The tests mostly wait on
# sockets and events (a run of test_native_heartbeat: 35 s, 1.5 s of CPU),
# so a 2-core machine keeps eight busy.
JOBS = 8
TIMEOUT_FACTOR = 3
MIN_TIMEOUT = 90.0
TEST_TIMEOUT = 60
# The negation of OPERATORS, as cr-filter-operators wants it.
EXCLUDE = [r'(?!%s)' % '|'.join('(?:%s)' % o for o in OPERATORS)]

Counts = collections.namedtuple(
    'Counts', 'killed timeouts survived equivalent incompetent')


def say(msg):
    print('mutate: ' + msg, flush=True)


def kept_operator(name):
    return any(re.match(o, name) for o in OPERATORS)


def added_lines(diff):
    """Line ranges (first, last) of the new side of a ``diff -U0``."""
    ranges = []
    for m in re.finditer(r'^@@ -\S+ \+(\d+)(?:,(\d+))? @@', diff, re.M):
        start, count = int(m.group(1)), int(m.group(2) or 1)
        if count:
            ranges.append((start, start + count - 1))
    return ranges


def mutant_id(module, operator, line_text, nth):
    """A short id that survives edits elsewhere in the module.

    nth tells apart mutants of one operator on lines of the same text.
    """
    key = '%s|%s|%s|%d' % (module, operator, line_text.strip(), nth)
    return hashlib.sha1(key.encode()).hexdigest()[:10]


def parse_equivalents(text):
    """{id: reason} from the equivalents file; ValueError if malformed.

    Lines: ``<id> <location...> -- <reason>``; # starts a comment.
    """
    equivalents = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith('#'):
            continue
        head, sep, reason = line.partition(' -- ')
        ident = head.split()[0]
        if not re.match(r'^[0-9a-f]{10}$', ident):
            raise ValueError('line %d: %r is not a mutant id'
                             % (number, ident))
        if not sep or not reason.strip():
            raise ValueError('line %d: %s has no " -- reason"'
                             % (number, ident))
        if ident in equivalents:
            raise ValueError('line %d: %s listed twice' % (number, ident))
        equivalents[ident] = reason.strip()
    return equivalents


def load_equivalents(path=None):
    path = path or EQUIVALENTS
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return parse_equivalents(f.read())


def mutants(dump, sources):
    """The mutants of a ``cosmic-ray dump``, skipped ones left out.

    dump: its JSON lines; sources: {module path: source text}. Yields
    dicts: id, module, line, definition, operator, outcome ('killed',
    'timeout', 'survived' or 'incompetent'), diff.
    """
    seen = collections.Counter()
    rows = [json.loads(line) for line in dump.splitlines() if line.strip()]
    # in source order (cosmic-ray's occurrence), whatever the dump's order
    rows.sort(key=lambda row: (row[0]['mutations'][0]['module_path'],
                               row[0]['mutations'][0]['operator_name'],
                               row[0]['mutations'][0]['occurrence']))
    for item, result in rows:
        if result and result.get('worker_outcome') == 'skipped':
            continue
        mutation = item['mutations'][0]
        path = mutation['module_path']
        lineno = mutation['start_pos'][0]
        text = sources[path].splitlines()[lineno - 1]
        module = os.path.basename(path)
        key = (module, mutation['operator_name'], text.strip())
        nth = seen[key]
        seen[key] += 1
        if not result:
            outcome = 'pending'
        elif result.get('worker_outcome') != 'normal':
            outcome = 'incompetent'
        elif result.get('test_outcome') == 'killed':
            outcome = ('timeout' if result.get('output') == 'timeout'
                       else 'killed')
        else:
            outcome = result.get('test_outcome')
        yield {'id': mutant_id(*key, nth=nth), 'module': module,
               'line': lineno, 'operator': mutation['operator_name'],
               'definition': mutation.get('definition_name') or '-',
               'outcome': outcome,
               'diff': (result or {}).get('diff') or ''}


def classify(found, equivalents):
    """Counts over the mutants; a survivor listed in equivalents is one."""
    c = collections.Counter()
    for m in found:
        outcome = m['outcome']
        if outcome == 'survived' and m['id'] in equivalents:
            outcome = 'equivalent'
        if outcome == 'timeout':
            c['killed'] += 1
        c[outcome] += 1
    return Counts(c['killed'], c['timeout'], c['survived'],
                  c['equivalent'], c['incompetent'] + c['pending'])


def summary(killed, survived, equivalent):
    total = killed + survived
    score = 100.0 * killed / total if total else 0.0
    return ('mutation: %d killed, %d survived, %d equivalent, score %.1f %%'
            % (killed, survived, equivalent, score))


def describe(m):
    changed = [ln[1:].strip() for ln in m['diff'].splitlines()
               if ln.startswith('+') and not ln.startswith('+++')]
    return '%s  %s:%d %s %s%s' % (
        m['id'], m['module'], m['line'], m['definition'],
        m['operator'].replace('core/', ''),
        ('  => ' + ' / '.join(changed)[:120]) if changed else '')


def run(cmd, cwd, log, check=True, env=None):
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True,
                          env=dict(os.environ, **(env or {})))
    with open(log, 'a') as f:
        f.write('$ %s\n%s\n' % (' '.join(cmd), proc.stdout))
    if check and proc.returncode != 0:
        raise RuntimeError('%s failed (%d), see %s:\n%s' % (
            ' '.join(cmd[:2]), proc.returncode, log, proc.stdout[-2000:]))
    return proc.stdout, time.monotonic() - start


def cosmic_ray_pin():
    with open(CONSTRAINTS) as f:
        for line in f:
            if re.match(r'cosmic[-_]ray==', line, re.I):
                return line.strip()
    raise RuntimeError('constraints.txt pins no cosmic-ray')


def ensure_venvs():
    if not os.path.isdir(os.path.join(TREE, '.git')):
        subprocess.check_call([sys.executable, 'tools/series.py', 'tree'],
                              cwd=ROOT)
    if not os.path.exists(os.path.join(TEST_VENV, 'bin', 'python')):
        subprocess.check_call([sys.executable, 'tools/run_tests.py',
                               'wheel'], cwd=ROOT)
    pin = cosmic_ray_pin()
    stamp = os.path.join(CR_VENV, 'pinned')
    if os.path.exists(stamp) and open(stamp).read() == pin:
        return
    say('installing %s into %s' % (pin, os.path.relpath(CR_VENV, ROOT)))
    shutil.rmtree(CR_VENV, ignore_errors=True)
    subprocess.check_call([sys.executable, '-m', 'venv', CR_VENV])
    subprocess.check_call([os.path.join(CR_VENV, 'bin', 'pip'), 'install',
                           '-q', '-c', CONSTRAINTS, pin])
    with open(stamp, 'w') as f:
        f.write(pin)


def toml_list(items):
    return '[%s]' % ', '.join(json.dumps(i) for i in items)


def config(module_path, test_command, timeout, lines, urls):
    return '\n'.join([
        '[cosmic-ray]',
        'module-path = %s' % json.dumps(module_path),
        'timeout = %.1f' % timeout,
        'excluded-modules = []',
        'test-command = %s' % json.dumps(test_command),
        '[cosmic-ray.distributor]',
        'name = "http"',
        '[cosmic-ray.distributor.http]',
        'worker-urls = %s' % toml_list(urls),
        '[cosmic-ray.filters.operators-filter]',
        'exclude-operators = %s' % toml_list(EXCLUDE),
        '[cosmic-ray.filters.line-filter.lines]',
        '%s = %s' % (json.dumps(module_path),
                     toml_list('%d-%d' % r for r in lines)),
        ''])


def test_command(tests):
    """The tests of a target, from a worker's clone, stopping at a failure.

    A killed mutant needs no more tests.
    """
    return ' '.join(['env', 'PYTHONPATH=.',
                     'OS_TEST_TIMEOUT=%d' % TEST_TIMEOUT,
                     os.path.join(TEST_VENV, 'bin', 'python'), '-m',
                     'testtools.run', '--failfast'] +
                    [TESTS + t for t in tests])


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_port(port, proc, log, deadline=60):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError('a cosmic-ray worker exited, see %s' % log)
        try:
            socket.create_connection(('127.0.0.1', port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError('a cosmic-ray worker did not listen, see %s' % log)


class Workers(object):
    """JOBS ``cosmic-ray http-worker``s, each on a clone of its own."""

    def __init__(self, jobs):
        self.procs, self.urls, self.copies = [], [], []
        shutil.rmtree(WORK, ignore_errors=True)
        os.makedirs(WORK)
        for n in range(jobs):
            copy = os.path.join(WORK, 'worker%d' % n)
            subprocess.check_call(['git', 'clone', '-q', '--local', TREE,
                                   copy])
            port = free_port()
            log = open(copy + '.log', 'w')
            self.procs.append(subprocess.Popen(
                [os.path.join(CR_VENV, 'bin', 'cosmic-ray'), 'http-worker',
                 '--port', str(port)], cwd=copy, stdout=log,
                stderr=subprocess.STDOUT))
            wait_for_port(port, self.procs[-1], log.name)
            self.urls.append('http://127.0.0.1:%d' % port)
            self.copies.append(copy)

    def stop(self):
        for proc in self.procs:
            proc.kill()
        for proc in self.procs:
            proc.wait()


def run_target(module, workers, count_only=False):
    """Mutate one module on the workers' clones; return its mutants."""
    lines_kind, tests = TARGETS[module]
    name = os.path.join(WORK, module[:-3])
    log, cfg, db = name + '.log', name + '.toml', name + '.sqlite'
    path = DRIVERS + module
    first = workers.copies[0]
    with open(os.path.join(first, path)) as f:
        source = f.read()
    if lines_kind == 'series':
        diff, _ = run(['git', 'diff', '-U0', 'upstream', 'HEAD', '--',
                       path], first, log)
        lines = added_lines(diff)
    else:
        lines = [(1, len(source.splitlines()))]
    cmd = test_command(tests)
    cr = os.path.join(CR_VENV, 'bin')
    start = time.monotonic()
    took = 0.0
    with open(cfg, 'w') as f:
        f.write(config(path, cmd, 3600, lines, workers.urls))
    if not count_only:
        _, took = run([os.path.join(cr, 'cosmic-ray'), 'baseline', cfg],
                      first, log)
    timeout = max(MIN_TIMEOUT, TIMEOUT_FACTOR * took)
    with open(cfg, 'w') as f:
        f.write(config(path, cmd, timeout, lines, workers.urls))
    run([os.path.join(cr, 'cosmic-ray'), 'init', cfg, db], first, log)
    run([os.path.join(cr, 'cr-filter-operators'), db, cfg], first, log)
    run([os.path.join(cr, 'cr-filter-lines'), db, '--config', cfg], first,
        log)
    pending = sum(1 for _ in mutants(
        run([os.path.join(cr, 'cosmic-ray'), 'dump', db], first, log)[0],
        {path: source}))
    say('%s: %d mutants, tests %s (baseline %.0f s, timeout %.0f s)' % (
        module, pending, ', '.join(tests), took, timeout))
    if count_only:
        return [], pending
    run([os.path.join(cr, 'cosmic-ray'), 'exec', cfg, db], first, log)
    dump, _ = run([os.path.join(cr, 'cosmic-ray'), 'dump', db], first, log)
    found = list(mutants(dump, {path: source}))
    for copy in workers.copies:
        status, _ = run(['git', 'status', '--porcelain', '--', path], copy,
                        log)
        if status.strip():
            raise RuntimeError('%s was left mutated in %s' % (module, copy))
    return found, time.monotonic() - start


def main(argv):
    if '-h' in argv or '--help' in argv:
        print(__doc__)
        print('usage: tools/mutate.py [--count] [TARGET ...]; targets: %s'
              % ', '.join(TARGETS))
        return 0
    count_only = '--count' in argv
    only = [a for a in argv[1:] if a != '--count'] or list(TARGETS)
    unknown = [m for m in only if m not in TARGETS]
    if unknown:
        say('unknown target(s) %s; targets: %s' % (
            ', '.join(unknown), ', '.join(TARGETS)))
        return 2
    try:
        equivalents = load_equivalents()
    except ValueError as exc:
        say('%s: %s' % (os.path.relpath(EQUIVALENTS, ROOT), exc))
        return 2
    ensure_venvs()
    start = time.monotonic()
    found, total = [], [0]
    # SIGTERM (a CI timeout, kill) stops the workers too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workers = Workers(int(os.environ.get('JOBS', str(JOBS))))
    try:
        for module in only:
            mine, took = run_target(module, workers, count_only)
            if count_only:
                total[0] += took
                continue
            found += mine
            c = classify(mine, equivalents)
            if not count_only:
                say('%s: %d killed (%d by timeout), %d survived, %d '
                    'equivalent, %d incompetent in %.0f s' % (
                        module, c.killed, c.timeouts, c.survived,
                        c.equivalent, c.incompetent, took))
    finally:
        workers.stop()
    if count_only:
        say('%d mutants in all' % total[0])
        return 0
    survivors = [m for m in found
                 if m['outcome'] == 'survived' and m['id'] not in
                 equivalents]
    if survivors:
        say('survivors (kill them with a test, or list them in %s):'
            % os.path.relpath(EQUIVALENTS, ROOT))
        for m in sorted(survivors, key=lambda m: (m['module'], m['line'])):
            print('  ' + describe(m))
    ids = {m['id']: m for m in found}
    for ident in sorted(equivalents):
        if only == list(TARGETS) and ident not in ids:
            say('warning: equivalent %s matches no mutant (stale)' % ident)
        elif ident in ids and ids[ident]['outcome'] != 'survived':
            say('warning: equivalent %s was %s' % (
                ident, ids[ident]['outcome']))
    c = classify(found, equivalents)
    say('%d mutants of %s in %.0f s wall time (%d incompetent: cosmic-ray '
        'could not apply them; not counted)' % (
            len(found), ', '.join(only), time.monotonic() - start,
            c.incompetent))
    print(summary(c.killed, c.survived, c.equivalent), flush=True)
    # Survivors, or nothing counted at all, fail the run.
    return 1 if c.survived or not c.killed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
