"""Which metrics and labels a PromQL expression names (enough of PromQL for our rules/dashboards).

:func:`references` tokenizes an expression: series selectors (``name{label="…"}``), the label
names of ``by``/``without``/``on``/``ignoring``/``group_left``/``group_right`` lists, and
nothing else (function names, keywords, numbers, durations and string arguments are skipped).
Grafana's ``$var``/``${var}``/``$__rate_interval`` are replaced before parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_FUNCTIONS_OR_KEYWORDS = frozenset(
    {
        "by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or",
        "unless", "offset", "atan2", "inf", "nan", "sum", "avg", "min", "max", "count", "group",
        "stddev", "stdvar", "topk", "bottomk", "quantile", "count_values", "start", "end",
    }
)  # fmt: skip
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_IDENT = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_MATCHER = re.compile(
    r"\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*')\s*"
)
_GRAFANA_VAR = re.compile(r"\$\{[^}]*\}|\$[a-zA-Z_]\w*")


@dataclass
class References:
    """Selectors (metric, label names matched) and grouping label names of an expression."""

    selectors: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)

    @property
    def metrics(self) -> set[str]:
        """Metric names selected."""
        return {name for name, _ in self.selectors}


def _skip_string(text: str, i: int) -> int:
    quote = text[i]
    i += 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def _matchers(block: str) -> tuple[str, ...]:
    names: list[str] = []
    for part in _split_top(block):
        if not part.strip():
            continue
        m = _MATCHER.fullmatch(part)
        if m is None:
            msg = f"cannot parse label matcher {part!r}"
            raise ValueError(msg)
        names.append(m.group(1))
    return tuple(names)


def _split_top(block: str) -> list[str]:
    parts, depth, cur, i = [], 0, "", 0
    while i < len(block):
        ch = block[i]
        if ch in "\"'":
            end = _skip_string(block, i)
            cur += block[i:end]
            i = end
            continue
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
        i += 1
    parts.append(cur)
    return parts


def _closing(text: str, i: int, opening: str, closing: str) -> int:
    depth = 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            i = _skip_string(text, i)
            continue
        if ch == opening:
            depth += 1
        elif ch == closing:
            depth -= 1
            if depth == 0:
                return i
        i += 1
    msg = f"unbalanced {opening}{closing} in {text!r}"
    raise ValueError(msg)


def references(expr: str) -> References:
    """The selectors and grouping labels of ``expr``."""
    text = _GRAFANA_VAR.sub("1", expr)
    out = References()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in "\"'":
            i = _skip_string(text, i)
        elif ch == "[":
            i = _closing(text, i, "[", "]") + 1
        elif ch == "{":  # a selector without a name: {__name__=…} is not used here
            msg = f"selector without a metric name in {expr!r}"
            raise ValueError(msg)
        elif ch.isdigit() or (ch == "." and i + 1 < len(text) and text[i + 1].isdigit()):
            m = re.compile(r"[0-9.]+(?:[eE][+-]?[0-9]+)?[a-zA-Z]*").match(text, i)
            i = m.end() if m else i + 1
        elif (m := _IDENT.match(text, i)) is not None:
            name, j = m.group(0), m.end()
            rest = text[j:].lstrip()
            k = len(text) - len(rest)
            if name in _GROUPING and rest.startswith("("):
                end = _closing(text, k, "(", ")")
                out.grouping.update(x.strip() for x in text[k + 1 : end].split(",") if x.strip())
                i = end + 1
            elif rest.startswith("(") or name in _FUNCTIONS_OR_KEYWORDS:
                i = j
            elif rest.startswith("{"):
                end = _closing(text, k, "{", "}")
                out.selectors.append((name, _matchers(text[k + 1 : end])))
                i = end + 1
            else:
                out.selectors.append((name, ()))
                i = j
        else:
            i += 1
    return out


def problems(expr: str, known: dict[str, frozenset[str]]) -> list[str]:
    """What ``expr`` names that ``known`` (series name → label names) does not export."""
    refs = references(expr)
    out: list[str] = []
    carried: set[str] = set()
    for name, labels in refs.selectors:
        if name not in known:
            out.append(f"unknown metric {name}")
            continue
        carried |= known[name]
        out += [f"{name} has no label {label}" for label in labels if label not in known[name]]
    out += [f"no metric carries label {label}" for label in refs.grouping - carried]
    return out
