"""Every metric the alert rules and the Grafana dashboard use exists in a /metrics scrape of
the four running services (on each one's metrics port, where Prometheus scrapes them; the API's
port has none), and every expression in them is valid PromQL (promql-parser)."""

import json
from pathlib import Path
from typing import Any

import httpx
import promql_parser
import pytest
import yaml

from tests.e2e.conftest import System

MONITORING = Path(__file__).parents[2] / "deploy/k8s/components/monitoring"


def _rule_expressions() -> list[str]:
    rules = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    return [rule["expr"] for group in rules["spec"]["groups"] for rule in group["rules"]]


def _dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "dashboards/npsloop.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _metric_names(node: Any) -> set[str]:
    """The metric names a parsed PromQL expression selects."""
    if isinstance(node, promql_parser.VectorSelector):
        return {node.name} if node.name else set()
    children: list[Any] = []
    for attribute in ("expr", "lhs", "rhs", "vector_selector", "param"):
        child = getattr(node, attribute, None)
        if child is not None:
            children.append(child)
    children += list(getattr(node, "args", None) or [])
    return set().union(*(_metric_names(c) for c in children)) if children else set()


def _used() -> dict[str, set[str]]:
    return {
        expr: _metric_names(promql_parser.parse(expr))
        for expr in _rule_expressions() + _dashboard_expressions()
    }


def _exposed(text: str) -> set[str]:
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind in ("histogram", "summary"):
                names |= {f"{name}_bucket", f"{name}_count", f"{name}_sum"}
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


@pytest.mark.parametrize("expr", _rule_expressions() + _dashboard_expressions())
def test_every_rule_and_panel_is_valid_promql_on_npsloop_metrics(expr: str) -> None:
    names = _metric_names(promql_parser.parse(expr))
    assert names, f"{expr!r} selects no metric"
    assert all(n.startswith("npsloop_") for n in names), names


async def test_every_metric_the_alerts_and_dashboard_use_is_scraped_from_the_services(
    system: System,
) -> None:
    exposed: set[str] = set()
    async with httpx.AsyncClient(timeout=10) as client:
        for name in ("ingest", "scoring", "followup", "notify"):
            answer = await client.get(system.services[name].metrics_url)
            assert answer.status_code == 200
            exposed |= _exposed(answer.text)
            assert (await client.get(f"{system.url(name)}/metrics")).status_code == 404
    missing = {
        name: expr for expr, names in _used().items() for name in names if name not in exposed
    }
    assert not missing, f"used by the alerts or the dashboard but not scraped: {missing}"
