"""Helpers for the schemathesis tests of every service's API."""

import zlib
from typing import Any

import schemathesis

#: What broke these APIs (issue #12): characters PostgreSQL cannot store or a header cannot
#: carry, and numbers no clock or column holds.
POISON_CHARS = ("\x00", "\n", "\r\n", "\t", "\x1b", "\x85", "\u2028")
POISON_NUMBERS = (10**30, -(10**30), 1e308)


def _leaves(node: Any) -> list[tuple[Any, Any]]:
    """(container, key) of every string and number under `node`."""
    found: list[tuple[Any, Any]] = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(value, dict | list):
            found += _leaves(value)
        elif isinstance(value, str | int | float) and not isinstance(value, bool):
            found.append((node, key))
    return found


def poison(case: schemathesis.Case) -> None:
    """Half the time, put a poison character into one string of the request (its path,
    query or JSON body), or a huge number in place of one number of its body. Which one
    follows from the generated request itself, so that a failure replays the same."""
    seed = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
    if seed % 2:
        return
    leaves = [
        *(_leaves(case.path_parameters) if case.path_parameters else []),
        *(_leaves(case.query) if isinstance(case.query, dict) else []),
        *(_leaves(case.body) if isinstance(case.body, dict | list) else []),
    ]
    if not leaves:
        return
    container, key = leaves[(seed >> 1) % len(leaves)]
    value = container[key]
    if isinstance(value, str):
        at = len(value) // 2
        char = POISON_CHARS[(seed >> 8) % len(POISON_CHARS)]
        container[key] = value[:at] + char + value[at:]
    elif container is not case.query and container is not case.path_parameters:
        container[key] = POISON_NUMBERS[(seed >> 8) % len(POISON_NUMBERS)]
