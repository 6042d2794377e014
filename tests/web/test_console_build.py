"""The console as shipped: built from its sources, in the package, within budget, served with
a strict CSP (or a 503 that says how to build it)."""

from __future__ import annotations

import fnmatch
import gzip
import subprocess
import tomllib
from pathlib import Path

import pytest

from gtvision.web import routes_ui
from tests.web.conftest import Api

ROOT = Path(__file__).resolve().parents[2]
BUILT = ROOT / "web" / "static" / "console"
JS_BUDGET_GZ = 250_000


def test_build_is_current_with_its_sources() -> None:
    proc = subprocess.run(
        ["bash", str(ROOT / ".ci" / "build-console"), "--check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr


def test_every_built_file_is_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["gtvision.web.static"]
    static = ROOT / "web" / "static"
    files = [p.relative_to(static).as_posix() for p in BUILT.rglob("*") if p.is_file()]
    shipped = [f for f in files if not f.endswith(".sources-sha256")]
    assert "console/index.html" in shipped
    missed = [f for f in shipped if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert not missed, f"built but not in the wheel: {missed}"


def test_javascript_within_budget_and_no_inline_code() -> None:
    js = sorted((BUILT / "assets").glob("*.js"))
    assert js, "no built JavaScript"
    gz = sum(len(gzip.compress(p.read_bytes(), 9)) for p in js)
    assert gz <= JS_BUDGET_GZ, f"console JS is {gz} bytes gzipped (budget {JS_BUDGET_GZ})"
    for html in ("index.html", "docs.html"):
        text = (BUILT / html).read_text()
        assert "<script>" not in text, f"inline script in {html}"
        assert "style=" not in text, f"inline style in {html}"
        assert "<style" not in text, f"inline style sheet in {html}"


@pytest.mark.asyncio(loop_scope="session")
async def test_pages_carry_a_strict_csp_and_assets_are_cached(api: Api) -> None:
    for path in ("/", "/docs"):
        r = await api.client.get(path)
        assert r.status_code == 200, r.text
        (csp,) = r.headers.get_list("content-security-policy")  # one policy, not two
        directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe" not in csp
        assert r.headers["cache-control"] == "no-cache"
    index = (BUILT / "index.html").read_text()
    asset = index.split('src="', 1)[1].split('"', 1)[0]
    r = await api.client.get(asset)
    assert r.status_code == 200
    assert "immutable" in r.headers["cache-control"]


@pytest.mark.asyncio(loop_scope="session")
async def test_unbuilt_console_answers_503_with_the_fix(
    api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(routes_ui, "_built", lambda name: tmp_path / name)
    r = await api.client.get("/")
    assert r.status_code == 503
    assert "bash .ci/build-console" in r.text
