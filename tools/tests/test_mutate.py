"""Tests of tools/mutate.py (make mutate) that need no cosmic-ray."""

import json
import os
import re
import shlex

import pytest

import mutate


def dump_line(line, operator='core/AddNot', result=None, path=None,
              occurrence=None):
    item = {'job_id': 'j%d' % line, 'mutations': [{
        'module_path': path or 'oslo_messaging/_drivers/wire.py',
        'operator_name': operator,
        'occurrence': line if occurrence is None else occurrence,
        'start_pos': [line, 4], 'end_pos': [line, 9], 'operator_args': {},
        'definition_name': 'Wire.write'}]}
    return json.dumps([item, result])


def normal(outcome, output='', diff=''):
    return {'worker_outcome': 'normal', 'test_outcome': outcome,
            'output': output, 'diff': diff}


SOURCE = 'a = 1\nif a:\n    pass\nif a:\n    pass\n'
SOURCES = {'oslo_messaging/_drivers/wire.py': SOURCE}


def test_summary_line_is_exact():
    assert (mutate.summary(45, 5, 3) ==
            'mutation: 45 killed, 5 survived, 3 equivalent, score 90.0 %')


def test_score_ignores_equivalents_and_rounds():
    assert mutate.summary(2, 1, 7).endswith('score 66.7 %')


def test_score_without_mutants_is_not_a_division_by_zero():
    assert mutate.summary(0, 0, 0).endswith('score 0.0 %')


def test_outcomes_are_read_from_the_dump():
    dump = '\n'.join([
        dump_line(1, result=normal('killed')),
        dump_line(2, result=normal('killed', output='timeout')),
        dump_line(3, result=normal('survived', diff='-x\n+y')),
        dump_line(4, result={'worker_outcome': 'exception',
                             'test_outcome': 'incompetent'}),
        dump_line(5, result={'worker_outcome': 'skipped'}),
        '',
    ])
    found = list(mutate.mutants(dump, SOURCES))
    assert [m['outcome'] for m in found] == [
        'killed', 'timeout', 'survived', 'incompetent']
    assert found[2]['line'] == 3
    assert found[2]['module'] == 'wire.py'
    assert found[2]['definition'] == 'Wire.write'


def test_ids_do_not_move_with_the_line_numbers():
    before = list(mutate.mutants(dump_line(2), SOURCES))[0]['id']
    moved = {'oslo_messaging/_drivers/wire.py': '# new\n' + SOURCE}
    after = list(mutate.mutants(dump_line(3), moved))[0]['id']
    assert before == after
    assert re.match(r'^[0-9a-f]{10}$', before)


def test_same_text_twice_gives_two_ids():
    found = list(mutate.mutants(dump_line(2) + '\n' + dump_line(4),
                                SOURCES))
    assert found[0]['id'] != found[1]['id']


def test_ids_do_not_depend_on_the_order_of_the_dump():
    # the same text on lines 2 and 4: told apart by their source order
    forward = list(mutate.mutants(dump_line(2) + '\n' + dump_line(4),
                                  SOURCES))
    backward = list(mutate.mutants(dump_line(4) + '\n' + dump_line(2),
                                   SOURCES))
    assert ({m['line']: m['id'] for m in forward} ==
            {m['line']: m['id'] for m in backward})


def test_ids_depend_on_the_operator():
    a = list(mutate.mutants(dump_line(2), SOURCES))[0]['id']
    b = list(mutate.mutants(dump_line(2, operator='core/ReplaceTrueWithFalse'),
                            SOURCES))[0]['id']
    assert a != b


def test_classify_counts_timeouts_as_killed_and_survivors_listed():
    found = [{'id': 'a' * 10, 'outcome': 'killed'},
             {'id': 'b' * 10, 'outcome': 'timeout'},
             {'id': 'c' * 10, 'outcome': 'survived'},
             {'id': 'd' * 10, 'outcome': 'survived'},
             {'id': 'e' * 10, 'outcome': 'incompetent'}]
    c = mutate.classify(found, {'d' * 10: 'why'})
    assert c == mutate.Counts(killed=2, timeouts=1, survived=1,
                              equivalent=1, incompetent=1)


def test_a_killed_mutant_listed_as_equivalent_stays_killed():
    c = mutate.classify([{'id': 'a' * 10, 'outcome': 'killed'}],
                        {'a' * 10: 'why'})
    assert (c.killed, c.equivalent) == (1, 0)


def test_equivalents_file_is_parsed():
    text = ('# comment\n\n'
            '0123456789  amqp_wire.py:12 Wire.write AddNot -- same bytes\n'
            'abcdefabcd -- only a reason\n')
    assert mutate.parse_equivalents(text) == {
        '0123456789': 'same bytes', 'abcdefabcd': 'only a reason'}


@pytest.mark.parametrize('line,error', [
    ('0123456789 amqp_wire.py:12', 'no " -- reason"'),
    ('0123456789 amqp_wire.py:12 --   ', 'no " -- reason"'),
    ('012345 -- short id', 'not a mutant id'),
    ('ZZZZZZZZZZ -- not hex', 'not a mutant id'),
])
def test_equivalents_file_errors_name_the_line(line, error):
    with pytest.raises(ValueError) as exc:
        mutate.parse_equivalents('# c\n' + line + '\n')
    assert 'line 2' in str(exc.value)
    assert error in str(exc.value)


def test_equivalent_listed_twice_is_an_error():
    with pytest.raises(ValueError, match='listed twice'):
        mutate.parse_equivalents('0123456789 -- a\n0123456789 -- b\n')


def test_missing_equivalents_file_is_empty(tmp_path):
    assert mutate.load_equivalents(str(tmp_path / 'none.txt')) == {}


def test_checked_in_equivalents_file_parses():
    assert isinstance(mutate.load_equivalents(), dict)
    assert os.path.exists(mutate.EQUIVALENTS)


def test_added_lines_of_a_zero_context_diff():
    diff = ('@@ -42,0 +43,2 @@ import\n+a\n+b\n'
            '@@ -818 +930,3 @@ class\n'
            '@@ -861 +974,0 @@ class\n'
            '@@ -863,0 +977 @@ class\n')
    assert mutate.added_lines(diff) == [(43, 44), (930, 932), (977, 977)]


@pytest.mark.parametrize('name,kept', [
    ('core/AddNot', True),
    ('core/ExceptionReplacer', True),
    ('core/ReplaceComparisonOperator_Lt_LtE', True),
    ('core/ReplaceComparisonOperator_Lt_Gt', False),
    ('core/ReplaceBinaryOperator_Add_Sub', True),
    ('core/ReplaceBinaryOperator_Add_Pow', False),
    ('core/ReplaceBinaryOperator_Mod_FloorDiv', False),
    ('core/NumberReplacer', False),
    ('core/RemoveDecorator', False),
])
def test_operators_kept(name, kept):
    assert mutate.kept_operator(name) is kept
    # cr-filter-operators skips what its regexes match at the start
    excluded = re.compile('|'.join('(:?%s)' % e for e in mutate.EXCLUDE))
    assert bool(excluded.match(name)) is not kept


def test_config_is_what_cosmic_ray_reads():
    toml = pytest.importorskip('tomllib')
    cfg = toml.loads(mutate.config(
        'oslo_messaging/_drivers/x.py', 'env A=1 python -m t', 99.5,
        [(1, 3), (7, 7)], ['http://127.0.0.1:1']))['cosmic-ray']
    assert cfg['module-path'] == 'oslo_messaging/_drivers/x.py'
    assert cfg['timeout'] == 99.5
    assert cfg['distributor'] == {'name': 'http', 'http': {
        'worker-urls': ['http://127.0.0.1:1']}}
    assert cfg['filters']['line-filter']['lines'] == {
        'oslo_messaging/_drivers/x.py': ['1-3', '7-7']}
    assert cfg['filters']['operators-filter']['exclude-operators'] == (
        mutate.EXCLUDE)


def test_test_command_survives_shlex_and_fails_fast():
    cmd = shlex.split(mutate.test_command(['test_a', 'test_b.Case']))
    assert cmd[:2] == ['env', 'PYTHONPATH=.']
    assert '--failfast' in cmd
    assert cmd[-2:] == ['oslo_messaging.tests.drivers.test_a',
                        'oslo_messaging.tests.drivers.test_b.Case']


def test_every_target_is_a_driver_module_with_tests():
    for module, (lines, tests) in mutate.TARGETS.items():
        assert module.endswith('.py')
        assert lines in ('all', 'series')
        assert tests


def test_describe_shows_the_changed_line():
    text = mutate.describe({
        'id': '0123456789', 'module': 'wire.py', 'line': 3,
        'definition': 'Wire.write', 'operator': 'core/AddNot',
        'diff': '--- a\n+++ b\n-if a:\n+if not a:\n'})
    assert text == ('0123456789  wire.py:3 Wire.write AddNot  => '
                    'if not a:')


def test_unknown_target_is_refused(capsys):
    assert mutate.main(['mutate.py', 'nope.py']) == 2
    assert 'unknown target' in capsys.readouterr().out


def test_malformed_equivalents_file_stops_the_run(tmp_path, monkeypatch,
                                                  capsys):
    bad = tmp_path / 'equivalents.txt'
    bad.write_text('0123456789 no reason\n')
    monkeypatch.setattr(mutate, 'EQUIVALENTS', str(bad))
    monkeypatch.setattr(mutate, 'ensure_venvs', lambda: pytest.fail('ran'))
    assert mutate.main(['mutate.py']) == 2
    assert 'line 1: 0123456789 has no " -- reason"' in capsys.readouterr().out


def test_help_lists_the_targets(capsys):
    assert mutate.main(['mutate.py', '--help']) == 0
    out = capsys.readouterr().out
    assert 'mutation: K killed' in out
    for target in mutate.TARGETS:
        assert target in out
