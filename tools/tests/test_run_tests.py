"""Tests of tools/run_tests.py: broker ports and names, failure reports."""

import os
import re
import shutil
import socket
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
