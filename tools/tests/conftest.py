import os
import sys

# the tools (series, run_tests, demo, ...) and the tests' shared helpers
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, '..'), HERE]
# The tests are of the default series' layout unless they name a series:
# make test of SERIES=stable-2026.1 must not change what they import.
os.environ.pop('SERIES', None)
