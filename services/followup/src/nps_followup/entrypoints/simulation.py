"""`nps-followup policy simulate`: the report of a replay, as a table for people or as JSON for
programs. Translation only: the replay is `handlers.simulation.simulate_policy`."""

import json
from collections import Counter
from collections.abc import Callable, Hashable
from datetime import date
from typing import Any, TypeVar

from nps_followup.domain.simulation import Outcome
from nps_followup.handlers.simulation import Simulation

K = TypeVar("K", bound=Hashable)


def _counts(outcome: Outcome) -> dict[str, dict[str, int]]:
    """Every figure of an outcome as `section → key → count`, keys in words."""
    return {
        "responses": {
            "replayed": outcome.responses,
            "no rule applies": outcome.no_rule,
            "joined an active case": outcome.attached,
            **{f"not acted on: {k}": v for k, v in sorted(outcome.not_acted_on.items())},
        },
        "cases per team": _sorted(outcome.cases_per_team, str),
        "cases per day": _sorted(outcome.cases_per_day, date.isoformat),
        "messages per channel and template": _sorted(
            outcome.messages, lambda key: f"{key[0]} {key[1]}"
        ),
        "held back by contact rule": _sorted(outcome.held_back, str),
        "moved later by contact rule": _sorted(outcome.moved, str),
        "contact deadlines per person": {
            person: total for person, (total, _) in outcome.deadline_load().items()
        },
        "most deadlines on one day per person": {
            person: peak for person, (_, peak) in outcome.deadline_load().items()
        },
    }


def _sorted(counter: Counter[K], name: Callable[[K], str]) -> dict[str, int]:
    return {name(key): value for key, value in sorted(counter.items(), key=lambda kv: name(kv[0]))}


def report(simulation: Simulation) -> dict[str, Any]:
    """The report as one JSON object: each section's counts under the proposed policy, under
    the policy in force, and the difference (proposed minus in force)."""
    proposed, in_force = _counts(simulation.proposed), _counts(simulation.in_force)
    sections: dict[str, Any] = {}
    for section in proposed:
        keys = sorted(proposed[section].keys() | in_force[section].keys())
        sections[section] = {
            key: {
                "proposed": proposed[section].get(key, 0),
                "in_force": in_force[section].get(key, 0),
                "difference": proposed[section].get(key, 0) - in_force[section].get(key, 0),
            }
            for key in keys
        }
    return {
        "from": simulation.start.isoformat(),
        "to": simulation.end.isoformat(),
        "replayed_at": "answered" if simulation.as_answered else "received",
        "sections": sections,
    }


def to_json(simulation: Simulation) -> str:
    return json.dumps(report(simulation), indent=2) + "\n"


def to_table(simulation: Simulation) -> str:
    """The report as aligned text: one block per section, one line per key."""
    data = report(simulation)
    moment = (
        "as if each response arrived when the customer answered"
        if simulation.as_answered
        else "each response at the moment followup received it"
    )
    lines = [
        f"Policy simulation, responses answered {data['from']} to {data['to']} (UTC), "
        f"replayed {moment}. Nothing was written or sent.",
    ]
    sections: dict[str, dict[str, dict[str, int]]] = data["sections"]
    width = max(
        [len(key) for rows in sections.values() for key in rows] + [len(s) for s in sections]
    )
    header = f"{'proposed':>10} {'in force':>10} {'difference':>11}"
    for section, rows in sections.items():
        lines.append("")
        lines.append(f"{section:<{width}}  {header}")
        if not rows:
            lines.append("  (none)")
        for key, row in rows.items():
            lines.append(
                f"  {key:<{width - 2}}  {row['proposed']:>10} {row['in_force']:>10} "
                f"{row['difference']:>+11}"
            )
    return "\n".join(lines) + "\n"
