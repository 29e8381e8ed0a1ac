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
           message (Gerrit style)
  wheel    build dist/<name>-<version>+<local label>-py3-none-any.whl
           (--plain: dist/<name>-<version>-py3-none-any.whl)

Errors are reported as one line on stderr and exit status 1.
"""

import argparse
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


class Series:

    def __init__(self, root):
        self.root = os.path.abspath(root)
        self.patches = os.path.join(self.root, 'patches')
        self.series_file = os.path.join(self.patches, 'series')
        self.build = os.path.join(self.root, 'build')
        self.dist = os.path.join(self.root, 'dist')
        self.pin = read_pin(os.path.join(self.root, 'upstream.pin'))
        self.tree = os.path.join(self.build, self.pin['name'])
        self.stamp = os.path.join(self.tree, '.git', 'series-stamp')

    # -- the pinned sdist -------------------------------------------------

    def fetch(self):
        """Return the path of the verified sdist, downloading it if needed."""
        pin = self.pin
        cache = os.path.join(self.build, 'download')
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
        self._need_tree()
        dirty = self._dirty()
        if dirty:
            raise SeriesError('%s has uncommitted changes (%s); commit them '
                              'first' % (self.rel(self.tree), dirty[0]))
        with tempfile.TemporaryDirectory() as tmp:
            new = self._format_patches(tmp)
        old = self.read_series() if os.path.exists(self.series_file) else []
        os.makedirs(self.patches, exist_ok=True)
        for name in set(old) - set(new):
            path = os.path.join(self.patches, name)
            if os.path.exists(path):
                os.unlink(path)
        for name, data in new.items():
            with open(os.path.join(self.patches, name), 'wb') as f:
                f.write(data)
        with open(self.series_file, 'w') as f:
            f.write(self._series_header())
            f.write(''.join(name + '\n' for name in new))
        self._write_stamp()
        say('exported %d patches to %s' % (len(new), self.rel(self.patches)))

    def problems(self):
        """What in the tree is not in patches/, as a list of lines."""
        if not os.path.isdir(self.tree):
            return []
        problems = ['uncommitted change: ' + line for line in self._dirty()]
        if self._read_stamp() != self._digest():
            problems.append('patches/ changed since the tree was made '
                            '(run "make tree" to rebuild it from patches/)')
            return problems
        with tempfile.TemporaryDirectory() as tmp:
            new = self._format_patches(tmp)
        old = {}
        for name in self.read_series():
            with open(os.path.join(self.patches, name), 'rb') as f:
                old[name] = f.read()
        for name in new:
            if old.get(name) != new[name]:
                problems.append('commit not exported: %s' % name)
        for name in old:
            if name not in new:
                problems.append('in patches/ but not in the tree: %s' % name)
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

    def check(self):
        names = self.read_series()
        errors = []
        listed = set(names)
        for fname in sorted(os.listdir(self.patches)):
            if fname.endswith('.patch') and fname not in listed:
                errors.append('%s is not listed in patches/series' % fname)
        with tempfile.TemporaryDirectory(dir=self._build_dir()) as tmp:
            dest = os.path.join(tmp, 'tree')
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
        say('series OK: %d patches apply on %s %s, commit messages clean'
            % (len(names), self.pin['name'], self.pin['version']))

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
            if not os.path.isfile(os.path.join(self.patches, line)):
                raise SeriesError('patches/series lists %s, which does not '
                                  'exist' % line)
            names.append(line)
        return names

    def rel(self, path):
        return os.path.relpath(path, os.getcwd())


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
    parser.add_argument('command', choices=['fetch', 'tree', 'export',
                                            'status', 'check', 'wheel'])
    args = parser.parse_args(argv)
    try:
        series = Series(args.root)
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
        elif args.command == 'check':
            series.check()
        elif args.command == 'wheel':
            series.wheel(plain=args.plain, reuse=args.reuse)
    except SeriesError as exc:
        print('series: error: %s' % exc, file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
