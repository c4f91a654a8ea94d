"""A server that never starts: it exits with code 1 before speaking MCP.

It stands for the misconfigured server every real setup has (a missing binary, a bad
credential). It imports nothing heavy so that each failed attempt is quick.
"""

from __future__ import annotations

import sys


def main() -> None:
    print("broken: cannot open /nonexistent/database.db (demo)", file=sys.stderr, flush=True)
    sys.exit(1)


if __name__ == "__main__":
    main()
