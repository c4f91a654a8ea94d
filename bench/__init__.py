"""mcpvisor's benchmark harness: ``uv run python -m bench [--quick] [--only 1,2] [--out PATH]``.

Each scenario measures mcpvisor and a reference (the raw SDK, or the pattern hosts use today)
in the same run, on the same servers, taking turns, and reports their ratio against a goal.
"""
