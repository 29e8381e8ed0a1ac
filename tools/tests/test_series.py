"""Tests of tools/series.py on a small throwaway upstream sdist."""

import hashlib
import io
import os
import subprocess
import sys
import tarfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
TOOL = os.path.join(HERE, '..', 'series.py')
sys.path.insert(0, os.path.join(HERE, '..'))
import series  # noqa: E402

CHANGE_ID = 'Change-Id: I' + '1' * 40
GIT_ID = {'GIT_AUTHOR_NAME': 'Dev', 'GIT_AUTHOR_EMAIL': 'dev@example.org',
          'GIT_COMMITTER_NAME': 'Dev',
          'GIT_COMMITTER_EMAIL': 'dev@example.org',
          'GIT_CONFIG_GLOBAL': os.devnull, 'GIT_CONFIG_NOSYSTEM': '1'}


def make_sdist(path, name='toy', version='1.0'):
    """A minimal setuptools sdist: toy-1.0/{setup.py,toy.py,README}."""
    files = {
        'setup.py': 'from setuptools import setup\n'
                    'setup(name=%r, version=%r, py_modules=["toy"])\n'
                    % (name, version),
        'toy.py': 'def answer():\n    return 41\n',
        'README': 'A toy upstream.\n',
        'PKG-INFO': 'Metadata-Version: 2.1\nName: %s\nVersion: %s\n'
                    % (name, version),
    }
    with tarfile.open(path, 'w:gz') as tar:
        for fname, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo('%s-%s/%s' % (name, version, fname))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def repo(tmp_path):
    """A patch-series repository whose sdist is already downloaded."""
    root = tmp_path / 'repo'
    (root / 'patches').mkdir(parents=True)
    (root / 'build' / 'download').mkdir(parents=True)
    digest = make_sdist(str(root / 'build' / 'download' / 'toy-1.0.tar.gz'))
    write_pin(root, digest)
    (root / 'patches' / 'series').write_text('# empty series\n')
    return root


def write_pin(root, digest, version='1.0'):
    (root / 'upstream.pin').write_text(
        'name = toy\nversion = %s\nsha256 = %s\n' % (version, digest))


def tool(root, *args, env=None):
    return subprocess.run(
        [sys.executable, TOOL, '--root', str(root), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, **(env or {})))


def commit(tree, fname, text, message):
    with open(os.path.join(tree, fname), 'w') as f:
        f.write(text)
    env = dict(os.environ, **GIT_ID)
    subprocess.run(['git', 'add', fname], cwd=tree, check=True, env=env)
    subprocess.run(['git', 'commit', '-q', '-m', message], cwd=tree,
                   check=True, env=env)


def message(summary, change_id=CHANGE_ID, body='Explain the change.'):
    return '%s\n\n%s\n\n%s\n' % (summary, body, change_id)


def snapshot(root):
    patches = root / 'patches'
    return {p.name: p.read_bytes() for p in sorted(patches.iterdir())}


def test_hash_mismatch_refused_and_nothing_left(tmp_path):
    root = tmp_path / 'repo'
    (root / 'patches').mkdir(parents=True)
    (root / 'patches' / 'series').write_text('')
    links = tmp_path / 'links'
    links.mkdir()
    actual = make_sdist(str(links / 'toy-1.0.tar.gz'))
    write_pin(root, '0' * 64)
    env = {'PIP_NO_INDEX': '1', 'PIP_FIND_LINKS': str(links),
           'PIP_NO_BUILD_ISOLATION': '0', 'PIP_CONSTRAINT': ''}
    proc = tool(root, 'tree', env=env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert 'expected sha256 ' + '0' * 64 in lines[0]
    assert 'got ' + actual in lines[0]
    assert not (root / 'build' / 'toy').exists()
    assert not (root / 'build' / 'toy.new').exists()
    leftovers = [p.name for p in (root / 'build').iterdir()]
    assert leftovers == [] or leftovers == ['download'], leftovers
    if (root / 'build' / 'download').exists():
        assert list((root / 'build' / 'download').iterdir()) == []


def test_download_failure_is_one_line(tmp_path):
    root = tmp_path / 'repo'
    (root / 'patches').mkdir(parents=True)
    (root / 'patches' / 'series').write_text('')
    links = tmp_path / 'links'
    links.mkdir()
    write_pin(root, '0' * 64, version='9.9')
    env = {'PIP_NO_INDEX': '1', 'PIP_FIND_LINKS': str(links),
           'PIP_CONSTRAINT': ''}
    proc = tool(root, 'fetch', env=env)
    assert proc.returncode == 1
    assert proc.stderr.count('\n') == 1
    assert 'could not download toy==9.9' in proc.stderr


def test_tree_has_upstream_tag_and_pristine_content(repo):
    proc = tool(repo, 'tree')
    assert proc.returncode == 0, proc.stderr
    tree = repo / 'build' / 'toy'
    assert (tree / 'toy.py').read_text() == 'def answer():\n    return 41\n'
    tags = subprocess.run(['git', 'tag'], cwd=tree, text=True,
                          stdout=subprocess.PIPE).stdout.split()
    assert tags == ['upstream']


def test_patch_that_does_not_apply_is_named(repo):
    (repo / 'patches' / '0001-Break-it.patch').write_text(
        'From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 '
        '2001\nFrom: Dev <dev@example.org>\nDate: Mon, 1 Jan 2024 00:00:00 '
        '+0000\nSubject: [PATCH] Break it\n\n' + CHANGE_ID + '\n---\n'
        'diff --git a/toy.py b/toy.py\n--- a/toy.py\n+++ b/toy.py\n'
        '@@ -1,2 +1,2 @@\n def nothing():\n-    return 7\n+    return 8\n')
    (repo / 'patches' / 'series').write_text('0001-Break-it.patch\n')
    proc = tool(repo, 'tree')
    assert proc.returncode == 1
    assert 'patch 0001-Break-it.patch does not apply' in proc.stderr
    assert not (repo / 'build' / 'toy').exists()
    assert not (repo / 'build' / 'toy.new').exists()


def test_tree_then_export_reproduces_patches_byte_for_byte(repo):
    assert tool(repo, 'tree').returncode == 0
    tree = str(repo / 'build' / 'toy')
    commit(tree, 'toy.py', 'def answer():\n    return 42\n',
           message('Fix the answer'))
    commit(tree, 'NEWS', 'Answer fixed.\n',
           message('Add a news file', change_id='Change-Id: I' + '2' * 40))
    assert tool(repo, 'export').returncode == 0
    first = snapshot(repo)
    assert list(first) == ['0001-Fix-the-answer.patch',
                           '0002-Add-a-news-file.patch', 'series']
    assert b'From 0000000000000000000000000000000000000000' in first[
        '0001-Fix-the-answer.patch']
    assert tool(repo, 'export').returncode == 0
    assert snapshot(repo) == first
    # Rebuild the tree from patches/ alone and export again.
    assert tool(repo, 'tree').returncode == 0
    assert tool(repo, 'export').returncode == 0
    assert snapshot(repo) == first
    assert tool(repo, 'status').returncode == 0


def test_status_detects_dirty_tree_and_unexported_commit(repo):
    assert tool(repo, 'tree').returncode == 0
    assert tool(repo, 'status').returncode == 0
    tree = str(repo / 'build' / 'toy')
    with open(os.path.join(tree, 'toy.py'), 'a') as f:
        f.write('# edited\n')
    proc = tool(repo, 'status')
    assert proc.returncode != 0
    assert 'uncommitted change' in proc.stdout and 'toy.py' in proc.stdout
    assert tool(repo, 'export').returncode != 0  # refuses a dirty tree
    commit(tree, 'toy.py', 'def answer():\n    return 42\n',
           message('Fix the answer'))
    proc = tool(repo, 'status')
    assert proc.returncode != 0
    assert 'commit not exported: 0001-Fix-the-answer.patch' in proc.stdout
    # make tree must not throw the commit away silently
    proc = tool(repo, 'tree')
    assert proc.returncode == 1 and 'not exported' in proc.stderr
    assert tool(repo, 'export').returncode == 0
    assert tool(repo, 'status').returncode == 0


def test_status_detects_patches_edited_since_tree(repo):
    assert tool(repo, 'tree').returncode == 0
    tree = str(repo / 'build' / 'toy')
    commit(tree, 'toy.py', 'x = 1\n', message('Change toy'))
    assert tool(repo, 'export').returncode == 0
    patch = repo / 'patches' / '0001-Change-toy.patch'
    patch.write_text(patch.read_text().replace('x = 1', 'x = 2'))
    proc = tool(repo, 'status')
    assert proc.returncode != 0
    assert 'patches/ changed since the tree was made' in proc.stdout


def series_with(repo, *messages):
    assert tool(repo, 'tree').returncode == 0
    tree = str(repo / 'build' / 'toy')
    for number, msg in enumerate(messages):
        commit(tree, 'file%d' % number, 'content\n', msg)
    assert tool(repo, 'export').returncode == 0


def test_check_accepts_clean_series(repo):
    series_with(repo, message('Fix the answer'),
                message('Add docs', change_id='Change-Id: I' + 'a' * 40))
    proc = tool(repo, 'check')
    assert proc.returncode == 0, proc.stderr
    assert 'series OK: 2 patches' in proc.stdout


def test_check_rejects_long_summary(repo):
    series_with(repo, message('Make the summary line of this commit far '
                              'too long for any Gerrit reviewer to accept'))
    proc = tool(repo, 'check')
    assert proc.returncode == 1
    assert 'summary line is 83 characters' in proc.stderr


def test_check_rejects_missing_change_id(repo):
    series_with(repo, message('Fix the answer', change_id='Closes-Bug: 1'))
    proc = tool(repo, 'check')
    assert proc.returncode == 1
    assert 'no Change-Id trailer' in proc.stderr


def test_check_rejects_duplicate_change_id(repo):
    series_with(repo, message('Fix the answer'), message('Add docs'))
    proc = tool(repo, 'check')
    assert proc.returncode == 1
    assert '0002-Add-docs.patch: %s duplicates the one in ' \
           '0001-Fix-the-answer.patch' % CHANGE_ID in proc.stderr


def test_lint_message_rules():
    ok = message('Fix it')
    assert series.lint_message(ok) == []
    assert series.lint_message('Fix it\nno blank\n\n' + CHANGE_ID) == [
        'second line is not blank']
    long_body = 'word ' * 20
    assert series.lint_message('Fix\n\n%s\n\n%s' % (long_body, CHANGE_ID)) \
        == ['line 3 is 100 characters (at most 72)']
    url = 'See https://bugs.launchpad.net/' + 'x' * 80
    assert series.lint_message('Fix\n\n%s\n\n%s' % (url, CHANGE_ID)) == []
    assert series.lint_message('Fix\n\n%s\n%s' % (CHANGE_ID, CHANGE_ID)) \
        == ['2 Change-Id trailers (exactly one allowed)']
    assert 'malformed' in series.lint_message('Fix\n\nChange-Id: Iabc')[0]
