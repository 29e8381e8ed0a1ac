#!/usr/bin/env python3
"""``make docs``: the admin guide and the release notes, from the tree.

1. a virtualenv at build/docs-venv with the tree's doc/requirements.txt
   and requirements.txt, pinned by constraints.txt; kept while those
   three files are unchanged, so that later runs need no network;
2. a clone of build/oslo.messaging (its committed content) in a
   temporary directory: pbr rewrites AUTHORS and ChangeLog where it
   builds, and the tree must stay as ``make status`` wants it;
3. that clone installed into the virtualenv (no dependencies, no build
   isolation: offline), for the option lists of the configuration pages;
4. ``sphinx-build -W --keep-going`` of doc/source (the admin guide and
   the rest of the documentation) into build/docs/doc;
5. the release notes of the series only into build/docs/releasenotes:
   the sdist has no upstream branches for the pages of earlier series
   (``tox -e releasenotes`` fails on ``unmaintained/2023.1``), so the
   clone keeps the current series page alone, without the notes of the
   pinned release (tagged there as such).

Prints the number of warnings (any is an error) and the wall time.
"""

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import series  # noqa: E402

LAYOUT = series.layout_or_exit('docs')  # $SERIES: build/ or build/NAME/
BUILD = LAYOUT.build
VENV = os.path.join(BUILD, 'docs-venv')
PY = os.path.join(VENV, 'bin', 'python')
VENV_KEY = os.path.join(VENV, 'docs-key.txt')
OUT = os.path.join(BUILD, 'docs')
CONSTRAINTS = LAYOUT.constraints
REQUIREMENTS = ('doc/requirements.txt', 'requirements.txt')
NOTES_INDEX = '''==============================
 oslo.messaging Release Notes
==============================

.. toctree::
   :maxdepth: 1

   unreleased
'''
NOTES_PAGE = '''=============================
 Current Series Release Notes
=============================

.. release-notes::
'''


class DocsFailed(Exception):
    """What failed and why, in one line."""


def say(msg):
    print('docs: ' + msg, flush=True)


def run(cmd, what, cwd=None, env=None):
    proc = subprocess.run(cmd, cwd=cwd, env=dict(os.environ, **(env or {})),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode != 0:
        print(proc.stdout[-4000:])
        raise DocsFailed('%s failed (exit %d)' % (what, proc.returncode))
    return proc.stdout


def venv_key(tree):
    h = hashlib.sha256()
    for path in [CONSTRAINTS] + [os.path.join(tree, r) for r in REQUIREMENTS]:
        with open(path, 'rb') as f:
            h.update(f.read())
    return h.hexdigest() + '\n'


def ensure_venv(tree):
    key = venv_key(tree)
    try:
        with open(VENV_KEY) as f:
            if f.read() == key and os.path.exists(PY):
                say('reusing %s (same constraints and requirements)'
                    % os.path.relpath(VENV))
                return
    except FileNotFoundError:
        pass
    say('creating %s (needs the package index)' % os.path.relpath(VENV))
    run([sys.executable, '-m', 'venv', '--clear', VENV], 'python3 -m venv')
    pip = [PY, '-m', 'pip', 'install', '-q', '-c', CONSTRAINTS]
    run(pip + ['pip', 'setuptools', 'wheel'], 'pip install pip')
    run(pip + sum([['-r', os.path.join(tree, r)] for r in REQUIREMENTS],
                  []), 'pip install the docs requirements')
    with open(VENV_KEY, 'w') as f:
        f.write(key)


def count_warnings(output):
    """Sphinx's warnings and errors in its output."""
    return len(re.findall(r'^.*\b(WARNING|ERROR|CRITICAL):', output,
                          re.MULTILINE))


def keep_current_notes(src):
    """Leave the release notes of the series alone in the clone src.

    The pages of earlier series go (their branches are not in the
    sdist); the current series page ignores the notes of the pinned
    release.
    """
    notes = os.path.join(src, 'releasenotes', 'source')
    for fname in os.listdir(notes):
        if fname.endswith('.rst') and \
                fname not in ('index.rst', 'unreleased.rst'):
            os.unlink(os.path.join(notes, fname))
    with open(os.path.join(notes, 'index.rst'), 'w') as f:
        f.write(NOTES_INDEX)
    upstream = series.git(src, 'ls-tree', '--name-only', 'upstream',
                          'releasenotes/notes/').stdout.split()
    with open(os.path.join(notes, 'unreleased.rst'), 'w') as f:
        f.write(NOTES_PAGE)
        if upstream:
            f.write('   :ignore-notes: %s\n' % ', '.join(
                os.path.basename(path) for path in upstream))


def sphinx(src, args, out, what):
    cmd = [os.path.join(VENV, 'bin', 'sphinx-build'), '-W', '--keep-going',
           '-b', 'html'] + args + [out]
    proc = subprocess.run(cmd, cwd=src, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    warnings = count_warnings(proc.stdout)
    if proc.returncode != 0:
        print(proc.stdout[-4000:])
        raise DocsFailed('sphinx-build of %s failed (exit %d, %d '
                         'warning(s))' % (what, proc.returncode, warnings))
    return warnings


def build(tree=None):
    tree = tree or LAYOUT.tree
    ser = series.Series(ROOT)
    if not os.path.isdir(os.path.join(tree, '.git')):
        raise DocsFailed('no tree at %s: run "make tree"'
                         % os.path.relpath(tree))
    if series.git(tree, 'status', '--porcelain').stdout.strip():
        say('warning: uncommitted changes in %s are not in the docs'
            % os.path.relpath(tree))
    ensure_venv(tree)
    version = ser.pin['version']
    with tempfile.TemporaryDirectory(dir=BUILD) as tmp:
        src = os.path.join(tmp, 'src')
        series.git(BUILD, 'clone', '-q', tree, src)
        series.git(src, 'tag', version, 'upstream')
        count = len(series.git(src, 'rev-list',
                               'upstream..HEAD').stdout.split())
        say('installing the tree (%s + %d patches) into %s'
            % (version, count, os.path.relpath(VENV)))
        run([PY, '-m', 'pip', 'install', '-q', '--no-deps',
             '--no-build-isolation', '--no-index', '--force-reinstall',
             src], 'pip install the tree', env={'PBR_VERSION': version})
        shutil.rmtree(OUT, ignore_errors=True)
        say('sphinx-build doc/source -> %s'
            % os.path.relpath(os.path.join(OUT, 'doc')))
        warnings = sphinx(src, ['doc/source'], os.path.join(OUT, 'doc'),
                          'doc/source')
        keep_current_notes(src)
        say('sphinx-build releasenotes/source (current series) -> %s'
            % os.path.relpath(os.path.join(OUT, 'releasenotes')))
        warnings += sphinx(src, ['-a', '-E', 'releasenotes/source'],
                           os.path.join(OUT, 'releasenotes'),
                           'releasenotes/source')
    return warnings


def main():
    start = time.monotonic()
    try:
        warnings = build()
    except (DocsFailed, series.SeriesError) as exc:
        sys.exit('docs: error: %s' % exc)
    say('%d warning(s); admin guide %s, release notes %s; done in %.0f s'
        % (warnings,
           os.path.relpath(os.path.join(OUT, 'doc', 'admin', 'index.html')),
           os.path.relpath(os.path.join(OUT, 'releasenotes', 'index.html')),
           time.monotonic() - start))


if __name__ == '__main__':
    main()
