"""Tests of tools/rebase_check.py on a toy upstream and a toy series."""

import os
import subprocess
import sys

import pytest

from test_series import GIT_ID, commit, message, tool
from test_series import repo  # noqa: F401 (fixture)
import rebase_check

TOY_FILES = {
    'setup.py': 'from setuptools import setup\n'
                'setup(name=\'toy\', version=\'1.0\', py_modules=["toy"])\n',
    'toy.py': 'def answer():\n    return 41\n',
    'README': 'A toy upstream.\n',
    'PKG-INFO': 'Metadata-Version: 2.1\nName: toy\nVersion: 1.0\n',
}


def git(cwd, *args):
    return subprocess.run(['git', *args], cwd=cwd, check=True, text=True,
                          stdout=subprocess.PIPE,
                          env=dict(os.environ, **GIT_ID)).stdout


@pytest.fixture
def upstream(tmp_path):
    """A git clone of upstream: the toy sdist, then a change of toy.py."""
    path = tmp_path / 'upstream'
    path.mkdir()
    for name, text in TOY_FILES.items():
        (path / name).write_text(text)
    git(path, 'init', '-q', '-b', 'main')
    git(path, 'add', '-A')
    git(path, 'commit', '-q', '-m', 'Release 1.0')
    git(path, 'tag', 'v1.0')
    commit(str(path), 'toy.py', 'def answer():\n    return 43\n',
           'Answer 43')
    return path


@pytest.fixture
def toy_series(repo):  # noqa: F811
    """Patches with names of their own: README, toy.py, a DUP marker."""
    assert tool(repo, 'tree').returncode == 0
    tree = str(repo / 'build' / 'toy')
    commit(tree, 'README', 'A toy upstream.\nPatched.\n',
           message('Say it is patched'))
    commit(tree, 'toy.py', 'def answer():\n    return 42\n',
           message('Answer 42', change_id='Change-Id: I' + '2' * 40))
    commit(tree, 'DUP', 'x\n',
           message('Define an option twice',
                   change_id='Change-Id: I' + '3' * 40))
    assert tool(repo, 'export').returncode == 0
    return repo


def fake_check(tree, python):
    """rebase_check.check_tree: fails while the tree has a DUP file."""
    if os.path.exists(os.path.join(tree, 'DUP')):
        return 'DuplicateOptError: duplicate option: answer'
    return None


def run_check(repo, upstream, ref, monkeypatch):  # noqa: F811
    monkeypatch.setattr(rebase_check, 'check_tree', fake_check)
    return rebase_check.main(['--root', str(repo), '--git', str(upstream),
                              '--python', sys.executable, ref])


def table_rows(root, ref):
    path = root / 'build' / ('rebase-check-%s.md' % ref)
    return [line for line in path.read_text().splitlines()
            if line.startswith('| ') and not line.startswith(('| #',
                                                              '| ---'))]


def test_series_onto_its_own_base_applies(toy_series, upstream,
                                          monkeypatch):
    names = (toy_series / 'patches' / 'series').read_text().split('\n')
    assert run_check(toy_series, upstream, 'v1.0', monkeypatch) == 1
    rows = table_rows(toy_series, 'v1.0')
    assert [r.split(' | ')[1] for r in rows] == \
        [n for n in names if n.endswith('.patch')]
    assert rows[0].endswith('| applies |')
    assert rows[1].endswith('| applies |')
    assert 'applies but fails (DuplicateOptError: duplicate option' in \
        rows[2]


def test_conflict_is_named_and_the_next_patches_go_on(toy_series, upstream,
                                                      monkeypatch, capsys):
    assert run_check(toy_series, upstream, 'main', monkeypatch) == 1
    rows = table_rows(toy_series, 'main')
    assert rows[0].endswith('| applies |')
    assert rows[1].endswith('| conflicts (toy.py) |')
    assert 'applies but fails' in rows[2]
    out = capsys.readouterr().out
    assert '3 patches: 1 apply (0 of them on a tree that already failed ' \
        'the check), 1 conflict, 1 apply but fail' in out


def test_all_clean_exits_zero(toy_series, upstream, monkeypatch):
    monkeypatch.setattr(rebase_check, 'check_tree', lambda t, p: None)
    assert rebase_check.main(['--root', str(toy_series), '--git',
                              str(upstream), '--python', sys.executable,
                              'v1.0']) == 0


def test_a_failure_already_at_the_base_is_still_fails(
        toy_series, upstream, monkeypatch):
    monkeypatch.setattr(rebase_check, 'check_tree',
                        lambda t, p: 'SyntaxError: boom')
    assert rebase_check.main(['--root', str(toy_series), '--git',
                              str(upstream), '--python', sys.executable,
                              'v1.0']) == 1
    rows = table_rows(toy_series, 'v1.0')
    assert all(r.endswith('| applies (still fails as above) |')
               for r in rows)


@pytest.mark.parametrize('args, error', [
    (['v1.0'], 'no upstream clone was given'),
    (['--git', '/nonexistent', 'v1.0'], 'no git clone at /nonexistent'),
    (['--git', 'UPSTREAM', 'no-such-ref'], 'has no ref no-such-ref'),
])
def test_bad_input_is_one_line(toy_series, upstream, monkeypatch, capsys,
                               args, error):
    monkeypatch.delenv('UPSTREAM_GIT', raising=False)
    args = [str(upstream) if a == 'UPSTREAM' else a for a in args]
    assert rebase_check.main(['--root', str(toy_series), '--python',
                              sys.executable] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert error in err[0]


def test_check_tree_reports_the_error_line(tmp_path):
    """The real check, on a fake package whose option list has a twin."""
    pkg = tmp_path / 'oslo_messaging'
    (pkg / '_drivers').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / '_drivers' / '__init__.py').write_text('')
    (pkg / '_drivers' / 'impl_rabbit.py').write_text('')
    (pkg / 'opts.py').write_text(
        'from oslo_config import cfg\n'
        'def list_opts():\n'
        '    return [("rabbit", [cfg.BoolOpt("x", help="a"),\n'
        '                        cfg.BoolOpt("x", help="b")])]\n')
    # a stand-in for oslo.config (the tooling's virtualenv has none)
    conf = tmp_path / 'oslo_config'
    conf.mkdir()
    (conf / '__init__.py').write_text('')
    (conf / 'cfg.py').write_text(
        'class DuplicateOptError(Exception):\n'
        '    pass\n'
        'class BoolOpt:\n'
        '    def __init__(self, name, help):\n'
        '        self.name, self.help = name, help\n'
        'class ConfigOpts:\n'
        '    def __init__(self):\n'
        '        self.opts = {}\n'
        '    def register_opts(self, opts, group):\n'
        '        for o in opts:\n'
        '            old = self.opts.setdefault((group, o.name), o)\n'
        '            if old is not o:\n'
        '                raise DuplicateOptError(\n'
        '                    "duplicate option: %s" % o.name)\n')
    reason = rebase_check.check_tree(str(tmp_path), sys.executable)
    assert reason == 'oslo_config.cfg.DuplicateOptError: duplicate ' \
        'option: x'
    (pkg / 'opts.py').write_text(
        'from oslo_config import cfg\n'
        'def list_opts():\n'
        '    return [("rabbit", [cfg.BoolOpt("x", help="a")])]\n')
    assert rebase_check.check_tree(str(tmp_path), sys.executable) is None
    (pkg / '_drivers' / 'impl_rabbit.py').write_text('def broken(:\n')
    reason = rebase_check.check_tree(str(tmp_path), sys.executable)
    assert reason == 'SyntaxError: invalid syntax'
