"""``python -m mcpvisor``: the same as the ``mcpvisor`` command."""

from mcpvisor.cli import main

raise SystemExit(main())
