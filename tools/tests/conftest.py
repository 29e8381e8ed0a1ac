import os
import sys

# the tools (series, run_tests, demo, ...) and the tests' shared helpers
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, '..'), HERE]
