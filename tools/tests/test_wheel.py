"""Tests of ``series.py wheel``: the version label, --plain and --reuse.

pip is replaced by a fake builder (the real build needs pbr and the
package index); everything else (git, the tree, dist/) is real.
"""

import os
import zipfile

import pytest

from test_series import commit, message, tool  # noqa: F401
from test_series import repo  # noqa: F401 (fixture)
import series


class FakePip:
    """Series._pip_wheel: a wheel named after the version it is given."""

    def __init__(self):
        self.versions = []

    def __call__(self, src, outdir, version):
        self.versions.append(version)
        path = os.path.join(outdir, 'toy-%s-py3-none-any.whl' % version)
        with zipfile.ZipFile(path, 'w') as whl:
            whl.write(os.path.join(src, 'toy.py'), 'toy.py')
        return 0, ''


@pytest.fixture
def built(repo, monkeypatch):  # noqa: F811
    assert tool(repo, 'tree').returncode == 0
    s = series.Series(str(repo))
    fake = FakePip()
    monkeypatch.setattr(s, '_pip_wheel', fake)
    return s, fake


def tree_id(s):
    return series.git(s.tree, 'rev-parse', 'HEAD^{tree}').stdout.strip()


def test_wheel_version_labels():
    assert series.wheel_version('18.3.1', 17, 'abcdef0123', plain=True) \
        == '18.3.1'
    assert series.wheel_version('18.3.1', 17, 'abcdef0123') == \
        '18.3.1+fork17.abcdef01'


def test_default_wheel_has_the_local_label(built):
    s, fake = built
    path = s.wheel()
    assert fake.versions == ['1.0+fork0.%s' % tree_id(s)[:8]]
    assert os.path.basename(path) == \
        'toy-1.0+fork0.%s-py3-none-any.whl' % tree_id(s)[:8]


def test_plain_wheel_is_the_pinned_version_and_replaces_the_other(built):
    s, fake = built
    s.wheel()
    path = s.wheel(plain=True)
    assert fake.versions[-1] == '1.0'
    assert os.path.basename(path) == 'toy-1.0-py3-none-any.whl'
    assert sorted(f for f in os.listdir(s.dist) if f.endswith('.whl')) == \
        ['toy-1.0-py3-none-any.whl']


def test_reuse_keeps_a_wheel_of_the_same_tree_and_version(built):
    s, fake = built
    first = s.wheel(reuse=True)
    with open(first, 'rb') as f:
        content = f.read()
    assert s.wheel(reuse=True) == first
    assert len(fake.versions) == 1
    with open(first, 'rb') as f:
        assert f.read() == content
    # without --reuse (make wheel, make test) it always builds
    s.wheel()
    assert len(fake.versions) == 2


def test_reuse_rebuilds_after_a_commit_or_for_the_other_version(built):
    s, fake = built
    s.wheel(reuse=True)
    s.wheel(plain=True, reuse=True)
    assert fake.versions[-1] == '1.0'
    commit(s.tree, 'toy.py', 'def answer():\n    return 42\n',
           message('Fix the answer'))
    path = s.wheel(plain=True, reuse=True)
    assert len(fake.versions) == 3
    with zipfile.ZipFile(path) as whl:
        assert b'return 42' in whl.read('toy.py')


def test_reuse_rebuilds_a_deleted_wheel(built):
    s, fake = built
    os.unlink(s.wheel(reuse=True))
    assert os.path.isfile(s.wheel(reuse=True))
    assert len(fake.versions) == 2
