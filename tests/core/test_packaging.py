"""The installed distribution: one ``gtvision`` namespace over the top-level folders."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = ("flows", "operators", "sinks", "sources", "web", "models")


def _python(tmp_path: Path, code: str) -> subprocess.CompletedProcess[str]:
    # a temporary cwd, so only the installed distribution can satisfy the imports
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_namespace_maps_the_repo_folders(tmp_path: Path) -> None:
    code = (
        "import importlib, json\n"
        f"mods = {['gtvision', *(f'gtvision.{f}' for f in FOLDERS)]!r}\n"
        "print(json.dumps({m: importlib.import_module(m).__file__ for m in mods}))\n"
    )
    proc = _python(tmp_path, code)
    assert proc.returncode == 0, proc.stderr
    files = __import__("json").loads(proc.stdout)
    assert Path(files["gtvision"]).parent == ROOT / "gtvision"
    for folder in FOLDERS:
        # editable install: the module is the repo folder itself, not a copy (mypy's
        # gtvision/<folder> symlinks may be the path it was found through)
        found = Path(files[f"gtvision.{folder}"]).resolve().parent
        assert found == (ROOT / folder).resolve(), files


@pytest.mark.parametrize("bare", FOLDERS)
def test_bare_folder_names_are_not_importable(tmp_path: Path, bare: str) -> None:
    proc = _python(tmp_path, f"import {bare}")
    assert proc.returncode != 0
    assert f"No module named '{bare}'" in proc.stderr


def test_version_and_entry_point(tmp_path: Path) -> None:
    proc = _python(
        tmp_path,
        "import importlib.metadata as md, gtvision; "
        "assert md.version('gtvision') == gtvision.__version__, gtvision.__version__; "
        "print(md.distribution('gtvision').entry_points.select(name='gtvision')[0].value)",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "gtvision.cli:main"
    cli = Path(sys.executable).with_name("gtvision")
    out = subprocess.run([str(cli), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip().startswith("gtvision ")


def test_migrations_ship_as_package_data() -> None:
    from importlib import resources

    sql = [p.name for p in resources.files("gtvision.migrations").iterdir()]
    assert "0001_initial.sql" in sql


def test_every_package_folder_is_listed_for_the_wheel() -> None:
    """A folder with ``__init__.py`` missing from ``packages`` is left out of a non-editable
    install (the Docker image): the editable install used here would not notice."""
    import tomllib

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    dirs = {name: Path(path) for name, path in tool["package-dir"].items()}
    found: set[str] = set()
    for name, folder in dirs.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            if "__pycache__" in rel.parts or init.parent.is_symlink():
                continue
            parts = [p for p in rel.parts if p]
            if any((ROOT / folder / Path(*parts[: i + 1])).is_symlink() for i in range(len(parts))):
                continue
            found.add(".".join([name, *parts]))
    assert found - listed == set(), "add these to [tool.setuptools] packages"
