#!/usr/bin/env python3
"""The test command (``make test``): set everything up, run every stage.

Stages, in order; each prints one closing line, and the run ends with
``N passed, N failed`` over all of them:

  venv        a fresh virtualenv at build/venv from constraints.txt
  check       the series applies on the pinned sdist; commit messages lint
  tree        build/oslo.messaging rebuilt from the pin and the series
  wheel       the wheel built from the tree, installed into the venv
  pep8        flake8 + hacking with upstream's [flake8] settings
  unit        upstream's whole unit suite plus ours, with stestr, in a
              network namespace with only loopback (when we are root)
  bisect      pep8 and the unit suite after each earlier patch too, and
              the functional tests BISECT_FUNCTIONAL names where the
              patch has a test module they match
  functional  oslo_messaging.tests.functional against a private RabbitMQ
              started by pifpaf
  tooling     pytest of tools/tests

Each stage checks for the Debian packages it needs (SYSTEM_PACKAGES) and
installs them as root on Debian; ``--help`` lists stages and packages.
Nothing is reused from an earlier run but the verified sdist download.
Stage results count their tests; a stage without tests (venv, check,
tree, wheel, pep8) counts as one, bisect as one per patch it checked.
A failing stage does not stop the stages that do not depend on it.
"""

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
BUILD = os.path.join(ROOT, 'build')
TREE = os.path.join(BUILD, 'oslo.messaging')
VENV = os.path.join(BUILD, 'venv')
BIN = os.path.join(VENV, 'bin')
CONSTRAINTS = os.path.join(ROOT, 'constraints.txt')
PYTHON = sys.executable


class StageFailed(Exception):
    pass


def run(cmd, cwd=ROOT, env=None, log=None):
    """Run cmd, echo its output to a log file and return (rc, output)."""
    full_env = dict(os.environ, **(env or {}))
    full_env['PATH'] = BIN + os.pathsep + full_env.get('PATH', '')
    print('  $ ' + ' '.join(cmd), flush=True)
    proc = subprocess.run(cmd, cwd=cwd, env=full_env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if log:
        with open(log, 'a') as f:
            f.write(proc.stdout)
    return proc.returncode, proc.stdout


def tail(output, lines=40):
    return '\n'.join(output.rstrip().splitlines()[-lines:])


def need(rc, output, what):
    if rc != 0:
        print(tail(output))
        raise StageFailed(what)


# Debian packages each stage needs beyond Python, git and make.  A stage
# checks for them when it starts and, as root on Debian, installs the
# missing ones with apt-get; the stages not listed need none.
SYSTEM_PACKAGES = {
    # loopback in the unit tests' network namespace
    'unit': ('iproute2',),
    # the unit suite as above; BISECT_FUNCTIONAL's private brokers
    'bisect': ('iproute2', 'rabbitmq-server'),
    'slow': ('rabbitmq-server',),
    'functional': (
        'rabbitmq-server',
        # uwsgi is compiled by pip (tools/requirements-functional.txt)
        'gcc', 'python3-dev',
        # certificates of the TLS tests
        'openssl',
        # mod_wsgi is compiled by pip against apxs, in a virtualenv of
        # the system's python3 whose module's RUNPATH the tests check
        # with readelf, run as Apache's user with runuser
        'apache2', 'apache2-dev', 'python3-venv', 'binutils',
        'util-linux'),
}


def _python_h():
    import sysconfig
    return os.path.exists(os.path.join(sysconfig.get_paths()['include'],
                                       'Python.h'))


# How to tell that a Debian package is installed: by a file it ships.
PACKAGE_FOUND = {
    'gcc': lambda: shutil.which('gcc'),
    'python3-dev': _python_h,
    'openssl': lambda: shutil.which('openssl'),
    'iproute2': lambda: shutil.which('ip'),
    'rabbitmq-server': lambda: any(os.path.exists(p) for p in (
        '/usr/lib/rabbitmq/bin/rabbitmq-server',
        '/usr/sbin/rabbitmq-server')),
    'apache2': lambda: os.path.exists('/usr/sbin/apache2'),
    'apache2-dev': lambda: shutil.which('apxs') or os.path.exists(
        '/usr/bin/apxs'),
    'python3-venv': lambda: bool(glob.glob('/usr/lib/python3*/ensurepip')),
    'binutils': lambda: shutil.which('readelf'),
    'util-linux': lambda: shutil.which('runuser'),
}


def missing_system_packages(stage):
    """The Debian packages that stage needs and does not find."""
    return sorted(name for name in SYSTEM_PACKAGES.get(stage, ())
                  if not PACKAGE_FOUND[name]())


# The functional tests that the bisect stage also runs after each patch
# (an stestr filter) at the patches that have the test module
# BISECT_FUNCTIONAL_MODULE: the fork scenarios, so that every patch of the
# series is checked for behaviour across fork, not only for pep8 and the
# unit suite.  They start private brokers of their own.
BISECT_FUNCTIONAL_MODULE = ('oslo_messaging.tests.functional.'
                            'test_heartbeat_fork')
BISECT_FUNCTIONAL = (r'test_heartbeat_fork\.(ForkAfterCallsTestCase\.'
                     r'test_fork_after_rpc_calls$|ForkWhileConnectingTestCase'
                     r'\.test_fork_in_the_middle_of_a_reconnect$)')

# Seconds a test may run before it fails with the stacks of its threads
# (OS_TEST_TIMEOUT, see oslo_messaging/tests/utils.py).
UNIT_TEST_TIMEOUT = 120
FUNCTIONAL_TEST_TIMEOUT = 900
# The six-minute stall of five default heartbeat thresholds: stage slow.
SLOW_TESTS = 'oslo_messaging.tests.functional.test_heartbeat_slow'


def test_modules(tree):
    """Dotted names of the test modules (test_*.py) of a tree."""
    found = []
    top = os.path.join(tree, 'oslo_messaging', 'tests')
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for fname in sorted(filenames):
            if fname.startswith('test_') and fname.endswith('.py'):
                rel = os.path.relpath(os.path.join(dirpath, fname[:-3]),
                                      tree)
                found.append(rel.replace(os.sep, '.'))
    return found


def bisect_functional(tree, log):
    """Run BISECT_FUNCTIONAL in tree if a module matches; (ran, ok).

    Prints one line saying whether the tests ran and how many passed.
    """
    if BISECT_FUNCTIONAL_MODULE not in test_modules(tree):
        print('  functional %s: not run, no test module matches'
              % BISECT_FUNCTIONAL)
        return False, True
    rc, out = run(['stestr', 'run', '--concurrency', '2', BISECT_FUNCTIONAL],
                  cwd=tree, log=log, env=functional_env())
    try:
        passed, failed, skipped = stestr_counts(out)
    except StageFailed:
        passed, failed, skipped = 0, 0, 0
    ok = rc == 0 and not failed and passed > 0
    if not ok:
        show_failure(out, log)
    print('  functional %s: ran, %d passed, %d failed, %d skipped'
          % (BISECT_FUNCTIONAL, passed, failed, skipped))
    return True, ok


def stage_bisect():
    """pep8, unit (and BISECT_FUNCTIONAL) after each earlier patch.

    The last patch is the tree the pep8, unit and functional stages
    test; a patch series must pass after each of its patches (git
    bisect, Gerrit).  Where a test module matches BISECT_FUNCTIONAL,
    those functional tests run too, against a private broker.
    """
    commits = subprocess.run(
        ['git', 'rev-list', '--reverse', 'upstream..HEAD~1'], cwd=TREE,
        stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    dest = os.path.join(BUILD, 'bisect')
    log = os.path.join(BUILD, 'bisect-functional.log')
    passed = failed = 0
    for sha in commits:
        subject = subprocess.run(['git', 'log', '-1', '--format=%s', sha],
                                 cwd=TREE, stdout=subprocess.PIPE,
                                 text=True).stdout.strip()
        shutil.rmtree(dest, ignore_errors=True)
        need(*run(['git', 'clone', '-q', TREE, dest]), 'git clone')
        need(*run(['git', 'checkout', '-q', sha], cwd=dest), 'checkout')
        rc, out = run([os.path.join(BIN, 'flake8')], cwd=dest)
        if rc == 0:
            rc, out = run(isolated_network() + ['stestr', 'run',
                                                '--concurrency', '2'],
                          cwd=dest, env=unit_env())
        if rc != 0:
            failed += 1
            print(tail(out))
            for test_id in failed_tests(out):
                print('    failed: %s' % test_id)
            print('  FAILED after: %s' % subject)
            continue
        units = stestr_counts(out)[0]
        ran, ok = bisect_functional(dest, log)
        if ok:
            passed += 1
            print('  ok after: %s (%d unit tests passed%s)'
                  % (subject, units, ', functional too' if ran else ''))
        else:
            failed += 1
            print('  FAILED after: %s (functional %s)'
                  % (subject, BISECT_FUNCTIONAL))
    shutil.rmtree(dest, ignore_errors=True)
    return passed, failed, 0


def ensure_system_packages(stage):
    """Install (or name) the Debian packages that stage misses."""
    missing = missing_system_packages(stage)
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which('apt-get'):
        print('  missing %s: installing with apt-get' % ', '.join(missing))
        env = {'DEBIAN_FRONTEND': 'noninteractive'}
        need(*run(['apt-get', 'update', '-q']), 'apt-get update')
        need(*run(['apt-get', 'install', '-y', '-q'] + missing, env=env),
             'apt-get install %s' % ' '.join(missing))
        return
    raise StageFailed('missing system packages: %s (Debian/Ubuntu: '
                      'apt-get install %s); install them and run again'
                      % (', '.join(missing), ' '.join(missing)))


def stage_venv():
    """A fresh build/venv, every install pinned by constraints.txt."""
    need(*run([PYTHON, '-m', 'venv', '--clear', VENV]), 'python3 -m venv')
    pip = [os.path.join(BIN, 'python'), '-m', 'pip', 'install', '-q',
           '-c', CONSTRAINTS]
    need(*run(pip + ['pip', 'wheel', 'setuptools']), 'pip upgrade')
    need(*run(pip + ['-r', os.path.join(ROOT, 'tools', 'requirements.txt')]),
         'pip install tools/requirements.txt')
    return 1, 0, 0


def stage_check():
    """The series applies on the pinned sdist; commit messages lint."""
    need(*run([PYTHON, 'tools/series.py', 'check']), 'make check')
    return 1, 0, 0


def stage_tree():
    """build/oslo.messaging rebuilt from the pin and patches/."""
    need(*run([PYTHON, 'tools/series.py', 'tree']), 'make tree')
    return 1, 0, 0


def stage_wheel():
    """The wheel built from the tree, installed into the venv."""
    rc, out = run([os.path.join(BIN, 'python'), 'tools/series.py', 'wheel'])
    need(rc, out, 'make wheel')
    wheel = re.findall(r'wrote (\S+\.whl)', out)[-1]
    pip = [os.path.join(BIN, 'python'), '-m', 'pip', 'install', '-q',
           '-c', CONSTRAINTS]
    need(*run(pip + ['-r', os.path.join(TREE, 'requirements.txt'),
                     '-r', os.path.join(TREE, 'test-requirements.txt')]),
         'pip install test requirements')
    need(*run(pip + ['--no-deps', '--force-reinstall', wheel]),
         'pip install the wheel')
    # The installed wheel's entry points, run from outside the tree.
    rc, out = run([os.path.join(BIN, 'oslo-config-generator'),
                   '--namespace', 'oslo.messaging'], cwd=BUILD)
    need(rc, out, 'oslo-config-generator from the wheel')
    if '[oslo_messaging_rabbit]' not in out or \
            '#heartbeat_in_pthread = false' not in out:
        raise StageFailed('oslo-config-generator output lacks '
                          '[oslo_messaging_rabbit] heartbeat_in_pthread')
    rc, out = run([os.path.join(BIN, 'python'), '-c',
                   'from importlib.metadata import entry_points as e; '
                   'print(e(group="oslo.messaging.drivers")["rabbit"]'
                   '.load())'], cwd=BUILD)
    need(rc, out, 'the rabbit driver entry point of the wheel')
    return 1, 0, 0


def stage_pep8():
    """flake8 + hacking with upstream's [flake8] settings."""
    rc, out = run([os.path.join(BIN, 'flake8')], cwd=TREE)
    need(rc, out, 'flake8 found problems')
    return 1, 0, 0


def stestr_counts(output):
    found = {k: int(v) for k, v in re.findall(
        r'- (Passed|Failed|Skipped): (\d+)', output)}
    if not found:
        raise StageFailed('stestr printed no totals')
    return found.get('Passed', 0), found.get('Failed', 0), found.get(
        'Skipped', 0)


def readable(output, width=300):
    """output with pifpaf's quoted program output split into lines.

    pifpaf reports a program that failed to start as one line,
    ``Output: b'...\\n...'``; long lines are cut to width.
    """
    lines = output.replace('\\r\\n', '\n').replace('\\n', '\n').splitlines()
    return '\n'.join(line if len(line) <= width else line[:width] + ' [...]'
                     for line in lines)


def rabbitmq_boot_error(output):
    """Why RabbitMQ did not boot, from its Erlang exit report, or None."""
    listener = re.search(r'could_not_start_listener,"?([\d.:]+)"?,(\d+)',
                         output)
    if listener and 'eaddrinuse' in output:
        return ('RabbitMQ could not listen on %s:%s: address already in '
                'use (eaddrinuse)' % listener.groups())
    boot = re.search(r'init terminating in do_boot \((.*)\)', output)
    if boot:
        return 'RabbitMQ did not boot: %s' % boot.group(1)[:200]
    return None


def failure_reason(output):
    """One line saying why a command failed, from its output.

    Why RabbitMQ did not boot (its exit report) and the error lines
    (pifpaf's ``ERROR [pifpaf] ...``, RabbitMQ's ``ERROR: ...``), else
    the last line of output.
    """
    lines = [line.strip() for line in readable(output, 500).splitlines()
             if line.strip()]
    if not lines:
        return 'no output'
    boot = rabbitmq_boot_error(readable(output, 10 ** 6))
    errors = [boot] if boot else []
    for line in lines:
        if re.search(r'\bERROR\b', line):
            # RabbitMQ's log prefix: "<time> [error] <0.132.0> "
            line = re.sub(r'^.*\[error\] <[\d.]+> ', '', line)
            if line not in errors:
                errors.append(line)
    return '; '.join(errors[:3]) if errors else lines[-1]


def failed_tests(output):
    """The ids of the tests stestr reported as failed, in order."""
    found = []
    for test_id in re.findall(r'^\{\d+\} (\S+) .*\.\.\. FAILED$', output,
                              re.MULTILINE):
        if test_id not in found:
            found.append(test_id)
    return found


def show_failure(output, log):
    print(tail(readable(output), 60))
    failed = failed_tests(output)
    if failed:
        # Named last, so that a CI log cut to its tail still says which.
        print('  failed tests:')
        for test_id in failed:
            print('    %s' % test_id)
    print('  (full log: %s)' % os.path.relpath(log))


def stestr_result(rc, output, log):
    """The counts of a stestr run, printing why it failed if it did."""
    try:
        passed, failed, skipped = stestr_counts(output)
    except StageFailed as exc:
        show_failure(output, log)
        raise StageFailed('%s (exit status %d): %s'
                          % (exc, rc, failure_reason(output)))
    if rc != 0 or failed:
        show_failure(output, log)
    return passed, failed, skipped


def isolated_network():
    """Command prefix running a command with only loopback, if we can."""
    probe = subprocess.run(['unshare', '-n', 'true'],
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    if probe.returncode == 0:
        return ['unshare', '-n', 'sh', '-c', 'ip link set lo up && exec "$@"',
                'isolated']
    print('  note: cannot unshare the network namespace (not root?); '
          'test_notifier_retry_connection_fails_rabbit fails if a broker '
          'listens on localhost:5672')
    return []


def unit_env():
    return {'OS_TEST_TIMEOUT': str(UNIT_TEST_TIMEOUT)}


def functional_env():
    """What the functional tests that start their own brokers need."""
    return {'OS_TEST_TIMEOUT': str(FUNCTIONAL_TEST_TIMEOUT),
            'TRANSPORT_DRIVER': 'rabbit',
            'HEARTBEAT_CONSTRAINTS': CONSTRAINTS}


def stage_unit():
    """Upstream's unit suite plus ours (stestr), loopback only."""
    log = os.path.join(BUILD, 'unit.log')
    rc, out = run(isolated_network() + ['stestr', 'run', '--concurrency',
                                        '2'], cwd=TREE, log=log,
                  env=unit_env())
    return stestr_result(rc, out, log)


def pifpaf_env(tmp):
    """Environment for a private pifpaf broker.

    The machine's /etc/rabbitmq/rabbitmq.conf may pin a listener on 5672
    (the system broker); point the private node at an empty config file.
    A node that fails to boot writes its Erlang crash dump to the
    temporary directory, not to the current one (the tree).
    """
    conf = os.path.join(tmp, 'rabbitmq.conf')
    open(conf, 'w').close()
    return {'RABBITMQ_CONFIG_FILE': conf,
            'ERL_CRASH_DUMP': os.path.join(tmp, 'erl_crash.dump')}


# pifpaf's rabbitmq driver starts rabbitmq-server on 127.0.0.1:PORT and
# leaves RABBITMQ_DIST_PORT alone, so the node also listens for Erlang
# distribution on 127.0.0.1:PORT + 20000 (RabbitMQ's default).
RABBITMQ_DIST_PORT_OFFSET = 20000
# Printed inside the broker's pifpaf run before the tests start.
BROKER_UP = 'run_tests: private broker up'
BROKER_ATTEMPTS = 3


def port_is_free(port, host='127.0.0.1'):
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_broker_port(host='127.0.0.1', attempts=200):
    """A free port for a private RabbitMQ node whose port + 20000 is free.

    The kernel picks the port (bind to port 0); one whose distribution
    port is taken or above 65535 is skipped.
    """
    for _ in range(attempts):
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
            dist = port + RABBITMQ_DIST_PORT_OFFSET
            if dist <= 65535 and port_is_free(dist, host):
                return port
    raise StageFailed('found no free port P on %s with P + %d free too'
                      % (host, RABBITMQ_DIST_PORT_OFFSET))


def broker_nodename(port, prefix='run-tests'):
    """A node name that no other broker on this machine has.

    RabbitMQ refuses a second node of a name (pifpaf adds ``@localhost``),
    such as pifpaf's default ``pifpaf``, with duplicate_node_name; no two
    live processes share a pid, no two live brokers a port.  The prefix
    is $BROKER_NODE_PREFIX when set (to tell whose brokers they are).
    """
    prefix = os.environ.get('BROKER_NODE_PREFIX') or prefix
    return '%s-%d-%d' % (prefix, os.getpid(), port)


def broker_url(port):
    return 'rabbit://pifpaf:secret@127.0.0.1:%d/' % port


def broker_command(port, nodename, command):
    """command run by pifpaf next to a private RabbitMQ node."""
    return ['pifpaf', '--env-prefix', 'RABBITMQ', 'run', 'rabbitmq',
            '--port', str(port), '--nodename', nodename, '--',
            'sh', '-c', 'echo "%s: %s@localhost on 127.0.0.1:%d"; exec "$@"'
            % (BROKER_UP, nodename, port), 'sh'] + command


def run_with_private_broker(command, cwd, log):
    """Run command next to a private RabbitMQ of this run; (rc, output).

    The broker's URL is in RPC_TRANSPORT_URL and NOTIFY_TRANSPORT_URL,
    with TRANSPORT_DRIVER=rabbit.  A broker that does not start (its
    port taken since we found it free) is retried on another port; its
    reason is printed.
    """
    for attempt in range(1, BROKER_ATTEMPTS + 1):
        port = free_broker_port()
        nodename = broker_nodename(port)
        url = broker_url(port)
        with tempfile.TemporaryDirectory() as tmp:
            env = pifpaf_env(tmp)
            # TRANSPORT_DRIVER=rabbit runs upstream's RabbitMQFailoverTests
            # too (they start their own 3-node pifpaf cluster).
            # HEARTBEAT_CONSTRAINTS pins the virtualenv the mod_wsgi tests
            # build with the system's python3 for Apache.
            env.update(functional_env())
            env.update(RPC_TRANSPORT_URL=url, NOTIFY_TRANSPORT_URL=url)
            rc, out = run(broker_command(port, nodename, command),
                          cwd=cwd, env=env, log=log)
        if BROKER_UP in out:
            return rc, out
        print('  private broker %s on port %d did not start: %s'
              % (nodename, port, failure_reason(out)))
    show_failure(out, log)
    raise StageFailed('private broker did not start (%d attempts):'
                      ' %s' % (BROKER_ATTEMPTS, failure_reason(out)))


def stage_functional():
    """oslo_messaging.tests.functional against a private RabbitMQ."""
    pip = [os.path.join(BIN, 'python'), '-m', 'pip', 'install', '-q',
           '-c', CONSTRAINTS]
    need(*run(pip + ['-r', os.path.join(ROOT, 'tools',
                                        'requirements-functional.txt')]),
         'pip install tools/requirements-functional.txt')
    log = os.path.join(BUILD, 'functional.log')
    rc, out = run_with_private_broker(
        ['stestr', 'run', '--concurrency', '2', '--exclude-regex',
         SLOW_TESTS, 'oslo_messaging.tests.functional'], TREE, log)
    return stestr_result(rc, out, log)


def stage_slow():
    """The six-minute stall with default heartbeats (not run by default)."""
    log = os.path.join(BUILD, 'slow.log')
    rc, out = run(['stestr', 'run', SLOW_TESTS], cwd=TREE, log=log,
                  env=dict(functional_env(), HEARTBEAT_SLOW_TESTS='1'))
    return stestr_result(rc, out, log)


def stage_tooling():
    """pytest of tools/tests."""
    rc, out = run([os.path.join(BIN, 'python'), '-m', 'pytest', '-q',
                   '-p', 'no:cacheprovider', 'tools/tests'])
    counts = dict((k, int(v)) for v, k in re.findall(
        r'(\d+) (passed|failed|error|errors|skipped)', out.splitlines()[-1]
        if out.strip() else ''))
    failed = counts.get('failed', 0) + counts.get('error', 0) + counts.get(
        'errors', 0)
    if rc != 0 and not failed:
        failed = 1
    if rc != 0:
        print(tail(out))
    return counts.get('passed', 0), failed, counts.get('skipped', 0)


STAGES = [
    ('venv', stage_venv, ()),
    ('check', stage_check, ()),
    ('tree', stage_tree, ('check',)),
    ('wheel', stage_wheel, ('venv', 'tree')),
    ('pep8', stage_pep8, ('venv', 'tree')),
    ('unit', stage_unit, ('wheel',)),
    ('bisect', stage_bisect, ('wheel',)),
    ('functional', stage_functional, ('wheel',)),
    ('tooling', stage_tooling, ('venv',)),
    ('slow', stage_slow, ('wheel',)),
]
# What a run without stage names (make test, CI) runs.
DEFAULT_STAGES = ['venv', 'check', 'tree', 'wheel', 'pep8', 'unit', 'bisect',
                  'functional', 'tooling']


def usage():
    """What --help prints: the stages, what they need, the options."""
    lines = ['usage: run_tests.py [-h] [STAGE ...]', '',
             'Run the given stages (and the ones they need), or all of '
             'them.', '', 'stages, in order:']
    for name, func, deps in STAGES:
        doc = (func.__doc__ or '').strip().splitlines()[0]
        lines.append('  %-11s %s' % (name, doc))
        if deps:
            lines.append(' ' * 14 + 'after: %s' % ', '.join(deps))
        if SYSTEM_PACKAGES.get(name):
            lines += textwrap.wrap(
                'Debian packages: %s' % ' '.join(SYSTEM_PACKAGES[name]),
                width=76, initial_indent=' ' * 14,
                subsequent_indent=' ' * 16)
    lines += ['', 'Every stage needs Python 3, git and make; the Debian '
              'packages listed are', 'installed with apt-get when run as '
              'root on Debian.']
    return '\n'.join(lines)


def main(argv):
    if {'-h', '--help'} & set(argv):
        print(usage())
        return 0
    names = [name for name, _, _ in STAGES]
    unknown = [a for a in argv if a not in names]
    if unknown:
        print('unknown stage(s): %s (stages: %s; see --help)'
              % (', '.join(unknown), ' '.join(names)))
        return 2
    wanted = set(argv) or set(DEFAULT_STAGES)
    deps_of = {name: deps for name, _, deps in STAGES}
    todo = set()
    while wanted:
        name = wanted.pop()
        todo.add(name)
        wanted |= set(deps_of[name]) - todo
    results = {}
    summary = []
    total_passed = total_failed = 0
    for name, func, deps in STAGES:
        if name not in todo:
            continue
        print('==> %s' % name, flush=True)
        start = time.monotonic()
        broken = [d for d in deps if results.get(d) is False]
        if broken:
            passed, failed, skipped = 0, 1, 0
            line = 'FAILED: not run, %s failed' % ', '.join(broken)
        else:
            try:
                ensure_system_packages(name)
                passed, failed, skipped = func()
                line = '%s: %d passed, %d failed, %d skipped' % (
                    'ok' if not failed else 'FAILED', passed, failed,
                    skipped)
            except StageFailed as exc:
                passed, failed, skipped = 0, 1, 0
                line = 'FAILED: %s' % exc
        results[name] = not failed
        total_passed += passed
        total_failed += failed
        summary.append('%-11s %s (%.0f s)' % (name, line,
                                              time.monotonic() - start))
        print('<== %s' % summary[-1], flush=True)
    print('\nSummary:')
    for line in summary:
        print('  ' + line)
    print('%d passed, %d failed' % (total_passed, total_failed))
    return 1 if total_failed or not summary else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
