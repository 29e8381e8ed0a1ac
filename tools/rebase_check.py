#!/usr/bin/env python3
"""``make rebase-check REF=...``: does the series apply on another upstream?

Applies every patch of patches/series in order with ``git am -3`` onto an
upstream base, and reports per patch one of:

  applies               git am took it (noting a 3-way merge)
  conflicts             git am stopped (the files in conflict); the patch
                        is skipped and the next ones go on without it
  applies but fails     it applies, but the tree then fails the check:
                        every module compiles, the rabbit driver imports
                        and the option list of ``oslo.messaging`` (what
                        oslo-config-generator lists) registers on a fresh
                        ConfigOpts, which raises DuplicateOptError when an
                        option is defined twice

The objects of the series applied on the pinned sdist are fetched into
the base first, so that ``git am -3`` can merge.  The base is REF of a
local git clone of upstream (``--git DIR``, default
$UPSTREAM_GIT), or ``sdist:VERSION``: the package index's sdist of that
version.  The check runs with build/venv's python (the test command's
virtualenv: ``python3 tools/run_tests.py wheel`` makes it), from the
tree, so that the tree's code is the one imported.

The table is printed and written to build/rebase-check-<ref>.md; the exit
status is 0 only if every patch applies and passes the check.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..'))
sys.path.insert(0, os.path.join(ROOT, 'tools'))
import series  # noqa: E402

LAYOUT = series.layout_or_exit('rebase-check')  # $SERIES
CHECK_PYTHON = os.path.join(LAYOUT.venv, 'bin', 'python')
CHECK = '''
import compileall, sys
if not compileall.compile_dir('oslo_messaging', quiet=1):
    sys.exit('a module does not compile (see above)')
from oslo_config import cfg
import oslo_messaging._drivers.impl_rabbit
from oslo_messaging import opts
conf = cfg.ConfigOpts()
count = 0
for group, options in opts.list_opts():
    conf.register_opts(options, group=group)
    count += len(options)
print('check: %d options registered' % count)
'''
APPLIES = 'applies'
CONFLICTS = 'conflicts'
FAILS = 'applies but fails'


class CheckError(series.SeriesError):
    pass


def say(msg):
    print('rebase-check: ' + msg, flush=True)


def git_base(source, ref, dest):
    """dest: a checkout of ref of the git clone source; its description."""
    if not source:
        raise CheckError('REF %s is a git ref but no upstream clone was '
                         'given (--git DIR or UPSTREAM_GIT=DIR; or use '
                         'REF=sdist:VERSION)' % ref)
    if not os.path.isdir(source):
        raise CheckError('no git clone at %s' % source)
    proc = series.git(source, 'rev-parse', '--verify', '-q',
                      ref + '^{commit}', check=False)
    if proc.returncode != 0:
        raise CheckError('%s has no ref %s' % (source, ref))
    sha = proc.stdout.strip()
    series.git(ROOT, 'clone', '-q', '--shared', '--no-checkout', source,
               dest)
    series.git(dest, 'checkout', '-q', '--detach', sha)
    return '%s (%s) of %s' % (ref, sha[:10], source)


def sdist_base(name, version, dest, tmp):
    """dest: a git repository of the package index's sdist of version."""
    download = os.path.join(tmp, 'download')
    spec = '%s==%s' % (name, version)
    proc = subprocess.run(
        [sys.executable, '-m', 'pip', 'download', '--no-deps',
         '--no-binary', ':all:', '-q', '-d', download, spec],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    files = os.listdir(download) if os.path.isdir(download) else []
    if proc.returncode != 0 or len(files) != 1:
        raise CheckError('could not download the sdist of %s: %s'
                         % (spec, series.pip_reason(proc.stdout)))
    series.import_sdist(os.path.join(download, files[0]), dest,
                        'Import %s sdist' % spec)
    return 'the sdist %s' % files[0]


def check_tree(tree, python):
    """None if the tree passes CHECK, else the reason in one line."""
    proc = subprocess.run([python, '-c', CHECK], cwd=tree,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True)
    if proc.returncode == 0:
        return None
    lines = [line.strip() for line in proc.stdout.splitlines()
             if line.strip() and 'Warning' not in line]
    errors = [line for line in lines
              if re.match(r'^[\w.]+(Error|Exception)\b', line)
              or line.startswith('***')]
    return (errors or lines or ['exit status %d' % proc.returncode])[-1]


def apply_patch(tree, path):
    """git am -3 one patch: (status, detail)."""
    proc = series.git(tree, 'am', '-3', '--keep-cr', path, check=False)
    output = proc.stdout + proc.stderr
    if proc.returncode == 0:
        merged = 'Falling back to' in output and '3-way merge' in output
        return APPLIES, '3-way merge' if merged else ''
    unmerged = series.git(tree, 'diff', '--name-only',
                          '--diff-filter=U').stdout.split()
    if unmerged:
        detail = ', '.join(unmerged)
    else:
        errors = [line.strip() for line in output.splitlines()
                  if line.startswith(('error:', 'fatal:'))]
        detail = (errors or [' '.join(output.split())[:200]])[0]
    series.git(tree, 'am', '--skip', check=False)
    if series.git(tree, 'status', '--porcelain').stdout.strip():
        series.git(tree, 'reset', '-q', '--hard')
    return CONFLICTS, detail


def rebase_check(base, names, patches_dir, python):
    """Apply names onto the tree at base; [(name, status, detail)]."""
    rows = []
    before = check_tree(base, python)
    if before:
        say('note: the base itself fails the check: %s' % before)
    for name in names:
        status, detail = apply_patch(base, os.path.join(patches_dir, name))
        if status == APPLIES:
            reason = check_tree(base, python)
            if reason and reason == before:
                detail = ', '.join(filter(None, [
                    detail, 'still fails as above']))
            elif reason:
                status, detail = FAILS, ', '.join(filter(None, [
                    detail, reason]))
            before = reason
        rows.append((name, status, detail))
        say('%s: %s%s' % (name, status, ': ' + detail if detail else ''))
    return rows


def table(rows, where):
    lines = ['Series onto %s:' % where, '',
             '| # | patch | result |', '| --- | --- | --- |']
    for number, (name, status, detail) in enumerate(rows, 1):
        result = status + (' (%s)' % detail if detail else '')
        lines.append('| %d | %s | %s |' % (number, name, result))
    counts = {s: sum(1 for r in rows if r[1] == s)
              for s in (APPLIES, CONFLICTS, FAILS)}
    still = sum(1 for r in rows if 'still fails' in r[2])
    lines += ['', '%d patches: %d apply (%d of them on a tree that already '
              'failed the check), %d conflict, %d apply but fail'
              % (len(rows), counts[APPLIES], still, counts[CONFLICTS],
                 counts[FAILS])]
    return '\n'.join(lines) + '\n'


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='\n'.join(__doc__.splitlines()[2:]))
    parser.add_argument('ref', help='git ref of the upstream clone, or '
                        'sdist:VERSION')
    parser.add_argument('--git', default=os.environ.get('UPSTREAM_GIT'),
                        help='upstream git clone (default $UPSTREAM_GIT)')
    parser.add_argument('--python', default=CHECK_PYTHON,
                        help='python of the check (default build/venv)')
    parser.add_argument('--root', default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        ser = series.Series(args.root)
        names = ser.read_series()
        if not os.path.exists(args.python):
            raise CheckError('no %s for the check: run "python3 '
                             'tools/run_tests.py wheel" first'
                             % os.path.relpath(args.python))
        with tempfile.TemporaryDirectory(dir=ser._build_dir()) as tmp:
            tree = os.path.join(tmp, 'tree')
            if args.ref.startswith('sdist:'):
                where = sdist_base(ser.pin['name'], args.ref[len('sdist:'):],
                                   tree, tmp)
            else:
                where = git_base(args.git, args.ref, tree)
            # NOTE: git am -3 needs the blobs each patch was made from
            # (its "index" lines); fetch them from the series applied on
            # the pin, or it cannot merge and stops on "invalid object".
            ser._fresh_tree(os.path.join(tmp, 'series'))
            series.git(tree, 'fetch', '-q', os.path.join(tmp, 'series'),
                       'HEAD')
            say('applying %d patches of patches/series onto %s'
                % (len(names), where))
            rows = rebase_check(tree, names, ser.patches, args.python)
        text = table(rows, where)
        out = os.path.join(ser.build, 'rebase-check-%s.md'
                           % re.sub(r'[^\w.-]+', '-', args.ref))
        with open(out, 'w') as f:
            f.write(text)
        print()
        print(text, end='')
        say('table written to %s' % os.path.relpath(out))
    except series.SeriesError as exc:
        print('rebase-check: error: %s' % exc, file=sys.stderr)
        return 2
    return 0 if all(r[1] == APPLIES and 'still fails' not in r[2]
                    for r in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
