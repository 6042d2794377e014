"""Flow parameters: a pydantic model a flow declares, filled from ``--params`` and ``--param``.

A flow declares its parameters with :func:`flow`::

    class Params(BaseModel):
        window_min: int = Field(5, ge=1, description="window length in minutes")

    @flow(params=Params)
    def build(ctx: FlowContext) -> Dataflow:
        p = ctx.params_of(Params)
        ...

``gtvision replay|run … --params file.toml --param window_min=10`` (arguments defined in
:mod:`gtvision.commands.flowargs`) validates them (file first,
then each ``--param`` over it; values are read as JSON when they parse, else as text, so
``--param zone='[[0,0],[1,0],[1,1]]'`` gives a list) and hands the model to the flow as
``ctx.params``. ``gtvision flows show MODULE:ATTR`` lists them. Unknown names, bad values and
parameters given to a flow that declares none are errors that name the parameter and value.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

F = TypeVar("F", bound=Callable[..., Any])
PARAMS_ATTR = "gtvision_params"


class ParamsError(ValueError):
    """Parameters that do not fit the flow's model (the message names which and why)."""


def flow(*, params: type[BaseModel] | None = None) -> Callable[[F], F]:
    """Declare a flow builder's parameter model (``ctx.params`` will be an instance of it)."""

    def mark(builder: F) -> F:
        setattr(builder, PARAMS_ATTR, params)
        return builder

    return mark


def params_model(builder: Callable[..., Any]) -> type[BaseModel] | None:
    """The parameter model ``builder`` declared, if any."""
    model = getattr(builder, PARAMS_ATTR, None)
    return model if isinstance(model, type) and issubclass(model, BaseModel) else None


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: Sequence[str]) -> dict[str, Any]:
    """``["k=v", …]`` as a mapping (JSON values where they parse)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            msg = f"--param expects KEY=VALUE, got {pair!r}"
            raise ParamsError(msg)
        out[key.strip()] = _value(value)
    return out


def load_params_file(path: Path) -> dict[str, Any]:
    """A TOML file of parameters."""
    try:
        return tomllib.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        msg = f"--params file not found: {str(path)!r}"
        raise ParamsError(msg) from None
    except tomllib.TOMLDecodeError as err:
        msg = f"--params file {str(path)!r} is not valid TOML: {err}"
        raise ParamsError(msg) from None


def _errors(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(x) for x in e["loc"]) or "(parameters)"
        parts.append(f"{where}={e.get('input')!r}: {e['msg']}")
    return "; ".join(parts)


def validate_params(
    model: type[BaseModel] | None, values: dict[str, Any], flow_name: str = "the flow"
) -> BaseModel | None:
    """``values`` validated by ``model`` (``None`` when the flow declares no parameters)."""
    if model is None:
        if values:
            names = ", ".join(sorted(values))
            msg = f"{flow_name} declares no parameters, got {names}"
            raise ParamsError(msg)
        return None
    unknown = sorted(set(values) - set(model.model_fields))
    if unknown:
        known = ", ".join(model.model_fields) or "none"
        msg = f"{flow_name}: unknown parameter(s) {', '.join(unknown)} (it takes: {known})"
        raise ParamsError(msg)
    try:
        return model.model_validate(values)
    except ValidationError as err:
        msg = f"{flow_name}: invalid parameters: {_errors(err)}"
        raise ParamsError(msg) from None


def flow_params(
    builder: Callable[..., Any], pairs: Sequence[str] = (), file: Path | None = None
) -> BaseModel | None:
    """The parameters of ``builder`` from a TOML ``file`` and ``KEY=VALUE`` ``pairs`` over it."""
    values = load_params_file(file) if file is not None else {}
    values.update(parse_pairs(pairs))
    name = f"flow {getattr(builder, '__module__', '?')}:{getattr(builder, '__name__', '?')}"
    return validate_params(params_model(builder), values, name)


def describe(model: type[BaseModel] | None) -> list[str]:
    """One line per parameter: name, type, default (or required), description."""
    if model is None:
        return ["(no parameters)"]
    lines = []
    for name, info in model.model_fields.items():
        kind = getattr(info.annotation, "__name__", None) or str(info.annotation)
        default = "required" if info.is_required() else f"default {info.get_default()!r}"
        text = f"  {name}: {kind} ({default})"
        if info.description:
            text += f" — {info.description}"
        lines.append(text)
    return lines
