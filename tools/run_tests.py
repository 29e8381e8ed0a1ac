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

Series (SERIES, see series.layout): a run without stage names runs the
stages above for the default series, then venv to functional for every
other series (stage names "stable-2026.1 unit"; the backport's own build
dir, venv and constraints.txt; its functional stage runs
BACKPORT_FUNCTIONAL only), tooling once, and one summary over all.
``--series NAME`` or $SERIES: that series' stages only.  Given stage
names run for the selected series (default: the default one).

Bisect trim (pep8_only, added_tests_only): a patch that changes only
files the unit suite neither imports nor runs (functional tests, docs,
release notes, tox.ini, .zuul.yaml, bindep.txt) gets flake8 alone in the
bisect stage; a patch that only adds files gets flake8 and the unit test
modules it adds.

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
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import series  # noqa: E402  (the layout of each series)

PYTHON = sys.executable


def select(name):
    """Point the stages at the series name (series.layout's paths).

    Sets SERIES (the name, '' for the default series), LABEL (the prefix
    of its stage names), BUILD, TREE, VENV, BIN and CONSTRAINTS.
    """
    global SERIES, LABEL, BUILD, TREE, VENV, BIN, CONSTRAINTS
    layout = series.layout(name, ROOT)
    SERIES, LABEL = layout.name, layout.label
    BUILD, TREE, VENV = layout.build, layout.tree, layout.venv
    BIN = os.path.join(VENV, 'bin')
    CONSTRAINTS = layout.constraints


select(series.DEFAULT_SERIES)


class StageFailed(Exception):
    pass


def run(cmd, cwd=ROOT, env=None, log=None):
    """Run cmd, echo its output to a log file and return (rc, output)."""
    full_env = dict(os.environ, SERIES=SERIES, **(env or {}))
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
# What the functional stage of a series other than the default one (the
# backport) runs: the heartbeat scenarios only, not upstream's whole
# functional suite a second time, to keep make test within the CI time
# (not slow, not mod_wsgi).
BACKPORT_FUNCTIONAL = ('oslo_messaging.tests.functional.test_heartbeat_'
                       '(in_pthread|stalls|fork|uwsgi|service|faults)')


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


# The bisect stage's trim (CI time: the full unit suite takes about 75 s
# a patch): a patch that changes only what the unit suite neither imports
# nor runs gets flake8 alone.
NOT_UNIT_TESTED_DIRS = ('oslo_messaging/tests/functional/', 'doc/',
                        'releasenotes/')
NOT_UNIT_TESTED_FILES = ('tox.ini', '.zuul.yaml', 'bindep.txt')


def pep8_only(paths):
    """Whether a patch changing paths needs flake8 only in bisect.

    True when every path is under NOT_UNIT_TESTED_DIRS or is one of
    NOT_UNIT_TESTED_FILES; a patch changing nothing is tested in full.
    """
    return bool(paths) and all(
        path.startswith(NOT_UNIT_TESTED_DIRS) or
        path in NOT_UNIT_TESTED_FILES for path in paths)


def added_tests_only(changes):
    """The unit test modules a patch that only adds files is tested by.

    changes: the (status, path) pairs of the patch (changed_files).  A
    patch that only adds files cannot change what the existing unit
    tests exercise (nothing imported those files before it): the test
    modules it adds (test_*.py, not functional) are what it can break.
    Their dotted names; None if the patch changes or deletes a file.
    """
    if not changes or any(status != 'A' for status, _ in changes):
        return None
    return [path[:-3].replace('/', '.') for _, path in changes
            if path.startswith('oslo_messaging/tests/') and
            not path.startswith(NOT_UNIT_TESTED_DIRS) and
            os.path.basename(path).startswith('test_') and
            path.endswith('.py')]


def changed_files(tree, sha):
    """(status, path) of each file commit sha of tree changes.

    Status as git diff --name-status says, without rename detection (a
    rename is a deletion and an addition).
    """
    out = subprocess.run(
        ['git', 'diff', '--no-renames', '--name-status', sha + '~1', sha],
        cwd=tree, stdout=subprocess.PIPE, text=True, check=True).stdout
    return [tuple(line.split('\t', 1)) for line in out.splitlines()]


def stage_bisect():
    """pep8, unit (and BISECT_FUNCTIONAL) after each earlier patch.

    The last patch is the tree the pep8, unit and functional stages
    test; a patch series must pass after each of its patches (git
    bisect, Gerrit).  Where a test module matches BISECT_FUNCTIONAL,
    those functional tests run too, against a private broker.  A patch
    that pep8_only() trims gets flake8 alone; one that only adds files,
    flake8 and its own test modules (added_tests_only()).
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
        changes = changed_files(TREE, sha)
        added = added_tests_only(changes)
        if rc == 0 and (pep8_only([path for _, path in changes]) or
                        added == []):
            passed += 1
            print('  ok after: %s (pep8 only: touches no unit-tested file)'
                  % subject)
            continue
        if rc == 0:
            rc, out = run(isolated_network() + ['stestr', 'run',
                                                '--concurrency', '2'] +
                          (added or []), cwd=dest, env=unit_env())
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
            print('  ok after: %s (%d unit tests%s passed%s)'
                  % (subject, units,
                     ' of the files it adds' if added else '',
                     ', functional too' if ran else ''))
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
    """The series applies on the pinned sdist; commit messages lint.

    For a series other than the default one, also the identity check of
    the files both series add (series.py compare).
    """
    only = [] if SERIES else ['--only']
    need(*run([PYTHON, 'tools/series.py', 'check'] + only), 'make check')
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
    tests = (BACKPORT_FUNCTIONAL if SERIES
             else 'oslo_messaging.tests.functional')
    rc, out = run_with_private_broker(
        ['stestr', 'run', '--concurrency', '2', '--exclude-regex',
         SLOW_TESTS, tests], TREE, log)
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
# What a run without stage names (make test, CI) runs, for each series.
DEFAULT_STAGES = ['venv', 'check', 'tree', 'wheel', 'pep8', 'unit', 'bisect',
                  'functional', 'tooling']
# Stages of no series (they test this repository's tools): run once, with
# the first series of the run.
ONCE_STAGES = ('tooling',)


def usage():
    """What --help prints: the stages, what they need, the options."""
    lines = ['usage: run_tests.py [-h] [--series NAME] [STAGE ...]', '',
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
              'root on Debian.', '',
              'Series: --series NAME (or $SERIES) runs the stages of that '
              'series only', '(default stages: all but tooling); without '
              'it, given stages run for the', 'default series, and a run '
              'without stage names runs the default series\'',
              'stages, then those of every other series (named "NAME '
              'stage"), tooling once.']
    return '\n'.join(lines)


def plan(stages, series_name, known):
    """The (series, stage) pairs to run, in order.

    series_name: the series asked for (--series or $SERIES), or None.
    Without it, given stages run for the default series; no stages: the
    default stages of every known series, ONCE_STAGES with the first.
    """
    if series_name is not None:
        runs = [series_name]
    elif stages:
        runs = [series.DEFAULT_SERIES]
    else:
        runs = known
    deps_of = {name: deps for name, _, deps in STAGES}
    pairs = []
    for index, name in enumerate(runs):
        wanted = set(stages) or set(DEFAULT_STAGES)
        if index > 0 or (series_name is not None and not stages):
            wanted -= set(ONCE_STAGES)
        todo = set()
        while wanted:
            stage = wanted.pop()
            todo.add(stage)
            wanted |= set(deps_of[stage]) - todo
        pairs += [(name, stage) for stage, _, _ in STAGES if stage in todo]
    return pairs


def series_option(argv):
    """(--series NAME or $SERIES or None, argv without the option)."""
    rest, chosen = [], os.environ.get('SERIES') or None
    args = iter(argv)
    for arg in args:
        if arg == '--series':
            chosen = next(args, '')
        elif arg.startswith('--series='):
            chosen = arg[len('--series='):]
        else:
            rest.append(arg)
    return chosen, rest


def main(argv):
    if {'-h', '--help'} & set(argv):
        print(usage())
        return 0
    chosen, argv = series_option(argv)
    names = [name for name, _, _ in STAGES]
    unknown = [a for a in argv if a not in names]
    if unknown:
        print('unknown stage(s): %s (stages: %s; see --help)'
              % (', '.join(unknown), ' '.join(names)))
        return 2
    try:
        if chosen is not None:
            series.layout(chosen, ROOT)
        pairs = plan(argv, chosen, series.known_series(ROOT))
    except series.SeriesError as exc:
        print('run_tests: %s' % exc)
        return 2
    funcs = {name: (func, deps) for name, func, deps in STAGES}
    width = max([11] + [len(series.layout(n, ROOT).label + s)
                        for n, s in pairs])
    results = {}
    summary = []
    total_passed = total_failed = 0
    for series_name, name in pairs:
        select(series_name)
        func, deps = funcs[name]
        title = LABEL + name
        print('==> %s' % title, flush=True)
        start = time.monotonic()
        broken = [LABEL + d for d in deps
                  if results.get((series_name, d)) is False]
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
        results[(series_name, name)] = not failed
        total_passed += passed
        total_failed += failed
        summary.append('%-*s %s (%.0f s)' % (width, title, line,
                                             time.monotonic() - start))
        print('<== %s' % summary[-1], flush=True)
    select(series.DEFAULT_SERIES)
    print('\nSummary:')
    for line in summary:
        print('  ' + line)
    print('%d passed, %d failed' % (total_passed, total_failed))
    return 1 if total_failed or not summary else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
