"""A stdio "server" that prints its arguments and environment to stderr, then fails.

It stands for a real server that reports its bad configuration verbatim ("cannot connect to
postgresql://app:pw@db/app"): everything it was given reaches its stderr and exit.
"""

import os
import sys

print("bad configuration:", " ".join(sys.argv[1:]), file=sys.stderr, flush=True)
for key in sorted(os.environ):
    if key.startswith("ECHO_"):
        print(f"{key}={os.environ[key]} (word: {os.environ[key]})", file=sys.stderr, flush=True)
sys.exit(3)
