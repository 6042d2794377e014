"""Build hook: the operator console is built into the package before its files are collected.

Everything else is declared in ``pyproject.toml``. In a source tree (``.ci/build-console``
exists) ``build_py`` first runs that script, which builds ``web/console`` into
``web/static/console`` with npm when its sources changed; so a wheel, or ``pip install .`` of a
clean clone, carries the console. Without npm the install stops with what to do, unless a build
is already there. An sdist or wheel carries the built files and needs no Node.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUILDER = ROOT / ".ci" / "build-console"
BUILT = ROOT / "web" / "static" / "console" / "index.html"


class BuildPyWithConsole(build_py):
    """``build_py`` that builds the console first (see the module docstring)."""

    def run(self) -> None:
        """Build the console when needed, then collect the package as usual."""
        if BUILDER.exists():
            if shutil.which("npm"):
                subprocess.run(["bash", str(BUILDER)], check=True)
            elif not BUILT.exists():
                msg = (
                    "gtvision: the operator console (web/console) must be built and npm is not "
                    "installed: install Node.js >= 20.19 with npm, or install a gtvision wheel"
                )
                raise SystemExit(msg)
            else:
                self.warn("npm not found: packaging the console built earlier as it is")
        super().run()


setup(cmdclass={"build_py": BuildPyWithConsole})
