"""Tests of tools/demo.py: broker port and name, failures, timing, reuse."""

import json
import subprocess

import pytest

import demo
import run_tests

# The end of what pifpaf printed when port 5682 was taken (abridged).
EADDRINUSE = (
    "ERROR [pifpaf] Program did not print: `completed with .* plugins'\n"
    "Output: b'2026-12-01 00:46:09 [info] <0.223.0> Feature flags\\n"
    "BOOT FAILED\\n{\"init terminating in do_boot\",{error,"
    "{could_not_start_listener,\"127.0.0.1\",5682,{{shutdown,"
    "{failed_to_start_child,ranch_acceptors_sup,{listen_error,"
    "{acceptor,{127,0,0,1},5682},eaddrinuse}}}}}}}\\n'\n")


def result(mode, **kw):
    r = {'heartbeat_in_pthread': mode, 'thread': 'native OS thread',
         'kept': True, 'dropped_after': None, 'reconnects': 0,
         'call_after': 'again', 'call_ok': True, 'call_latency': 0.006}
    r.update(kw)
    return 'RESULT ' + json.dumps(r)


class FakePifpaf:
    """subprocess.run for the broker run: records the command."""

    def __init__(self, returncode, stdout):
        self.returncode, self.stdout = returncode, stdout
        self.calls = []

    def __call__(self, cmd, **kwargs):
        self.calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, self.returncode,
                                           self.stdout)


@pytest.fixture
def demo_build(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, 'BUILD', str(tmp_path))
    monkeypatch.setattr(demo, 'LOG', str(tmp_path / 'demo.log'))
    monkeypatch.setenv('PATH', '/usr/bin:/bin')
    return tmp_path


def test_broker_gets_a_free_port_and_a_node_name_of_its_own(
        demo_build, monkeypatch):
    monkeypatch.delenv('BROKER_NODE_PREFIX', raising=False)
    fake = FakePifpaf(0, run_tests.BROKER_UP + ': x\n' + result('false')
                      + '\n' + result('true') + '\n')
    monkeypatch.setattr(subprocess, 'run', fake)
    results = demo.run_services()
    assert [r['heartbeat_in_pthread'] for r in results] == ['false', 'true']
    cmd, kwargs = fake.calls[0]
    port = int(cmd[cmd.index('--port') + 1])
    assert port != 5682
    assert cmd[cmd.index('--nodename') + 1] == \
        run_tests.broker_nodename(port, prefix='demo')
    assert cmd[cmd.index('--nodename') + 1].startswith('demo-')
    assert kwargs['env']['RABBITMQ_CONFIG_FILE'].endswith('rabbitmq.conf')


def test_node_name_prefix_from_the_environment(monkeypatch):
    monkeypatch.setenv('BROKER_NODE_PREFIX', 'tool16-x')
    assert run_tests.broker_nodename(5, prefix='demo').startswith(
        'tool16-x-')


def test_broker_failure_is_one_line_with_the_reason(demo_build,
                                                    monkeypatch):
    monkeypatch.setattr(subprocess, 'run', FakePifpaf(1, EADDRINUSE))
    with pytest.raises(demo.DemoFailed) as exc:
        demo.run_services()
    msg = str(exc.value)
    assert '\n' not in msg
    assert msg.startswith('the private RabbitMQ (node ')
    assert 'failed to start: RabbitMQ could not listen on 127.0.0.1:5682: '\
        'address already in use (eaddrinuse)' in msg
    assert (demo_build / 'demo.log').read_text() == EADDRINUSE


def test_service_failure_names_the_mode(demo_build, monkeypatch, capsys):
    out = (run_tests.BROKER_UP + ': x\n' + result('false') + '\n'
           'Traceback (most recent call last):\nImportError: no heartbeat\n')
    monkeypatch.setattr(subprocess, 'run', FakePifpaf(1, out))
    with pytest.raises(demo.DemoFailed) as exc:
        demo.run_services()
    assert str(exc.value).startswith(
        'the service with heartbeat_in_pthread = true failed (exit 1): '
        'ImportError: no heartbeat')
    assert 'ImportError: no heartbeat' in capsys.readouterr().out


def test_main_prints_one_line_on_failure(monkeypatch, capsys):
    def fail():
        raise demo.DemoFailed('the private RabbitMQ failed to start: why')
    monkeypatch.setattr(demo, 'build_wheel', fail)
    with pytest.raises(SystemExit) as exc:
        demo.main()
    assert exc.value.code == 'demo: the private RabbitMQ failed to start: ' \
        'why'


def test_wall_time_counts_from_the_start_of_the_command(monkeypatch,
                                                        capsys):
    clock = [1000.0]
    monkeypatch.setattr(demo.time, 'monotonic', lambda: clock[0])

    def build():
        clock[0] += 41           # wheel and virtualenv
        return 'x.whl'

    def services():
        clock[0] += 38           # the broker and the two service runs
        return [json.loads(result('false')[7:]),
                json.loads(result('true')[7:])]
    monkeypatch.setattr(demo, 'build_wheel', build)
    monkeypatch.setattr(demo, 'install', lambda wheel: None)
    monkeypatch.setattr(demo, 'run_services', services)
    demo.main()
    assert 'demo: done in 79 s (wall time of the whole command)' in \
        capsys.readouterr().out


def test_table_has_the_latency_and_says_what_reconnects_count():
    rows = [json.loads(result('false', kept=False, dropped_after=5.9,
                              reconnects=4, call_latency=1.186,
                              thread='greenthread')[7:]),
            json.loads(result('true', call_latency=0.015)[7:]),
            json.loads(result('true', call_ok=False, call_latency=30.0)[7:])]
    text = demo.table(rows).splitlines()
    assert 'call after stall' in text[1]
    assert '1186 ms' in text[2] and '5.9 s into the stall' in text[2]
    assert '15 ms' in text[3]
    assert 'FAILED after 30.0 s' in text[4]
    assert text[5].startswith('reconnects: how many times the service '
                              're-established a connection')
    assert all(len(line) <= 79 for line in text[5:])


@pytest.fixture
def venv(tmp_path, monkeypatch):
    wheel = tmp_path / 'oslo_messaging-1.0-py3-none-any.whl'
    wheel.write_bytes(b'wheel one')
    constraints = tmp_path / 'constraints.txt'
    constraints.write_text('a==1\n')
    venv = tmp_path / 'demo-venv'
    monkeypatch.setattr(demo, 'CONSTRAINTS', str(constraints))
    monkeypatch.setattr(demo, 'VENV', str(venv))
    monkeypatch.setattr(demo, 'PY', str(venv / 'bin' / 'python'))
    monkeypatch.setattr(demo, 'VENV_KEY', str(venv / 'demo-key.txt'))
    commands = []

    def run(cmd, what, **kwargs):
        commands.append(cmd)
        if cmd[1:3] == ['-m', 'venv']:
            (venv / 'bin').mkdir(parents=True, exist_ok=True)
            (venv / 'bin' / 'python').write_text('')
        return ''
    monkeypatch.setattr(demo, 'run', run)
    return wheel, constraints, commands


def test_second_run_reuses_the_virtualenv(venv, capsys):
    wheel, constraints, commands = venv
    demo.install(str(wheel))
    assert len(commands) == 2            # venv, pip install
    demo.install(str(wheel))
    assert len(commands) == 2
    assert 'reusing ' in capsys.readouterr().out


@pytest.mark.parametrize('change', ['wheel', 'constraints'])
def test_a_new_wheel_or_new_constraints_rebuild_it(venv, change):
    wheel, constraints, commands = venv
    demo.install(str(wheel))
    if change == 'wheel':
        wheel.write_bytes(b'wheel two, same name')
    else:
        constraints.write_text('a==2\n')
    demo.install(str(wheel))
    assert len(commands) == 4
    assert '--clear' in commands[2]


def test_a_failed_install_is_not_reused(venv, monkeypatch):
    wheel, constraints, commands = venv
    demo.install(str(wheel))
    constraints.write_text('a==2\n')
    fake_run = demo.run

    def pip_fails(cmd, what, **kwargs):
        if what == 'pip install':
            raise demo.DemoFailed('pip install failed')
        return fake_run(cmd, what)
    monkeypatch.setattr(demo, 'run', pip_fails)
    with pytest.raises(demo.DemoFailed):
        demo.install(str(wheel))
    assert not demo.venv_is_current(demo.venv_key(str(wheel)))
    constraints.write_text('a==1\n')
    assert not demo.venv_is_current(demo.venv_key(str(wheel)))


def test_rabbitmq_boot_error_reasons():
    assert run_tests.rabbitmq_boot_error(EADDRINUSE.replace('\\"', '"')) == \
        'RabbitMQ could not listen on 127.0.0.1:5682: address already in ' \
        'use (eaddrinuse)'
    assert run_tests.rabbitmq_boot_error(
        'init terminating in do_boot ({error,badarg})').startswith(
        'RabbitMQ did not boot: {error,badarg}')
    assert run_tests.rabbitmq_boot_error('all fine') is None
