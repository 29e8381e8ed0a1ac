"""Tests of a second series (SERIES): layout, shared patches, export and
the identity check, on two small throwaway upstream sdists (toy 1.0 for
the default series, toy 0.9 for the series "stable")."""

import os
import subprocess

import pytest

import series
from test_series import GIT_ID  # noqa: H306
from test_series import make_sdist
from test_series import message
from test_series import repo  # noqa: F401 (fixture)
from test_series import tool

# One author date, so that the same commit in both trees is the same patch.
DATE = {'GIT_AUTHOR_DATE': '2024-01-01T00:00:00+0000'}
STABLE = {'SERIES': 'stable'}
MODULE = 'toy/new.py'


@pytest.fixture
def two(repo):  # noqa: F811
    """repo plus the series "stable" against toy 0.9, both empty."""
    top = repo / 'stable'
    (top / 'patches').mkdir(parents=True)
    download = repo / 'build' / 'stable' / 'download'
    download.mkdir(parents=True)
    digest = make_sdist(str(download / 'toy-0.9.tar.gz'), version='0.9')
    (top / 'upstream.pin').write_text(
        'name = toy\nversion = 0.9\nsha256 = %s\n' % digest)
    (top / 'patches' / 'series').write_text('')
    return repo


def commit_file(tree, path, text, summary, n=1):
    """Commit path (created with text) in tree; the same bytes each time."""
    full = os.path.join(tree, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, 'w') as f:
        f.write(text)
    env = dict(os.environ, **GIT_ID, **DATE)
    subprocess.run(['git', 'add', path], cwd=tree, check=True, env=env)
    subprocess.run(['git', 'commit', '-q', '-m', message(
        summary, change_id='Change-Id: I%s' % (str(n) * 40))], cwd=tree,
        check=True, env=env)


def ok(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def add_module(root, env, text, extra=()):
    """Build the tree of a series, commit MODULE (and extra), export."""
    ok(tool(root, 'tree', '--force', env=env))
    name = (env or {}).get('SERIES', '')
    tree = str(root / 'build' / name / 'toy')
    commit_file(tree, MODULE, text, 'Add a module')
    for number, path in enumerate(extra, start=2):
        commit_file(tree, path, 'x = %d\n' % number, 'Add %s' % path,
                    n=number)
    ok(tool(root, 'export', env=env))
    return tree


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


# -- layout ------------------------------------------------------------------

def test_layout_of_both_series(two, monkeypatch):
    root = str(two)
    default = series.layout('', root)
    assert default.pin_file == os.path.join(root, 'upstream.pin')
    assert default.series_file == os.path.join(root, 'patches', 'series')
    assert default.constraints == os.path.join(root, 'constraints.txt')
    assert default.build == os.path.join(root, 'build')
    assert default.tree == os.path.join(root, 'build', 'toy')
    assert default.venv == os.path.join(root, 'build', 'venv')
    assert default.download == os.path.join(root, 'build', 'download')
    assert default.dist == os.path.join(root, 'dist')
    assert default.label == ''
    stable = series.layout('stable', root)
    assert stable.pin_file == os.path.join(root, 'stable', 'upstream.pin')
    assert stable.pin['version'] == '0.9'
    assert stable.patches == os.path.join(root, 'stable', 'patches')
    assert stable.constraints == os.path.join(root, 'stable',
                                              'constraints.txt')
    assert stable.differences == os.path.join(root, 'stable',
                                              'differences.txt')
    assert stable.build == os.path.join(root, 'build', 'stable')
    assert stable.tree == os.path.join(root, 'build', 'stable', 'toy')
    assert stable.venv == os.path.join(root, 'build', 'stable', 'venv')
    assert stable.download == os.path.join(root, 'build', 'stable',
                                           'download')
    assert stable.dist == os.path.join(root, 'dist', 'stable')
    assert stable.label == 'stable '
    assert series.known_series(root) == ['', 'stable']
    monkeypatch.setenv('SERIES', 'stable')
    assert series.layout(root=root).name == 'stable'
    monkeypatch.setenv('SERIES', '')
    assert series.layout(root=root).name == ''


def test_unknown_series_is_one_line_naming_the_known_ones(two):
    proc = tool(two, 'tree', env={'SERIES': 'nope'})
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert 'SERIES=nope is not a known series' in lines[0]
    assert 'the default one' in lines[0] and 'stable' in lines[0]
    assert not (two / 'build' / 'nope').exists()


# -- series files: paths relative to their folder ---------------------------

def test_shared_patch_resolves_and_missing_one_is_an_error(two):
    add_module(two, None, 'VALUE = 1\n')
    listed = '../../patches/0001-Add-a-module.patch\n'
    (two / 'stable' / 'patches' / 'series').write_text(listed)
    ok(tool(two, 'tree', env=STABLE))
    tree = two / 'build' / 'stable' / 'toy'
    assert (tree / MODULE).read_text() == 'VALUE = 1\n'
    assert 'version=\'0.9\'' in (tree / 'setup.py').read_text()
    ok(tool(two, 'status', env=STABLE))
    ok(tool(two, 'check', '--only', env=STABLE))
    (two / 'stable' / 'patches' / 'series').write_text(
        listed + '../../patches/0009-Gone.patch\n')
    proc = tool(two, 'tree', '--force', env=STABLE)
    assert proc.returncode == 1
    assert 'lists ../../patches/0009-Gone.patch, which does not exist' \
        in proc.stderr


# -- export ------------------------------------------------------------------

def test_export_lists_shared_patches_and_writes_own_ones(two):
    add_module(two, None, 'VALUE = 1\n')
    default = snapshot(two / 'patches')
    own = two / 'stable' / 'patches'
    # A stale own copy of the patch the default series has byte for byte.
    (own / '0001-Add-a-module.patch').write_bytes(
        default['0001-Add-a-module.patch'])
    (own / 'series').write_text('0001-Add-a-module.patch\n')
    ok(tool(two, 'tree', env=STABLE))
    commit_file(str(two / 'build' / 'stable' / 'toy'), 'toy/only.py',
                'x = 2\n', 'Add toy/only.py', n=2)
    ok(tool(two, 'export', env=STABLE))
    lines = [line for line in (own / 'series').read_text().splitlines()
             if not line.startswith('#')]
    assert lines == ['../../patches/0001-Add-a-module.patch',
                     '0002-Add-toy-only.py.patch']
    assert sorted(p.name for p in own.iterdir()) == [
        '0002-Add-toy-only.py.patch', 'series']
    assert snapshot(two / 'patches') == default
    ok(tool(two, 'status', env=STABLE))
    # Rebuilt from the series, exported again: the same files.
    ok(tool(two, 'tree', env=STABLE))
    ok(tool(two, 'export', env=STABLE))
    assert [line for line in (own / 'series').read_text().splitlines()
            if not line.startswith('#')] == lines
    # A commit dropped from the tree: its own file goes, shared ones stay.
    subprocess.run(['git', 'reset', '-q', '--hard', 'HEAD~1'],
                   cwd=str(two / 'build' / 'stable' / 'toy'), check=True)
    ok(tool(two, 'export', env=STABLE))
    assert sorted(p.name for p in own.iterdir()) == ['series']
    assert snapshot(two / 'patches') == default


def test_export_finds_a_shared_patch_under_another_number(two):
    add_module(two, None, 'VALUE = 1\n')
    ok(tool(two, 'tree', env=STABLE))
    tree = str(two / 'build' / 'stable' / 'toy')
    # A patch of its own first: the shared one is its 0002, not 0001.
    commit_file(tree, 'toy/only.py', 'x = 2\n', 'Add toy/only.py', n=2)
    commit_file(tree, MODULE, 'VALUE = 1\n', 'Add a module')
    ok(tool(two, 'export', env=STABLE))
    own = two / 'stable' / 'patches'
    assert [line for line in (own / 'series').read_text().splitlines()
            if not line.startswith('#')] == [
        '0001-Add-toy-only.py.patch',
        '../../patches/0001-Add-a-module.patch']
    assert sorted(p.name for p in own.iterdir()) == [
        '0001-Add-toy-only.py.patch', 'series']
    ok(tool(two, 'status', env=STABLE))


def test_export_writes_a_patch_that_differs_from_the_default_one(two):
    add_module(two, None, 'VALUE = 1\n')
    add_module(two, STABLE, 'VALUE = 2\n')
    own = two / 'stable' / 'patches'
    assert '0001-Add-a-module.patch\n' in (own / 'series').read_text()
    assert b'+VALUE = 2' in (own / '0001-Add-a-module.patch').read_bytes()
    assert b'+VALUE = 1' in (two / 'patches' /
                             '0001-Add-a-module.patch').read_bytes()


# -- the identity check ------------------------------------------------------

def test_identity_check_passes_when_both_add_the_same(two):
    add_module(two, None, 'VALUE = 1\n')
    add_module(two, STABLE, 'VALUE = 1\n', extra=['toy/only.py'])
    proc = ok(tool(two, 'check'))
    assert 'series OK: 1 patches' in proc.stdout
    assert 'series stable OK: 2 patches' in proc.stdout
    assert 'identical: 1 files added by both series (default, stable); ' \
        '0 differ as listed' in proc.stdout
    assert 'identical: 1 files' in ok(tool(two, 'compare')).stdout
    assert 'identical: 1 files' in ok(tool(two, 'check',
                                           env=STABLE)).stdout


def test_identity_check_fails_with_a_diff_when_they_differ(two):
    add_module(two, None, 'VALUE = 1\n')
    add_module(two, STABLE, 'VALUE = 2\n')
    for args, env in ((['check'], None), (['check'], STABLE),
                      (['compare'], None)):
        proc = tool(two, *args, env=env)
        assert proc.returncode == 1, args
        assert 'compare: toy/new.py differs between the default series ' \
               'and stable' in proc.stderr
        assert 'compare:   -VALUE = 1\n' in proc.stderr
        assert 'compare:   +VALUE = 2\n' in proc.stderr
        assert 'failed: identity check of stable' in proc.stderr
    # check --only: the series alone, no identity check
    ok(tool(two, 'check', '--only', env=STABLE))


def test_a_listed_difference_passes(two):
    add_module(two, None, 'VALUE = 1\n')
    add_module(two, STABLE, 'VALUE = 2\n')
    (two / 'stable' / 'differences.txt').write_text(
        '# path  # reason\n%s  # 0.9 has no VALUE 1\n' % MODULE)
    proc = ok(tool(two, 'check'))
    assert 'identical: 0 files added by both series (default, stable); ' \
        '1 differs as listed' in proc.stdout


def test_a_stale_listing_fails(two):
    add_module(two, None, 'VALUE = 1\n')
    add_module(two, STABLE, 'VALUE = 1\n')
    (two / 'stable' / 'differences.txt').write_text(
        '%s  # once differed\ntoy/never.py  # never added\n' % MODULE)
    proc = tool(two, 'check')
    assert proc.returncode == 1
    assert ('stable/differences.txt: toy/new.py is identical in both '
            'series') in proc.stderr
    assert 'stale entry in ' in proc.stderr
    assert 'toy/never.py is not a file both series add' in proc.stderr


def test_a_listing_without_reason_is_refused(two):
    add_module(two, None, 'VALUE = 1\n')
    add_module(two, STABLE, 'VALUE = 2\n')
    (two / 'stable' / 'differences.txt').write_text(MODULE + '\n')
    proc = tool(two, 'check')
    assert proc.returncode == 1
    assert 'toy/new.py has no reason' in proc.stderr


def test_short_diff_is_cut():
    old = ''.join('line %d\n' % n for n in range(100)).encode()
    diff = series.short_diff(old, b'', 'a', 'b', lines=40)
    assert len(diff) == 41
    assert diff[-1].startswith('[... ') and diff[-1].endswith(' more lines]')
