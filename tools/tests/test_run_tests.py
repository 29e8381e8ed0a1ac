"""Tests of tools/run_tests.py: broker ports and names, failure reports."""

import os
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


def test_functional_passes_port_nodename_and_url(fake_build, monkeypatch):
    fake = FakeRun((0, run_tests.BROKER_UP + ': x\n' + STESTR_TOTALS))
    monkeypatch.setattr(run_tests, 'run', fake)
    assert run_tests.stage_functional() == (2, 0, 1)
    cmd, env = fake.calls[0]
    port = int(cmd[cmd.index('--port') + 1])
    assert cmd[cmd.index('--nodename') + 1] == \
        run_tests.broker_nodename(port)
    assert env['RPC_TRANSPORT_URL'] == run_tests.broker_url(port)
    assert env['NOTIFY_TRANSPORT_URL'] == run_tests.broker_url(port)
    assert env['TRANSPORT_DRIVER'] == 'rabbit'
    assert os.path.basename(env['RABBITMQ_CONFIG_FILE']) == 'rabbitmq.conf'


def test_functional_retries_a_broker_that_did_not_start(
        fake_build, monkeypatch, capsys):
    fake = FakeRun((1, PIFPAF_DUPLICATE),
                   (0, run_tests.BROKER_UP + ': x\n' + STESTR_TOTALS))
    monkeypatch.setattr(run_tests, 'run', fake)
    assert run_tests.stage_functional() == (2, 0, 1)
    assert len(fake.calls) == 2
    assert 'did not start: ERROR [pifpaf]' in capsys.readouterr().out


def test_functional_prints_why_the_broker_did_not_start(
        fake_build, monkeypatch, capsys):
    fake = FakeRun(*[(1, PIFPAF_DUPLICATE)] * run_tests.BROKER_ATTEMPTS)
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
    fake = FakeRun((1, run_tests.BROKER_UP + ': x\n'
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


def test_missing_system_packages_include_apache2(monkeypatch):
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    monkeypatch.setattr(os.path, 'exists', lambda path: False)
    missing = run_tests.missing_system_packages()
    assert {'apache2', 'apache2-dev'} <= set(missing)


def test_apache2_found_by_its_files(monkeypatch):
    present = {'/usr/sbin/apache2', '/usr/bin/apxs'}
    monkeypatch.setattr(shutil, 'which', lambda name: None)
    monkeypatch.setattr(os.path, 'exists', lambda path: path in present)
    missing = run_tests.missing_system_packages()
    assert 'apache2' not in missing
    assert 'apache2-dev' not in missing
