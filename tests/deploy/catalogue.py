"""Series names and labels Prometheus can hold for a gtvision deployment.

gtvision's own come from ``gtvision.metrics.catalogue()`` (the code), the exporters' from their
real output (``tests/deploy/conftest.py::exporters``), recording rules from ``alerts.yml``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from gtvision import metrics
from tests.deploy.promql import references

TARGET_LABELS = frozenset({"job", "instance"})
#: series Prometheus writes for every scrape target
SCRAPE_SERIES = ("up", "scrape_duration_seconds", "scrape_samples_scraped")


def gtvision_series() -> dict[str, frozenset[str]]:
    """Every series name gtvision's code exports, with its label names."""
    out: dict[str, frozenset[str]] = {}
    for m in metrics.catalogue():
        for name in m.series:
            extra = {"le"} if name.endswith("_bucket") else set()
            out[name] = frozenset(m.labels) | TARGET_LABELS | extra
    return out


def recorded_series(rules_file: Path) -> dict[str, frozenset[str]]:
    """Recording rules of ``rules_file``: name → the labels their ``by`` keeps."""
    out: dict[str, frozenset[str]] = {}
    for group in yaml.safe_load(rules_file.read_text())["groups"]:
        for rule in group["rules"]:
            if "record" in rule:
                out[rule["record"]] = frozenset(references(rule["expr"]).grouping - {"le"})
    return out


def known_series(
    exporters: dict[str, dict[str, frozenset[str]]], rules_file: Path
) -> dict[str, frozenset[str]]:
    """gtvision + scrape + exporters (with target labels) + recording rules."""
    out = gtvision_series()
    out.update(dict.fromkeys(SCRAPE_SERIES, TARGET_LABELS))
    out["ALERTS"] = TARGET_LABELS | {"alertname", "alertstate", "severity"}
    for series in exporters.values():
        out.update({name: labels | TARGET_LABELS for name, labels in series.items()})
    out.update(recorded_series(rules_file))
    return out
