#!/usr/bin/env python3
"""Keep a quilt-style patch series against a pinned upstream sdist.

The repository holds only what we write: ``upstream.pin`` (name, version
and sha256 of the upstream sdist), ``patches/series`` and the
``git format-patch`` files it lists.  This tool turns that into a git tree
and back:

  fetch    download the pinned sdist with pip and verify its sha256
  tree     build/<name>: the pristine sdist (tag ``upstream``) plus one
           commit per patch, applied with ``git am``
  export   write ``upstream..HEAD`` of the tree back to patches/
  status   exit 0 only if everything in the tree is exported
  check    apply the series on the pristine sdist and lint every commit
           message (Gerrit style); then the identity check (compare)
           (--only: the selected series alone, no identity check)
  compare  the identity check: the files both series add are the same
  wheel    build dist/<name>-<version>+<local label>-py3-none-any.whl
           (--plain: dist/<name>-<version>-py3-none-any.whl)

The environment variable SERIES selects the series (see Layout): unset
or empty, the default one at the top of the repository; NAME, the one in
the folder NAME.  check and compare without SERIES cover every series.

Errors are reported as one line on stderr and exit status 1.
"""

import argparse
import difflib
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile

SUMMARY_MAX = 72
BODY_MAX = 72
CHANGE_ID_RE = re.compile(r'^Change-Id: I[0-9a-f]{40}$')
URL_RE = re.compile(r'[a-z][a-z0-9+.-]*://\S+')

# Our own commits (the upstream import and ``git am``) must not depend on
# the developer's git configuration, so that the tree and the exported
# patches are the same on every machine.
GIT_ENV = {
    'GIT_CONFIG_GLOBAL': os.devnull,
    'GIT_CONFIG_NOSYSTEM': '1',
    'GIT_COMMITTER_NAME': 'patch series tooling',
    'GIT_COMMITTER_EMAIL': 'series@localhost',
}
UPSTREAM_DATE = '2000-01-01T00:00:00+0000'
EXCLUDES = ('.stestr/', '__pycache__/', '*.pyc', '/build/', '/dist/',
            '/.eggs/', '/cover/', '/doc/build/', '/releasenotes/build/',
            'erl_crash.dump')
# dist/WHEEL_SOURCE: the wheel's file name, then the tree and version it
# was built from (wheel --reuse keeps a wheel whose source is unchanged).
WHEEL_SOURCE = 'wheel-source.txt'


class SeriesError(Exception):
    """A failure worth one clear line to the user."""


ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
DEFAULT_SERIES = ''  # SERIES unset or empty: upstream.pin, patches/


class Layout:
    """Where one series keeps its files; the only place that knows.

    The default series (name ``''``) lives at the top of the repository
    (``upstream.pin``, ``patches/``, ``constraints.txt``; ``build/``,
    ``dist/``); a series NAME in the folder NAME (``NAME/upstream.pin``,
    ``NAME/patches/``, ``NAME/constraints.txt``,
    ``NAME/differences.txt``), built in ``build/NAME/`` and
    ``dist/NAME/``.
    """

    def __init__(self, root, name):
        self.root = os.path.abspath(root)
        self.name = name
        # "stable-2026.1 unit"; nothing for the default series
        self.label = name + ' ' if name else ''
        top = os.path.join(self.root, name) if name else self.root
        self.pin_file = os.path.join(top, 'upstream.pin')
        self.patches = os.path.join(top, 'patches')
        self.series_file = os.path.join(self.patches, 'series')
        self.constraints = os.path.join(top, 'constraints.txt')
        # paths the series is allowed to differ from the default series in
        self.differences = (os.path.join(top, 'differences.txt') if name
                            else None)
        # where a shared patch lives: the default series' patches/
        self.default_patches = os.path.join(self.root, 'patches')
        self.build = os.path.join(self.root, 'build', name).rstrip(os.sep)
        self.dist = os.path.join(self.root, 'dist', name).rstrip(os.sep)
        self.venv = os.path.join(self.build, 'venv')
        self.download = os.path.join(self.build, 'download')
        self.pin = read_pin(self.pin_file)
        self.tree = os.path.join(self.build, self.pin['name'])


def known_series(root=ROOT):
    """'' (the default series) and every top-level folder with a pin."""
    names = [DEFAULT_SERIES]
    for name in sorted(os.listdir(root)):
        if os.path.isfile(os.path.join(root, name, 'upstream.pin')):
            names.append(name)
    return names


def layout(name=None, root=ROOT):
    """The Layout of series name (None: $SERIES; unset or '': default)."""
    if name is None:
        name = os.environ.get('SERIES', DEFAULT_SERIES)
    known = known_series(root)
    if name not in known:
        raise SeriesError(
            'SERIES=%s is not a known series; known series: %s'
            % (name, ', '.join(n or 'the default one (SERIES unset or empty)'
                               for n in known)))
    return Layout(root, name)


def layout_or_exit(prog):
    """layout() of $SERIES for a tool; an unknown SERIES ends it (1 line)."""
    try:
        return layout()
    except SeriesError as exc:
        sys.exit('%s: error: %s' % (prog, exc))


class Series:

    def __init__(self, root=ROOT, name=None):
        self.layout = layout(name, root)
        self.name = self.layout.name
        self.root = self.layout.root
        self.patches = self.layout.patches
        self.series_file = self.layout.series_file
        self.build = self.layout.build
        self.dist = self.layout.dist
        self.pin = self.layout.pin
        self.tree = self.layout.tree
        self.stamp = os.path.join(self.tree, '.git', 'series-stamp')

    # -- the pinned sdist -------------------------------------------------

    def fetch(self):
        """Return the path of the verified sdist, downloading it if needed."""
        pin = self.pin
        cache = self.layout.download
        for fname in sorted(os.listdir(cache)) if os.path.isdir(cache) else []:
            path = os.path.join(cache, fname)
            if sha256(path) == pin['sha256']:
                return path
        os.makedirs(self.build, exist_ok=True)
        tmp = tempfile.mkdtemp(prefix='download.', dir=self.build)
        try:
            spec = '%s==%s' % (pin['name'], pin['version'])
            say('downloading %s sdist with pip' % spec)
            proc = subprocess.run(
                [sys.executable, '-m', 'pip', 'download', '--no-deps',
                 '--no-binary', ':all:', '-q', '-d', tmp, spec],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            files = os.listdir(tmp)
            if proc.returncode != 0 or len(files) != 1:
                raise SeriesError('could not download %s: %s'
                                  % (spec, pip_reason(proc.stdout)))
            path = os.path.join(tmp, files[0])
            actual = sha256(path)
            if actual != pin['sha256']:
                raise SeriesError(
                    '%s sdist %s has the wrong hash: expected sha256 %s, '
                    'got %s' % (spec, files[0], pin['sha256'], actual))
            os.makedirs(cache, exist_ok=True)
            final = os.path.join(cache, files[0])
            os.replace(path, final)
            return final
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _import_upstream(self, dest):
        """Create a git repository at dest holding the pristine sdist."""
        import_sdist(self.fetch(), dest, 'Import %s %s sdist'
                     % (self.pin['name'], self.pin['version']))
        git(dest, 'tag', 'upstream')

    def _apply(self, dest, names):
        for name in names:
            proc = git(dest, 'am', '-q', '--keep-cr',
                       os.path.join(self.patches, name), check=False)
            if proc.returncode != 0:
                git(dest, 'am', '--abort', check=False)
                reason = ' '.join((proc.stderr or proc.stdout).split())
                raise SeriesError('patch %s does not apply: %s'
                                  % (name, reason[:400]))

    def _fresh_tree(self, dest):
        """Pristine sdist plus every patch of the series, at dest."""
        if os.path.exists(dest):
            shutil.rmtree(dest)
        try:
            self._import_upstream(dest)
            self._apply(dest, self.read_series())
        except BaseException:
            shutil.rmtree(dest, ignore_errors=True)
            raise

    # -- tree / export / status ------------------------------------------

    def make_tree(self, force=False):
        if os.path.isdir(self.tree) and not force:
            problems = self.problems()
            if problems:
                raise SeriesError(
                    '%s holds work that is not exported (%s); run '
                    '"make export" first, or "make tree FORCE=1" to '
                    'throw it away' % (self.rel(self.tree), problems[0]))
        tmp = self.tree + '.new'
        names = self.read_series()
        say('building %s: %s %s + %d patches'
            % (self.rel(self.tree), self.pin['name'], self.pin['version'],
               len(names)))
        self._fresh_tree(tmp)
        if os.path.exists(self.tree):
            shutil.rmtree(self.tree)
        os.replace(tmp, self.tree)
        self._write_stamp()

    def _format_patches(self, outdir):
        """git format-patch upstream..HEAD into outdir; {name: bytes}."""
        git(self.tree, 'format-patch', '-q', '--zero-commit',
            '--no-signature', '--no-numbered', '--full-index',
            '--stat=72', '-o', outdir, 'upstream..HEAD')
        result = {}
        for name in sorted(os.listdir(outdir)):
            with open(os.path.join(outdir, name), 'rb') as f:
                result[name] = f.read()
        return result

    def export(self):
        """Write upstream..HEAD of the tree to the series' patches/.

        In a series other than the default one, a patch that the default
        series has byte for byte (any file of its patches/, whatever its
        number) is listed by its relative path (../../patches/<name>) and
        not copied.  Own patch
        files that the series no longer lists are removed; the default
        series' files are never touched from another series.
        """
        self._need_tree()
        dirty = self._dirty()
        if dirty:
            raise SeriesError('%s has uncommitted changes (%s); commit them '
                              'first' % (self.rel(self.tree), dirty[0]))
        with tempfile.TemporaryDirectory() as tmp:
            new = self._format_patches(tmp)
        old = self.read_series() if os.path.exists(self.series_file) else []
        os.makedirs(self.patches, exist_ok=True)
        lines = []
        own = set()
        for name, data in new.items():
            shared = self._shared_entry(name, data)
            if shared:
                lines.append(shared)
                continue
            own.add(name)
            lines.append(name)
            with open(os.path.join(self.patches, name), 'wb') as f:
                f.write(data)
        for entry in old:
            if self._is_own(entry) and os.path.basename(entry) not in own:
                path = os.path.join(self.patches, entry)
                if os.path.exists(path):
                    os.unlink(path)
        with open(self.series_file, 'w') as f:
            f.write(self._series_header())
            f.write(''.join(line + '\n' for line in lines))
        self._write_stamp()
        shared = ''
        if self.name:
            shared = ' (%d of them listed from %s/)' % (
                len(new) - len(own), self.rel(self.layout.default_patches))
        say('exported %d patches to %s%s'
            % (len(new), self.rel(self.patches), shared))

    def _shared_entry(self, name, data):
        """The series line of a patch the default series has, or None.

        Matched by content, not by name: a series with a patch of its own
        inserted numbers the ones after it differently.
        """
        if not self.name:
            return None
        default = self.layout.default_patches
        for fname in sorted(os.listdir(default)):
            if not fname.endswith('.patch'):
                continue
            path = os.path.join(default, fname)
            with open(path, 'rb') as f:
                if f.read() == data:
                    return os.path.relpath(path, self.patches)
        return None

    def _is_own(self, entry):
        """Whether a series line names a file in this series' patches/."""
        path = os.path.realpath(os.path.join(self.patches, entry))
        return os.path.dirname(path) == os.path.realpath(self.patches)

    def problems(self):
        """What in the tree is not in patches/, as a list of lines."""
        if not os.path.isdir(self.tree):
            return []
        problems = ['uncommitted change: ' + line for line in self._dirty()]
        if self._read_stamp() != self._digest():
            problems.append('%s/ changed since the tree was made (run '
                            '"make tree" to rebuild it from them)'
                            % self.rel(self.patches))
            return problems
        with tempfile.TemporaryDirectory() as tmp:
            new = self._format_patches(tmp)
        # In order, by content: a shared patch's name may carry another
        # number than the tree's commit (see _shared_entry).
        old = []
        for entry in self.read_series():
            with open(os.path.join(self.patches, entry), 'rb') as f:
                old.append((entry, f.read()))
        names = list(new)
        for index, name in enumerate(names):
            if index >= len(old) or old[index][1] != new[name]:
                problems.append('commit not exported: %s' % name)
        for entry, _ in old[len(names):]:
            problems.append('in %s but not in the tree: %s'
                            % (self.rel(self.series_file), entry))
        return problems

    def _dirty(self):
        out = git(self.tree, 'status', '--porcelain').stdout
        return out.splitlines()

    def _series_header(self):
        return ('# Applied in this order on %s %s (see upstream.pin).\n'
                '# Written by "make export"; one patch per line.\n'
                % (self.pin['name'], self.pin['version']))

    def _digest(self):
        h = hashlib.sha256()
        if os.path.exists(self.series_file):
            for name in self.read_series():
                h.update(name.encode() + b'\0')
                with open(os.path.join(self.patches, name), 'rb') as f:
                    h.update(f.read())
        return h.hexdigest()

    def _write_stamp(self):
        with open(self.stamp, 'w') as f:
            f.write(self._digest() + '\n')

    def _read_stamp(self):
        try:
            with open(self.stamp) as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def _need_tree(self):
        if not os.path.isdir(os.path.join(self.tree, '.git')):
            raise SeriesError('no tree at %s: run "make tree"'
                              % self.rel(self.tree))

    # -- check -------------------------------------------------------------

    def check(self, keep=None):
        """Apply the series on the pristine sdist and lint it.

        With keep (a path), the applied tree is left there.
        """
        names = self.read_series()
        errors = []
        listed = {os.path.basename(n) for n in names if self._is_own(n)}
        for fname in sorted(os.listdir(self.patches)):
            if fname.endswith('.patch') and fname not in listed:
                errors.append('%s is not listed in %s'
                              % (fname, self.rel(self.series_file)))
        with tempfile.TemporaryDirectory(dir=self._build_dir()) as tmp:
            dest = keep or os.path.join(tmp, 'tree')
            self._fresh_tree(dest)
            shas = git(dest, 'rev-list', '--reverse',
                       'upstream..HEAD').stdout.split()
            seen = {}
            for name, sha in zip(names, shas):
                msg = git(dest, 'log', '-1', '--format=%B', sha).stdout
                errors.extend('%s: %s' % (name, e) for e in lint_message(msg))
                for line in msg.splitlines():
                    if CHANGE_ID_RE.match(line):
                        if line in seen:
                            errors.append('%s: %s duplicates the one in %s'
                                          % (name, line, seen[line]))
                        seen[line] = name
        for e in errors:
            print('check: ' + e, file=sys.stderr)
        if errors:
            raise SeriesError('%d problem(s) in the series' % len(errors))
        say('series %sOK: %d patches apply on %s %s, commit messages clean'
            % (self.layout.label, len(names), self.pin['name'],
               self.pin['version']))

    def _build_dir(self):
        os.makedirs(self.build, exist_ok=True)
        return self.build

    # -- wheel -----------------------------------------------------------

    def wheel(self, plain=False, reuse=False):
        """Build the wheel of the tree's committed content into dist/.

        The version is the pin's with a PEP 440 local label
        (``+fork<patches>.<tree id>``), or, with plain, exactly the pin's
        (as distribution packages do, so that ``pip install -c
        upper-constraints.txt`` accepts it).  With reuse, a wheel that
        this tool built from the same tree and version is kept.
        """
        if not os.path.isdir(self.tree):
            self.make_tree()
        dirty = self._dirty()
        if dirty:
            say('warning: uncommitted changes in %s are not in the wheel'
                % self.rel(self.tree))
        count = len(git(self.tree, 'rev-list',
                        'upstream..HEAD').stdout.split())
        tree_id = git(self.tree, 'rev-parse', 'HEAD^{tree}').stdout.strip()
        version = wheel_version(self.pin['version'], count, tree_id, plain)
        source = 'tree %s version %s\n' % (tree_id, version)
        if reuse:
            final = self._built_wheel(source)
            if final:
                say('reusing %s (built from the same tree)'
                    % self.rel(final))
                say('wrote %s' % self.rel(final))
                return final
        os.makedirs(self.dist, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._build_dir()) as tmp:
            # NOTE: build from a clone, not an export: without git, pbr
            # takes the file list from the sdist's stale SOURCES.txt and
            # leaves the modules our patches add out of the wheel.
            src = os.path.join(tmp, 'src')
            git(self.build, 'clone', '-q', '--no-hardlinks', self.tree, src)
            say('building wheel %s %s' % (self.pin['name'], version))
            rc, output = self._pip_wheel(src, tmp, version)
            wheels = [f for f in os.listdir(tmp) if f.endswith('.whl')]
            if rc != 0 or len(wheels) != 1:
                sys.stderr.write(output)
                raise SeriesError('pip wheel failed for %s' % version)
            missing = self._missing_from_wheel(
                os.path.join(tmp, wheels[0]))
            if missing:
                raise SeriesError('the wheel lacks %d module(s) of the '
                                  'tree, e.g. %s' % (len(missing),
                                                     missing[0]))
            for old in os.listdir(self.dist):
                if old.endswith('.whl') or old == WHEEL_SOURCE:
                    os.unlink(os.path.join(self.dist, old))
            final = os.path.join(self.dist, wheels[0])
            shutil.move(os.path.join(tmp, wheels[0]), final)
            with open(os.path.join(self.dist, WHEEL_SOURCE), 'w') as f:
                f.write(wheels[0] + '\n' + source)
        say('wrote %s' % self.rel(final))
        return final

    def _pip_wheel(self, src, outdir, version):
        """pip wheel src into outdir, pbr told the version; (rc, output)."""
        env = dict(os.environ, PBR_VERSION=version)
        proc = subprocess.run(
            [sys.executable, '-m', 'pip', 'wheel', '--no-deps', '-q',
             '-w', outdir, src], env=env, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        return proc.returncode, proc.stdout

    def _built_wheel(self, source):
        """The wheel in dist/ built from source (tree and version), or None.
        """
        try:
            with open(os.path.join(self.dist, WHEEL_SOURCE)) as f:
                name, _, recorded = f.read().partition('\n')
        except FileNotFoundError:
            return None
        path = os.path.join(self.dist, name)
        if recorded == source and os.path.isfile(path):
            return path
        return None

    def _missing_from_wheel(self, wheel):
        package = self.pin['name'].replace('.', '_')
        tracked = git(self.tree, 'ls-files', '--', '%s/*.py' % package
                      ).stdout.split()
        with zipfile.ZipFile(wheel) as whl:
            names = set(whl.namelist())
        return [path for path in tracked if path not in names]

    # -- helpers -----------------------------------------------------------

    def read_series(self):
        try:
            with open(self.series_file) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            raise SeriesError('no %s' % self.rel(self.series_file))
        names = []
        for line in lines:
            line = line.split('#', 1)[0].strip()
            if not line:
                continue
            # a path relative to the series file's folder (quilt)
            if not os.path.isfile(os.path.join(self.patches, line)):
                raise SeriesError('%s lists %s, which does not exist'
                                  % (self.rel(self.series_file), line))
            names.append(line)
        return names

    def rel(self, path):
        return os.path.relpath(path, os.getcwd())


# -- the identity check: what both series add must be the same -------------

DIFF_LINES = 40


def read_differences(path):
    """{path: reason} of a differences.txt ("path  # reason" a line)."""
    listed = {}
    if not path or not os.path.exists(path):
        return listed
    with open(path) as f:
        for number, line in enumerate(f, start=1):
            if not line.strip() or line.lstrip().startswith('#'):
                continue
            entry, _, reason = line.partition('#')
            if not reason.strip():
                raise SeriesError('%s line %d: %s has no reason (write '
                                  '"path  # reason")'
                                  % (path, number, entry.strip()))
            listed[entry.strip()] = reason.strip()
    return listed


def added_files(tree, package):
    """(files under package/ the series added, the pristine sdist's)."""
    def files(ref):
        return set(git(tree, 'ls-tree', '-r', '--name-only', ref, '--',
                       package + '/').stdout.splitlines())
    pristine = files('upstream')
    return files('HEAD') - pristine, pristine


def file_at_head(tree, path):
    return git(tree, 'show', 'HEAD:' + path, text=False).stdout


def short_diff(old, new, old_label, new_label, lines=DIFF_LINES):
    """The first lines of a unified diff of two byte strings."""
    diff = list(difflib.unified_diff(
        old.decode(errors='replace').splitlines(),
        new.decode(errors='replace').splitlines(),
        old_label, new_label, lineterm=''))
    if len(diff) > lines:
        diff = diff[:lines] + ['[... %d more lines]' % (len(diff) - lines)]
    return diff


def identity_check(base, other, package):
    """Files both series add must be byte-identical in their final trees.

    base and other are (Series, tree) pairs: the default series and
    another one.  A file added by both (under package/, in neither
    pristine sdist) that differs fails the check with a short diff,
    unless other's differences.txt lists it with a reason; a listed path
    that is identical (or not added by both) is stale and fails too.
    Returns (summary line, problems as lines).
    """
    (base_series, base_tree), (series, tree) = base, other
    base_added, base_pristine = added_files(base_tree, package)
    added, pristine = added_files(tree, package)
    both = sorted((base_added & added) - base_pristine - pristine)
    diff_file = series.layout.differences
    listed = read_differences(diff_file)
    where = series.rel(diff_file)
    problems = []
    identical = differ_listed = 0
    for path in both:
        old, new = file_at_head(base_tree, path), file_at_head(tree, path)
        if old == new:
            identical += 1
            if path in listed:
                problems.append('stale entry in %s: %s is identical in both '
                                'series' % (where, path))
        elif path in listed:
            differ_listed += 1
        else:
            problems.append('%s differs between the default series and %s '
                            '(list it in %s with a reason if it must):'
                            % (path, series.name, where))
            problems += ['  ' + line for line in short_diff(
                old, new, 'default %s/%s' % (base_series.pin['version'], path),
                '%s %s/%s' % (series.name, series.pin['version'], path))]
    for path in sorted(set(listed) - set(both)):
        problems.append('stale entry in %s: %s is not a file both series '
                        'add' % (where, path))
    summary = ('identical: %d files added by both series (default, %s); '
               '%d differ%s as listed' % (identical, series.name,
                                          differ_listed,
                                          's' if differ_listed == 1 else ''))
    return summary, problems


def check_all(names, root=ROOT, lint=True):
    """check each series of names, then compare it with the default one.

    The identity check runs for each of names but the default series.
    With lint False, only the identity check (the trees still apply).
    Prints each problem; raises SeriesError at the end if there were any.
    """
    default = Series(root, DEFAULT_SERIES)
    failures = []
    with tempfile.TemporaryDirectory(dir=default._build_dir()) as tmp:
        trees = {}
        for name in [DEFAULT_SERIES] + [n for n in names if n]:
            ser = default if not name else Series(root, name)
            dest = os.path.join(tmp, name or 'default')
            try:
                if lint and name in names:
                    ser.check(keep=dest)
                else:
                    ser._fresh_tree(dest)
            except SeriesError as exc:
                print('series: error: %s%s' % (ser.layout.label, exc),
                      file=sys.stderr)
                failures.append(name or 'default')
                continue
            trees[name] = (ser, dest)
        others = [n for n in names if n]
        if not others:
            say('identity check: no series besides the default one')
        for name in others:
            if name not in trees or DEFAULT_SERIES not in trees:
                failures.append('identity check of %s (a tree did not '
                                'apply)' % name)
                continue
            package = default.pin['name'].replace('.', '_')
            summary, problems = identity_check(trees[DEFAULT_SERIES],
                                               trees[name], package)
            for line in problems:
                print('compare: ' + line, file=sys.stderr)
            say(summary)
            if problems:
                failures.append('identity check of %s' % name)
    if failures:
        raise SeriesError('failed: %s' % ', '.join(failures))


def wheel_version(version, count, tree_id, plain=False):
    """The wheel's version: the pin's, plus a local label unless plain.

    The label ``+fork<count>.<tree id>`` tells builds apart; pip's
    resolver refuses it under a ``NAME===VERSION`` constraint (what
    OpenStack's upper-constraints.txt holds), which the plain build
    satisfies.
    """
    if plain:
        return version
    return '%s+fork%d.%s' % (version, count, tree_id[:8])


def import_sdist(sdist, dest, message):
    """A new git repository at dest with the sdist's files, one commit."""
    os.makedirs(dest)
    with tarfile.open(sdist) as tar:
        members = tar.getmembers()
        top = {m.name.split('/', 1)[0] for m in members}
        if len(top) != 1:
            raise SeriesError('%s does not have one top-level folder'
                              % os.path.basename(sdist))
        prefix = top.pop() + '/'
        members = [m for m in members if m.name.startswith(prefix)]
        for m in members:
            m.name = m.name[len(prefix):]
        tar.extractall(dest, members=members, filter='data')
    git(dest, 'init', '-q')
    with open(os.path.join(dest, '.git', 'info', 'exclude'), 'a') as f:
        f.write('\n'.join(EXCLUDES) + '\n')
    git(dest, 'add', '-A', '-f')
    env = {'GIT_AUTHOR_NAME': 'upstream',
           'GIT_AUTHOR_EMAIL': 'upstream@localhost',
           'GIT_AUTHOR_DATE': UPSTREAM_DATE,
           'GIT_COMMITTER_DATE': UPSTREAM_DATE}
    git(dest, 'commit', '-q', '-m', message, env=env)


def lint_message(msg):
    """Return the problems of one commit message, OpenStack style."""
    lines = msg.rstrip('\n').split('\n')
    errors = []
    summary = lines[0]
    if not summary.strip():
        errors.append('empty summary line')
    elif len(summary) > SUMMARY_MAX:
        errors.append('summary line is %d characters (at most %d): %r'
                      % (len(summary), SUMMARY_MAX, summary))
    if len(lines) > 1 and lines[1].strip():
        errors.append('second line is not blank')
    for number, line in enumerate(lines[2:], start=3):
        if len(line) > BODY_MAX and not URL_RE.search(line):
            errors.append('line %d is %d characters (at most %d)'
                          % (number, len(line), BODY_MAX))
    ids = [line for line in lines if line.startswith('Change-Id:')]
    if not ids:
        errors.append('no Change-Id trailer')
    elif len(ids) > 1:
        errors.append('%d Change-Id trailers (exactly one allowed)'
                      % len(ids))
    elif not CHANGE_ID_RE.match(ids[0]):
        errors.append('malformed trailer %r (want Change-Id: I<40 hex>)'
                      % ids[0])
    return errors


def read_pin(path):
    pin = {}
    try:
        with open(path) as f:
            for line in f:
                line = line.split('#', 1)[0].strip()
                if line:
                    key, _, value = line.partition('=')
                    pin[key.strip()] = value.strip()
    except FileNotFoundError:
        raise SeriesError('no pin file %s' % path)
    missing = {'name', 'version', 'sha256'} - set(pin)
    if missing:
        raise SeriesError('%s lacks %s' % (path, ', '.join(sorted(missing))))
    return pin


def pip_reason(output):
    """The line of pip's output that says why it failed."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.lower().startswith('error')]
    return (errors or lines or ['pip printed nothing'])[-1]


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def git(cwd, *args, check=True, env=None, text=True):
    full_env = dict(os.environ, **GIT_ENV, **(env or {}))
    proc = subprocess.run(['git', *args], cwd=cwd, env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=text)
    if check and proc.returncode != 0:
        err = proc.stderr if text else proc.stderr.decode(errors='replace')
        raise SeriesError('git %s failed: %s'
                          % (args[0], ' '.join(err.split())[:400]))
    return proc


def say(msg):
    print('series: ' + msg, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--root', default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), '..'),
        help='repository root (default: the one holding this tool)')
    parser.add_argument('--force', action='store_true',
                        help='tree: discard unexported work in the tree')
    parser.add_argument('--plain', action='store_true',
                        help='wheel: version exactly the pinned release, '
                        'no local label')
    parser.add_argument('--reuse', action='store_true',
                        help='wheel: keep the wheel in dist/ if it was '
                        'built from the same tree and version')
    parser.add_argument('--only', action='store_true',
                        help='check: only the series $SERIES selects, '
                        'without the identity check')
    parser.add_argument('command', choices=['fetch', 'tree', 'export',
                                            'status', 'check', 'compare',
                                            'wheel'])
    args = parser.parse_args(argv)
    try:
        series = Series(args.root)
        # check and compare without SERIES: every series; with it, that one
        if os.environ.get('SERIES'):
            every = [series.name]
        else:
            every = known_series(series.root)
        if args.command == 'fetch':
            say('verified %s' % series.rel(series.fetch()))
        elif args.command == 'tree':
            series.make_tree(force=args.force)
        elif args.command == 'export':
            series.export()
        elif args.command == 'status':
            problems = series.problems()
            for line in problems:
                print('status: ' + line)
            if problems:
                return 1
            say('everything in %s is exported' % series.rel(series.tree))
        elif args.command == 'check' and args.only:
            series.check()
        elif args.command == 'check':
            check_all(every, series.root)
        elif args.command == 'compare':
            check_all(every, series.root, lint=False)
        elif args.command == 'wheel':
            series.wheel(plain=args.plain, reuse=args.reuse)
    except SeriesError as exc:
        print('series: error: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
