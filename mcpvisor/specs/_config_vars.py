"""``${VAR}`` expansion in config strings, in the forms Claude Desktop, Cursor and VS Code use.

Supported: ``${NAME}``, ``${env:NAME}``, ``${NAME:-default}`` (and ``${env:NAME:-default}``).
``$${`` stands for a literal ``${``, so that :func:`escape` can protect any string from
expansion. Errors name the variable but never its value or a default, which may be secrets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_REFERENCE = re.compile(r"(?:env:)?([A-Za-z_][A-Za-z0-9_]*)(?::-(.*))?", re.DOTALL)


class VariableError(Exception):
    """Why a string could not be expanded; the message is safe to show."""


def expand(text: str, environ: Mapping[str, str], found: list[str] | None = None) -> str:
    """``text`` with every variable reference replaced from ``environ``.

    Each substituted value (from ``environ`` or a default) is appended to ``found``: it came
    from outside the file and is treated as a secret wherever it lands.
    """

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "$${":
            return "${"
        body = match.group(1)
        if body is None:
            raise VariableError("unterminated variable reference: '${' without a closing '}'")
        reference = _REFERENCE.fullmatch(body)
        if reference is None:
            if body.startswith("input:"):
                input_id = body.partition(":-")[0]
                raise VariableError(
                    f"'${{{input_id}}}' is a VS Code input, which mcpvisor cannot prompt for;"
                    " use ${env:NAME} instead"
                )
            raise VariableError(
                "unsupported variable reference; use ${NAME}, ${env:NAME} or ${NAME:-default}"
            )
        name, default = reference.group(1), reference.group(2)
        value = environ.get(name, default)
        if value is None:
            raise VariableError(f"environment variable {name!r} is not set")
        if found is not None and value:
            found.append(value)
        return value

    return _TOKEN.sub(replace, text)


def escape(text: str) -> str:
    """``text`` written so that :func:`expand` gives it back unchanged."""
    return text.replace("${", "$${")
