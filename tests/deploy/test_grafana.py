"""Grafana provisioning and dashboards: every query names only metrics and labels that exist.

Grafana cannot run here; these checks read the JSON the provisioning loads. Metric names and
labels come from the code (``gtvision.metrics``), the exporters' real output and the recording
rules (``tests/deploy/catalogue.py``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.catalogue import known_series
from tests.deploy.conftest import DEPLOY, Exporter
from tests.deploy.promql import problems, references

GRAFANA = DEPLOY / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
#: the dashboards issue 16 names (uid -> a word of the title)
REQUIRED = {
    "gtv-system": "System Overview",
    "gtv-api": "API Performance",
    "gtv-streaming": "Streaming Health",
    "gtv-database": "Database Metrics",
    "gtv-business": "Business KPIs",
    "gtv-delivery": "Delivery",
}
_LABEL_VALUES = re.compile(r"label_values\(\s*([a-zA-Z_:][\w:]*)\s*,\s*([a-zA-Z_]\w*)\s*\)")
_LEGEND = re.compile(r"\{\{\s*([a-zA-Z_]\w*)\s*\}\}")
_VARIABLE = re.compile(r"\$\{?([a-zA-Z_]\w*)")


def _load(path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(path.read_text())
    return doc


def _panels(doc: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in doc["panels"]:
        out.append(panel)
        out += panel.get("panels", [])
    return out


@pytest.fixture(scope="module")
def known(exporters: dict[str, Exporter]) -> dict[str, frozenset[str]]:
    return known_series({k: v.series for k, v in exporters.items()}, ALERTS)


def test_provisioning_loads_every_dashboard_from_the_prometheus_datasource() -> None:
    sources = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    (source,) = sources["datasources"]
    assert (source["uid"], source["type"]) == ("prometheus", "prometheus")
    assert source["url"] == "http://prometheus:9090"
    providers = yaml.safe_load((GRAFANA / "provisioning/dashboards/gtvision.yml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    docs = {_load(p)["uid"]: _load(p) for p in DASHBOARDS}
    assert len(docs) == len(DASHBOARDS), "two dashboards share a uid"
    for uid, word in REQUIRED.items():
        assert uid in docs, f"dashboard {uid} ({word}) is missing"
        assert word in docs[uid]["title"]
    for doc in docs.values():
        for panel in _panels(doc):
            if panel["type"] == "row":
                continue
            assert panel["datasource"]["uid"] == "prometheus", (doc["uid"], panel["title"])
            assert panel["targets"], (doc["uid"], panel["title"])


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_queries_name_only_exported_metrics_and_labels(
    path: Path, known: dict[str, frozenset[str]]
) -> None:
    doc = _load(path)
    variables = {v["name"] for v in doc["templating"]["list"]}
    bad: list[str] = []
    for var in doc["templating"]["list"]:
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = _LABEL_VALUES.fullmatch(query)
        assert m, f"variable {var['name']}: unsupported query {query!r}"
        metric, label = m.groups()
        if label not in known.get(metric, frozenset()):
            bad.append(f"variable {var['name']}: {metric} has no label {label}")
    for panel in _panels(doc):
        for target in panel.get("targets", []):
            expr = target["expr"]
            where = f"{panel['title']!r}: {expr}"
            bad += [f"{where}: {p}" for p in problems(expr, known)]
            used = {v for v in _VARIABLE.findall(expr) if not v.startswith("__")}
            bad += [f"{where}: undefined variable ${v}" for v in used - variables]
            refs = references(expr)
            carried = refs.grouping | {
                label for name, _ in refs.selectors for label in known.get(name, ())
            }
            bad += [
                f"{where}: legend names {label}, which the query does not return"
                for label in _LEGEND.findall(target.get("legendFormat", ""))
                if label not in carried
            ]
    assert bad == []
