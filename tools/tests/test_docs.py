"""Tests of tools/docs.py: a clone of the tree, the notes page, warnings.

sphinx-build and pip are replaced (the real build needs the docs
virtualenv, which needs the package index once); git is real.
"""

import os
import subprocess

import pytest

from test_series import commit, message, tool
from test_series import repo  # noqa: F401 (fixture)
import docs


def test_count_warnings():
    out = ('reading sources...\n'
           '/x/doc/source/admin/rabbit.rst:391: WARNING: undefined label\n'
           '/x/y.rst:3: ERROR: Unknown directive type "foo".\n'
           'EventletDeprecationWarning: eventlet is deprecated\n'
           'build finished with problems, 2 warnings\n')
    assert docs.count_warnings(out) == 2
    assert docs.count_warnings('build succeeded.\n') == 0


@pytest.fixture
def tree(repo):  # noqa: F811
    """A tree whose upstream has notes and pages of earlier series."""
    assert tool(repo, 'tree').returncode == 0
    path = repo / 'build' / 'toy'
    source = path / 'releasenotes' / 'source'
    source.mkdir(parents=True)
    (source / 'index.rst').write_text('.. toctree::\n\n   unreleased\n'
                                      '   2023.1\n')
    (source / 'unreleased.rst').write_text('.. release-notes::\n')
    (source / '2023.1.rst').write_text('.. release-notes::\n'
                                       '   :branch: unmaintained/2023.1\n')
    (path / 'releasenotes' / 'notes').mkdir()
    (path / 'releasenotes' / 'notes' / 'old-1234.yaml').write_text('x\n')
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull,
               GIT_AUTHOR_NAME='u', GIT_AUTHOR_EMAIL='u@x',
               GIT_COMMITTER_NAME='u', GIT_COMMITTER_EMAIL='u@x')
    # as if the sdist had them: part of the commit tagged upstream
    subprocess.run(['git', 'add', '-A'], cwd=path, check=True, env=env)
    subprocess.run(['git', 'commit', '-q', '--amend', '--no-edit'],
                   cwd=path, check=True, env=env)
    subprocess.run(['git', 'tag', '-f', 'upstream'], cwd=path, check=True,
                   env=env, stdout=subprocess.DEVNULL)
    commit(str(path), 'releasenotes/notes/ours-5678.yaml', 'y\n',
           message('Add a note'))
    return path


def test_keep_current_notes(tree):
    docs.keep_current_notes(str(tree))
    source = tree / 'releasenotes' / 'source'
    assert sorted(os.listdir(source)) == ['index.rst', 'unreleased.rst']
    index = (source / 'index.rst').read_text()
    assert 'unreleased' in index and '2023.1' not in index
    page = (source / 'unreleased.rst').read_text()
    assert '.. release-notes::\n   :ignore-notes: old-1234.yaml\n' in page
    assert 'ours-5678' not in page


@pytest.fixture
def fake_build(tree, tmp_path, monkeypatch):
    out = tmp_path / 'out'
    monkeypatch.setattr(docs, 'BUILD', str(tmp_path))
    monkeypatch.setattr(docs, 'OUT', str(out))
    monkeypatch.setattr(docs, 'ensure_venv', lambda tree: None)
    pips, builds = [], []

    def run(cmd, what, cwd=None, env=None):
        pips.append((cmd, env))
        return ''

    def sphinx(src, args, out_dir, what):
        builds.append((src, args, out_dir,
                       sorted(os.listdir(os.path.join(
                           src, 'releasenotes', 'source')))))
        return 0
    monkeypatch.setattr(docs, 'run', run)
    monkeypatch.setattr(docs, 'sphinx', sphinx)
    return out, pips, builds


def test_build_works_on_a_clone_and_leaves_the_tree_clean(
        tree, fake_build):
    out, pips, builds = fake_build
    head = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=tree,
                          stdout=subprocess.PIPE, text=True).stdout
    assert docs.build(str(tree)) == 0
    (cmd, env), = pips
    assert '--no-index' in cmd and '--no-build-isolation' in cmd
    assert env == {'PBR_VERSION': docs.series.Series(docs.ROOT).pin[
        'version']}
    src = cmd[-1]
    assert not src.startswith(str(tree))
    assert [b[1][-1] for b in builds] == ['doc/source',
                                          'releasenotes/source']
    assert all(b[0] == src for b in builds)
    assert builds[0][2] == str(out / 'doc')
    assert builds[1][2] == str(out / 'releasenotes')
    # the notes page alone when the release notes are built
    assert builds[1][3] == ['index.rst', 'unreleased.rst']
    assert subprocess.run(['git', 'status', '--porcelain'], cwd=tree,
                          stdout=subprocess.PIPE,
                          text=True).stdout == ''
    assert subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=tree,
                          stdout=subprocess.PIPE, text=True).stdout == head
    assert not os.path.exists(src)


def test_sphinx_runs_with_warnings_as_errors(tmp_path, monkeypatch):
    calls = []

    def fake(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(
            cmd, 1, 'x.rst:1: WARNING: undefined label\n')
    monkeypatch.setattr(subprocess, 'run', fake)
    with pytest.raises(docs.DocsFailed, match=r'exit 1, 1 warning'):
        docs.sphinx(str(tmp_path), ['doc/source'], 'out', 'doc/source')
    assert calls[0][1:3] == ['-W', '--keep-going']


def test_no_tree_is_one_line(tmp_path, monkeypatch):
    with pytest.raises(docs.DocsFailed, match='no tree at .*make tree'):
        docs.build(str(tmp_path / 'none'))


def test_docs_venv_reused_until_a_pin_changes(tree, tmp_path, monkeypatch):
    venv = tmp_path / 'venv'
    constraints = tmp_path / 'constraints.txt'
    constraints.write_text('Sphinx==1\n')
    (tree / 'doc').mkdir()
    (tree / 'doc' / 'requirements.txt').write_text('sphinx\n')
    (tree / 'requirements.txt').write_text('pbr\n')
    monkeypatch.setattr(docs, 'CONSTRAINTS', str(constraints))
    monkeypatch.setattr(docs, 'VENV', str(venv))
    monkeypatch.setattr(docs, 'PY', str(venv / 'python'))
    monkeypatch.setattr(docs, 'VENV_KEY', str(venv / 'key'))
    calls = []

    def run(cmd, what, cwd=None, env=None):
        calls.append(cmd)
        venv.mkdir(exist_ok=True)
        (venv / 'python').write_text('')
        return ''
    monkeypatch.setattr(docs, 'run', run)
    docs.ensure_venv(str(tree))
    assert len(calls) == 3
    docs.ensure_venv(str(tree))
    assert len(calls) == 3
    constraints.write_text('Sphinx==2\n')
    docs.ensure_venv(str(tree))
    assert len(calls) == 6
