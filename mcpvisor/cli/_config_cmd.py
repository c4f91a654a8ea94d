"""``mcpvisor config dump`` and ``mcpvisor config schema``: the config as mcpvisor sees it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import mcpvisor as mv
from mcpvisor.specs.config import dump_config
from mcpvisor.specs.schema import config_schema
from mcpvisor.specs.secrets import MASK, Redactor

_SCHEMES = frozenset({"bearer", "basic", "token", "digest", "apikey", "negotiate"})


def add_config_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    """The ``config`` sub-command and its two actions."""
    config = sub.add_parser(
        "config",
        parents=[common],
        help="print the effective config, or a JSON Schema of it for editors",
        description="Inspect configs: 'dump CONFIG' or 'schema'.",
    )
    actions = config.add_subparsers(dest="action", metavar="ACTION", required=True)
    dump = actions.add_parser(
        "dump",
        parents=[common],
        help="the effective config: every field, defaults merged, secrets masked",
        description=(
            "Load CONFIG as 'run' would and print it as JSON with every supervision field "
            "filled in (mcpvisor.defaults merged, built-in defaults included). Env values, "
            "header credentials, URL credentials and every value from ${VAR} are masked."
        ),
    )
    dump.add_argument("config")
    actions.add_parser(
        "schema",
        parents=[common],
        help="a JSON Schema of the config keys mcpvisor reads",
        description="Print a JSON Schema (draft 2020-12) for editors and CI checks.",
    )


def cmd_config(args: argparse.Namespace) -> int:
    if args.action == "schema":
        document = config_schema()
    else:
        from mcpvisor.cli._commands import load

        document = masked_config(load(args.config))
    sys.stdout.write(json.dumps(document, indent=2) + "\n")
    return 0


def _masked_header(value: str) -> str:
    scheme, space, _ = value.partition(" ")
    return f"{scheme} {MASK}" if space and scheme.lower() in _SCHEMES else MASK


def masked_config(spec: mv.SupervisorSpec) -> dict[str, Any]:
    """Every field of ``spec`` (``dump_config(defaults=True)``) with its secrets masked:
    env values whole, header values but their auth scheme, and each secret component of
    the command, args, cwd and url."""
    data = dump_config(spec, defaults=True)
    for server in spec.servers:
        entry = data["mcpServers"][server.name]
        redact = Redactor(server)
        if "env" in entry:
            entry["env"] = dict.fromkeys(entry["env"], MASK)
        if "headers" in entry:
            entry["headers"] = {k: _masked_header(v) for k, v in entry["headers"].items()}
        for key in ("command", "cwd", "url"):
            if isinstance(entry.get(key), str):
                entry[key] = redact(entry[key])
        if "args" in entry:
            entry["args"] = [redact(a) for a in entry["args"]]
    return data
