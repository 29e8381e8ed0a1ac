"""Tests of tools/run_tests.py: broker ports and names, failure reports."""

import os
import re
import shutil
import socket
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..'))
import run_tests  # noqa: E402

# What pifpaf prints when RabbitMQ refuses to boot (abridged).
PIFPAF_DUPLICATE = (
    "ERROR [pifpaf] Program did not print: `completed with .* plugins'\n"
    "Output: b'\\n2026-11-28 21:49:59.7+00:00 [error] <0.132.0> BOOT FAILED"
    "\\n2026-11-28 21:49:59.7+00:00 [error] <0.132.0> ERROR: node with "
    "name \"pifpaf\" is already running on host \"localhost\"\\n'\n")
STESTR_TOTALS = ('======\nTotals\n======\nRan: 3 tests in 1.0 sec.\n'
                 ' - Passed: 2\n - Skipped: 1\n - Expected Fail: 0\n'
                 ' - Failed: 0\n')


def test_port_is_free_sees_a_listener():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not run_tests.port_is_free(port)
    assert run_tests.port_is_free(port)


def test_free_broker_port_and_its_distribution_port_are_free():
    port = run_tests.free_broker_port()
    dist = port + run_tests.RABBITMQ_DIST_PORT_OFFSET
    assert dist <= 65535
    assert run_tests.port_is_free(port)
    assert run_tests.port_is_free(dist)


def test_free_broker_port_skips_a_port_whose_dist_port_is_taken(
        monkeypatch):
    checked = []

    def dist_taken_once(port, host='127.0.0.1'):
        checked.append(port)
        return len(checked) > 1
    monkeypatch.setattr(run_tests, 'port_is_free', dist_taken_once)
    port = run_tests.free_broker_port()
    assert len(checked) >= 2
    assert port + run_tests.RABBITMQ_DIST_PORT_OFFSET == checked[-1]


def test_free_broker_port_gives_up(monkeypatch):
    monkeypatch.setattr(run_tests, 'port_is_free', lambda *a: False)
    with pytest.raises(run_tests.StageFailed, match='no free port'):
        run_tests.free_broker_port(attempts=3)


def test_broker_nodenames_are_unique(monkeypatch):
    names = {run_tests.broker_nodename(port) for port in (40000, 40001)}
    monkeypatch.setattr(os, 'getpid', lambda: 1)
    names.add(run_tests.broker_nodename(40000))
    assert len(names) == 3
    assert 'pifpaf' not in names


def test_broker_command_uses_the_port_and_nodename():
    cmd = run_tests.broker_command(40000, 'run-tests-1-40000',
                                   ['stestr', 'run'])
    assert cmd[cmd.index('--port') + 1] == '40000'
    assert cmd[cmd.index('--nodename') + 1] == 'run-tests-1-40000'
    assert cmd[-2:] == ['stestr', 'run']
    assert run_tests.broker_url(40000) == \
        'rabbit://pifpaf:secret@127.0.0.1:40000/'


def test_failure_reason_finds_rabbitmqs_error():
    reason = run_tests.failure_reason(PIFPAF_DUPLICATE)
    assert 'Program did not print' in reason
    assert 'ERROR: node with name "pifpaf" is already running' in reason
    assert '[error]' not in reason
    assert run_tests.failure_reason('a\nlast words\n\n') == 'last words'
    assert run_tests.failure_reason('') == 'no output'


STESTR_FAILED = """\
{0} oslo_messaging.tests.functional.test_a.A.test_ok [1.2s] ... ok
{1} oslo_messaging.tests.functional.test_b.B.test_bad [3.0s] ... FAILED
WARNING [pifpaf.util] process is already gone
{0} oslo_messaging.tests.functional.test_c.C.test_worse ... FAILED

==============================
Failed 2 tests - output below:
==============================
"""


def test_failed_tests_are_named_last(capsys):
    assert run_tests.failed_tests(STESTR_FAILED) == [
        'oslo_messaging.tests.functional.test_b.B.test_bad',
        'oslo_messaging.tests.functional.test_c.C.test_worse']
    assert run_tests.failed_tests('{0} x.y.z [1s] ... ok') == []
    run_tests.show_failure(STESTR_FAILED + 'noise\n' * 100, '/tmp/f.log')
    out = capsys.readouterr().out.splitlines()
    assert out[-4:-1] == [
        '  failed tests:',
        '    oslo_messaging.tests.functional.test_b.B.test_bad',
        '    oslo_messaging.tests.functional.test_c.C.test_worse']


class FakeRun:
    """run_tests.run, answering with canned outputs in turn."""

    def __init__(self, *outputs):
        self.outputs = list(outputs)
        self.calls = []

    def __call__(self, cmd, cwd=None, env=None, log=None):
        self.calls.append((cmd, env))
        rc, out = self.outputs.pop(0)
        return rc, out


@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    monkeypatch.setattr(run_tests, 'BUILD', str(tmp_path))
    monkeypatch.setattr(run_tests, 'TREE', str(tmp_path))


PIP_OK = (0, '')


def test_functional_passes_port_nodename_and_url(fake_build, monkeypatch):
    fake = FakeRun(PIP_OK, (0, run_tests.BROKER_UP + ': x\n' + STESTR_TOTALS))
    monkeypatch.setattr(run_tests, 'run', fake)
    assert run_tests.stage_functional() == (2, 0, 1)
    assert fake.calls[0][0][-1].endswith('requirements-functional.txt')
    cmd, env = fake.calls[1]
    port = int(cmd[cmd.index('--port') + 1])
    assert cmd[cmd.index('--nodename') + 1] == \
        run_tests.broker_nodename(port)
    assert env['RPC_TRANSPORT_URL'] == run_tests.broker_url(port)
    assert env['NOTIFY_TRANSPORT_URL'] == run_tests.broker_url(port)
    assert env['TRANSPORT_DRIVER'] == 'rabbit'
    assert os.path.basename(env['RABBITMQ_CONFIG_FILE']) == 'rabbitmq.conf'


def test_functional_retries_a_broker_that_did_not_start(
        fake_build, monkeypatch, capsys):
    fake = FakeRun(PIP_OK, (1, PIFPAF_DUPLICATE),
                   (0, run_tests.BROKER_UP + ': x\n' + STESTR_TOTALS))
    monkeypatch.setattr(run_tests, 'run', fake)
    assert run_tests.stage_functional() == (2, 0, 1)
    assert len(fake.calls) == 3
    assert 'did not start: ERROR [pifpaf]' in capsys.readouterr().out


def test_functional_prints_why_the_broker_did_not_start(
        fake_build, monkeypatch, capsys):
    fake = FakeRun(PIP_OK,
                   *[(1, PIFPAF_DUPLICATE)] * run_tests.BROKER_ATTEMPTS)
    monkeypatch.setattr(run_tests, 'run', fake)
    with pytest.raises(run_tests.StageFailed) as exc:
        run_tests.stage_functional()
    assert 'is already running on host' in str(exc.value)
    out = capsys.readouterr().out
    # pifpaf's quoted output, one line a line, in the stage's output
    assert '<0.132.0> BOOT FAILED\n' in out
    assert 'full log:' in out


def test_stage_without_stestr_totals_prints_its_reason(
        fake_build, monkeypatch, capsys):
    fake = FakeRun(PIP_OK, (1, run_tests.BROKER_UP + ': x\n'
                            'ImportError: cannot import name heartbeat\n'))
    monkeypatch.setattr(run_tests, 'run', fake)
    with pytest.raises(run_tests.StageFailed) as exc:
        run_tests.stage_functional()
    assert str(exc.value) == ('stestr printed no totals (exit status 1): '
                              'ImportError: cannot import name heartbeat')
    assert 'ImportError' in capsys.readouterr().out


def test_unit_without_stestr_totals_prints_its_reason(
        fake_build, monkeypatch, capsys):
    monkeypatch.setattr(run_tests, 'isolated_network', lambda: [])
    monkeypatch.setattr(run_tests, 'run', FakeRun((2, 'Traceback\nBoom\n')))
    with pytest.raises(run_tests.StageFailed, match=r'\(exit status 2\): '
                       'Boom'):
        run_tests.stage_unit()
    assert 'Traceback\nBoom' in capsys.readouterr().out


# -- system packages, per stage -------------------------------------------

NEED_NOTHING = ('venv', 'check', 'tree', 'wheel', 'pep8', 'tooling')


@pytest.fixture
def bare_host(monkeypatch):
    """No system package found: no program, no file."""
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    monkeypatch.setattr(os.path, 'exists', lambda path: False)
    monkeypatch.setattr(run_tests.glob, 'glob', lambda pattern: [])


def test_stages_before_unit_need_no_system_package(bare_host):
    for stage in NEED_NOTHING:
        assert run_tests.missing_system_packages(stage) == [], stage


def test_functional_needs_apache_and_the_compilers(bare_host):
    missing = run_tests.missing_system_packages('functional')
    assert {'apache2', 'apache2-dev', 'gcc', 'python3-dev', 'openssl',
            'rabbitmq-server'} <= set(missing)
    assert 'apache2' not in run_tests.missing_system_packages('unit')
    assert 'apache2' not in run_tests.missing_system_packages('bisect')
    assert 'rabbitmq-server' in run_tests.missing_system_packages('bisect')


def test_every_listed_package_has_a_check():
    listed = {p for pkgs in run_tests.SYSTEM_PACKAGES.values() for p in pkgs}
    assert listed <= set(run_tests.PACKAGE_FOUND)
    assert set(run_tests.SYSTEM_PACKAGES) <= {
        name for name, _, _ in run_tests.STAGES}


def test_apache2_found_by_its_files(monkeypatch):
    present = {'/usr/sbin/apache2', '/usr/bin/apxs'}
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    monkeypatch.setattr(os.path, 'exists', lambda path: path in present)
    missing = run_tests.missing_system_packages('functional')
    assert 'apache2' not in missing
    assert 'apache2-dev' not in missing
    assert 'gcc' in missing


@pytest.fixture
def fake_stages(monkeypatch):
    """Every stage replaced by one that passes; run() records commands."""
    ran = []

    def stage(name):
        def func():
            ran.append(name)
            return 1, 0, 0
        func.__doc__ = 'the %s stage' % name
        return func
    monkeypatch.setattr(run_tests, 'STAGES', [
        (name, stage(name), deps) for name, _, deps in run_tests.STAGES])
    fake = FakeRun(*[(0, '')] * 10)
    monkeypatch.setattr(run_tests, 'run', fake)
    monkeypatch.setattr(os, 'geteuid', lambda: 0)
    return ran, fake


def test_tooling_on_a_host_without_apache_calls_no_apt(
        fake_stages, monkeypatch, capsys):
    ran, fake = fake_stages
    monkeypatch.setattr(shutil, 'which', lambda name: (
        '/usr/bin/apt-get' if name == 'apt-get' else None))
    monkeypatch.setattr(os.path, 'exists', lambda path: False)
    assert run_tests.main(['tooling', 'check', 'tree', 'wheel',
                           'pep8']) == 0
    assert ran == ['venv', 'check', 'tree', 'wheel', 'pep8', 'tooling']
    assert fake.calls == []
    assert 'apt-get' not in capsys.readouterr().out


def test_functional_installs_its_packages_with_apt(fake_stages,
                                                   monkeypatch):
    ran, fake = fake_stages
    monkeypatch.setattr(shutil, 'which', lambda name: (
        '/usr/bin/apt-get' if name == 'apt-get' else None))
    monkeypatch.setattr(os.path, 'exists', lambda path: False)
    assert run_tests.main(['functional']) == 0
    installs = [cmd for cmd, _ in fake.calls if cmd[:2] == ['apt-get',
                                                            'install']]
    assert len(installs) == 1
    assert {'apache2', 'apache2-dev', 'rabbitmq-server'} <= set(installs[0])
    # once, before the functional stage, not before venv or wheel
    assert ran[-1] == 'functional'


def test_missing_packages_without_root_fail_that_stage_only(
        fake_stages, monkeypatch, capsys):
    ran, fake = fake_stages
    monkeypatch.setattr(os, 'geteuid', lambda: 1000)
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    monkeypatch.setattr(os.path, 'exists', lambda path: False)
    assert run_tests.main(['functional', 'tooling']) == 1
    out = capsys.readouterr().out
    assert 'functional  FAILED: missing system packages: ' in out
    assert 'apt-get install' in out
    assert 'functional' not in ran
    assert 'tooling' in ran
    assert fake.calls == []


# -- command line ------------------------------------------------------------

def test_help_lists_every_stage_and_its_packages(capsys):
    assert run_tests.main(['--help']) == 0
    out = capsys.readouterr().out
    for name, _, _ in run_tests.STAGES:
        assert '\n  %-11s ' % name in out, name
    assert 'apache2' in out
    assert run_tests.main(['-h']) == 0


def test_unknown_stage_is_one_line(capsys):
    assert run_tests.main(['unit', '--bogus']) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith('unknown stage(s): --bogus (stages: venv ')


# -- bisect: BISECT_FUNCTIONAL -----------------------------------------------

def make_tests(tree, *modules):
    for module in modules:
        path = os.path.join(tree, *module.split('.')) + '.py'
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, 'w').close()


def test_test_modules_are_dotted_names(tmp_path):
    make_tests(str(tmp_path), 'oslo_messaging.tests.test_opts',
               'oslo_messaging.tests.functional.test_heartbeat_fork',
               'oslo_messaging.tests.functional.utils')
    assert sorted(run_tests.test_modules(str(tmp_path))) == [
        'oslo_messaging.tests.functional.test_heartbeat_fork',
        'oslo_messaging.tests.test_opts']


def test_bisect_functional_skips_without_a_matching_module(
        tmp_path, monkeypatch, capsys):
    make_tests(str(tmp_path), 'oslo_messaging.tests.functional.test_other')
    fake = FakeRun()
    monkeypatch.setattr(run_tests, 'run', fake)
    assert run_tests.bisect_functional(str(tmp_path), 'log') == (False, True)
    assert fake.calls == []
    assert 'not run, no test module matches' in capsys.readouterr().out


def test_bisect_functional_runs_the_filter_with_a_timeout(
        tmp_path, monkeypatch, capsys):
    make_tests(str(tmp_path),
               'oslo_messaging.tests.functional.test_heartbeat_fork')
    fake = FakeRun((0, STESTR_TOTALS))
    monkeypatch.setattr(run_tests, 'run', fake)
    assert run_tests.bisect_functional(str(tmp_path), 'log') == (True, True)
    cmd, env = fake.calls[0]
    assert cmd[-1] == run_tests.BISECT_FUNCTIONAL
    # The fork scenarios start their own brokers.
    assert 'pifpaf' not in cmd
    assert env['TRANSPORT_DRIVER'] == 'rabbit'
    assert env['OS_TEST_TIMEOUT'] == str(run_tests.FUNCTIONAL_TEST_TIMEOUT)
    assert ': ran, 2 passed, 0 failed, 1 skipped' in capsys.readouterr().out


@pytest.mark.parametrize('rc, totals', [
    (1, STESTR_TOTALS.replace('Failed: 0', 'Failed: 1')),
    (0, STESTR_TOTALS.replace('Passed: 2', 'Passed: 0')),  # all skipped
    (1, 'ImportError: no module\n'),
])
def test_bisect_functional_fails_unless_tests_passed(
        tmp_path, monkeypatch, rc, totals):
    make_tests(str(tmp_path),
               'oslo_messaging.tests.functional.test_heartbeat_fork')
    monkeypatch.setattr(run_tests, 'run', FakeRun(
        (rc, run_tests.BROKER_UP + ': x\n' + totals)))
    assert run_tests.bisect_functional(
        str(tmp_path), str(tmp_path / 'log')) == (True, False)


def test_bisect_filter_selects_the_fork_scenarios():
    ids = ['oslo_messaging.tests.functional.test_heartbeat_fork.'
           'ForkAfterCallsTestCase.test_fork_after_rpc_calls',
           'oslo_messaging.tests.functional.test_heartbeat_fork.'
           'ForkAfterCallsTestCase.test_fork_after_rpc_calls_heartbeats_'
           'disabled',
           'oslo_messaging.tests.functional.test_heartbeat_fork.'
           'ForkWhileConnectingTestCase.test_fork_in_the_middle_of_a_'
           'reconnect',
           'oslo_messaging.tests.functional.test_heartbeat_stalls.'
           'StallTestCase.test_call_then_stall_inside_the_reply_read']
    chosen = [i for i in ids if re.search(run_tests.BISECT_FUNCTIONAL, i)]
    assert chosen == [ids[0], ids[2]]


def test_the_slow_stage_only_runs_when_asked(monkeypatch):
    ran = []
    for name, func, deps in run_tests.STAGES:
        monkeypatch.setattr(run_tests, 'stage_' + name,
                            lambda name=name: ran.append(name) or (1, 0, 0))
    monkeypatch.setattr(run_tests, 'STAGES', [
        (name, getattr(run_tests, 'stage_' + name), deps)
        for name, _, deps in run_tests.STAGES])
    monkeypatch.setattr(run_tests, 'ensure_system_packages', lambda s: None)
    assert run_tests.main([]) == 0
    assert 'slow' not in ran
    ran.clear()
    assert run_tests.main(['slow']) == 0
    assert ran == ['venv', 'check', 'tree', 'wheel', 'slow']


def test_unit_and_functional_runs_get_a_test_timeout(monkeypatch):
    fake = FakeRun((0, STESTR_TOTALS))
    monkeypatch.setattr(run_tests, 'run', fake)
    monkeypatch.setattr(run_tests, 'isolated_network', lambda: [])
    run_tests.stage_unit()
    assert fake.calls[0][1]['OS_TEST_TIMEOUT'] == str(
        run_tests.UNIT_TEST_TIMEOUT)
    assert run_tests.functional_env()['OS_TEST_TIMEOUT'] == str(
        run_tests.FUNCTIONAL_TEST_TIMEOUT)


# -- bisect: the trim --------------------------------------------------------

@pytest.mark.parametrize('paths, trimmed', [
    (['oslo_messaging/tests/functional/test_heartbeat_fork.py'], True),
    (['doc/source/admin/rabbit.rst', 'releasenotes/notes/x.yaml',
      'tox.ini', '.zuul.yaml', 'bindep.txt'], True),
    (['oslo_messaging/tests/functional/utils.py',
      'oslo_messaging/_drivers/impl_rabbit.py'], False),
    (['oslo_messaging/tests/drivers/test_impl_rabbit.py'], False),
    (['oslo_messaging/tests/functional_helpers.py'], False),
    (['setup.cfg'], False),
    (['requirements.txt'], False),
    (['doc'], False),
    ([], False),
])
def test_pep8_only_rule(paths, trimmed):
    assert run_tests.pep8_only(paths) is trimmed


def git_tree(path, *commits):
    """A git tree at path: tag upstream, a commit per (file, subject)."""
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull,
               GIT_CONFIG_NOSYSTEM='1', GIT_AUTHOR_NAME='Dev',
               GIT_AUTHOR_EMAIL='dev@example.org', GIT_COMMITTER_NAME='Dev',
               GIT_COMMITTER_EMAIL='dev@example.org')

    def git(*args):
        subprocess.run(['git'] + list(args), cwd=path, check=True, env=env,
                       stdout=subprocess.DEVNULL)
    os.makedirs(path)
    git('init', '-q')
    git('commit', '-q', '--allow-empty', '-m', 'upstream')
    git('tag', 'upstream')
    for fname, subject in commits:
        full = os.path.join(path, fname)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, 'w') as f:
            f.write(subject + '\n')
        git('add', fname)
        git('commit', '-q', '-m', subject)


@pytest.mark.parametrize('changes, tests', [
    ([('A', 'oslo_messaging/_drivers/new.py'),
      ('A', 'oslo_messaging/tests/drivers/test_new.py'),
      ('A', 'oslo_messaging/tests/drivers/peers.py'),
      ('A', 'oslo_messaging/tests/functional/test_new_func.py')],
     ['oslo_messaging.tests.drivers.test_new']),
    ([('A', 'oslo_messaging/_drivers/new.py')], []),
    ([('A', 'oslo_messaging/_drivers/new.py'),
      ('M', 'oslo_messaging/_drivers/impl_rabbit.py')], None),
    ([('A', 'oslo_messaging/tests/drivers/test_new.py'),
      ('D', 'oslo_messaging/tests/drivers/test_old.py')], None),
    ([], None),
])
def test_added_tests_only_rule(changes, tests):
    assert run_tests.added_tests_only(changes) == tests


def test_bisect_trims_patches_of_functional_tests_and_new_files(
        tmp_path, monkeypatch, capsys):
    tree = str(tmp_path / 'tree')
    git_tree(tree,
             ('oslo_messaging/_drivers/impl_rabbit.py', 'Add a module'),
             ('oslo_messaging/tests/functional/test_x.py', 'Test it'),
             ('oslo_messaging/_drivers/impl_rabbit.py', 'Fix it'),
             ('oslo_messaging/tests/drivers/test_new.py', 'Add a test'),
             ('doc/last.rst', 'The last patch, not bisected'))
    monkeypatch.setattr(run_tests, 'BUILD', str(tmp_path))
    monkeypatch.setattr(run_tests, 'TREE', tree)
    # clone, checkout, flake8 each; stestr for the third and fourth
    fake = FakeRun(*[PIP_OK] * 9 + [(0, STESTR_TOTALS)] + [PIP_OK] * 3 +
                   [(0, STESTR_TOTALS)])
    monkeypatch.setattr(run_tests, 'run', fake)
    monkeypatch.setattr(run_tests, 'isolated_network', lambda: [])
    assert run_tests.stage_bisect() == (4, 0, 0)
    commands = [cmd for cmd, _ in fake.calls]
    stestr = [(n, c) for n, c in enumerate(commands) if c[0] == 'stestr']
    assert stestr == [
        (9, ['stestr', 'run', '--concurrency', '2']),
        (13, ['stestr', 'run', '--concurrency', '2',
              'oslo_messaging.tests.drivers.test_new'])]
    out = capsys.readouterr().out
    assert ('ok after: Add a module (pep8 only: touches no unit-tested '
            'file)' in out)
    assert ('ok after: Test it (pep8 only: touches no unit-tested file)'
            in out)
    assert 'ok after: Fix it (2 unit tests passed)' in out
    assert ('ok after: Add a test (2 unit tests of the files it adds '
            'passed)' in out)
    assert 'The last patch' not in out


# -- series: the backport's stages --------------------------------------------

@pytest.fixture
def backport(tmp_path, monkeypatch):
    """run_tests pointed at a repository with the series "stable" too."""
    root = tmp_path / 'repo'
    for top in (root, root / 'stable'):
        top.mkdir(parents=True)
        (top / 'upstream.pin').write_text(
            'name = oslo.messaging\nversion = 1\nsha256 = 0\n')
    monkeypatch.setattr(run_tests, 'ROOT', str(root))
    for name in ('SERIES', 'LABEL', 'BUILD', 'TREE', 'VENV', 'BIN',
                 'CONSTRAINTS'):
        monkeypatch.setattr(run_tests, name, getattr(run_tests, name))
    monkeypatch.delenv('SERIES', raising=False)
    return root


def test_a_run_covers_every_series_tooling_once(backport):
    pairs = run_tests.plan([], None, ['', 'stable'])
    stages = ['venv', 'check', 'tree', 'wheel', 'pep8', 'unit', 'bisect',
              'functional']
    assert pairs == [('', s) for s in stages + ['tooling']] + [
        ('stable', s) for s in stages]
    assert run_tests.plan([], 'stable', ['', 'stable']) == [
        ('stable', s) for s in stages]
    assert run_tests.plan(['pep8'], None, ['', 'stable']) == [
        ('', 'venv'), ('', 'check'), ('', 'tree'), ('', 'pep8')]
    assert run_tests.plan(['pep8'], 'stable', ['', 'stable']) == [
        ('stable', 'venv'), ('stable', 'check'), ('stable', 'tree'),
        ('stable', 'pep8')]


def test_main_names_the_backports_stages_one_summary(
        backport, fake_stages, monkeypatch, capsys):
    ran, fake = fake_stages
    seen = []
    monkeypatch.setattr(run_tests, 'ensure_system_packages',
                        lambda stage: seen.append((run_tests.LABEL, stage,
                                                   run_tests.BUILD)))
    failing = dict((name, func) for name, func, _ in run_tests.STAGES)

    def unit_fails_in_stable():
        ran.append('unit')
        return (0, 1, 0) if run_tests.SERIES else (1, 0, 0)
    monkeypatch.setattr(run_tests, 'STAGES', [
        (name, unit_fails_in_stable if name == 'unit' else failing[name],
         deps) for name, _, deps in run_tests.STAGES])
    assert run_tests.main([]) == 1
    out = capsys.readouterr().out
    assert '==> stable unit\n' in out
    assert '  stable unit ' in out and '  unit ' in out
    assert out.count('==> tooling') == 1
    assert out.strip().splitlines()[-1] == '16 passed, 1 failed'
    builds = {label: build for label, _, build in seen}
    assert builds == {'': str(backport / 'build'),
                      'stable ': str(backport / 'build' / 'stable')}


def test_unknown_series_option_is_one_line(backport, capsys):
    assert run_tests.main(['--series', 'nope', 'unit']) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and 'SERIES=nope is not a known series' in out[0]


def test_backport_stages_use_its_constraints_and_heartbeat_tests(
        backport, monkeypatch):
    run_tests.select('stable')
    constraints = str(backport / 'stable' / 'constraints.txt')
    assert run_tests.CONSTRAINTS == constraints
    assert run_tests.VENV == str(backport / 'build' / 'stable' / 'venv')
    fake = FakeRun(*[PIP_OK] * 4)
    monkeypatch.setattr(run_tests, 'run', fake)
    run_tests.stage_venv()
    run_tests.stage_check()
    pips = [cmd for cmd, _ in fake.calls if 'pip' in cmd]
    assert len(pips) == 2
    for cmd in pips:
        assert cmd[cmd.index('-c') + 1] == constraints
    # stable: the series and the identity check, not --only
    assert fake.calls[-1][0][-1] == 'check'
    assert run_tests.functional_env()['HEARTBEAT_CONSTRAINTS'] == \
        constraints
    fake = FakeRun(PIP_OK, (0, run_tests.BROKER_UP + ': x\n' + STESTR_TOTALS))
    monkeypatch.setattr(run_tests, 'run', fake)
    run_tests.stage_functional()
    pip, stestr = fake.calls[0][0], fake.calls[1][0]
    assert pip[pip.index('-c') + 1] == constraints
    assert stestr[-1] == run_tests.BACKPORT_FUNCTIONAL
    run_tests.select('')
    fake = FakeRun(PIP_OK)
    monkeypatch.setattr(run_tests, 'run', fake)
    run_tests.stage_check()
    assert fake.calls[0][0][-2:] == ['check', '--only']


def test_backport_functional_filter_selects_heartbeat_scenarios():
    pattern = run_tests.BACKPORT_FUNCTIONAL
    module = 'oslo_messaging.tests.functional.'
    chosen = ['test_heartbeat_in_pthread.T.test_a',
              'test_heartbeat_stalls.T.test_b', 'test_heartbeat_fork.T.c',
              'test_heartbeat_uwsgi.T.d', 'test_heartbeat_service.T.e',
              'test_heartbeat_faults.T.f']
    left = ['test_heartbeat_slow.T.g', 'test_heartbeat_mod_wsgi.T.h',
            'test_functional.CallTestCase.test_i', 'test_rabbitmq.T.j']
    assert [t for t in chosen + left if re.search(pattern, module + t)] \
        == chosen
