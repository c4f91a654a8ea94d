"""Runs the raw test server only once N of its kind have started: proves concurrent starts.

Usage: ``barrier_server.py DIR N [raw_server flags...]``. Each instance drops a file in DIR and
waits until N files exist before serving. Started one after another, the first would wait
forever for the rest (and time out); started together, all of them go through.
"""

from __future__ import annotations

import os
import runpy
import sys
import time
from pathlib import Path

folder, count = Path(sys.argv[1]), int(sys.argv[2])
(folder / str(os.getpid())).touch()
while len(list(folder.iterdir())) < count:
    time.sleep(0.01)
sys.argv = [str(Path(__file__).parent.parent / "servers" / "raw_server.py"), *sys.argv[3:]]
runpy.run_path(sys.argv[0], run_name="__main__")
