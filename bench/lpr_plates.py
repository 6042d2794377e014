"""Rendered motorcycle (two-row) and car plates: exact reads per format, size and angle.

Both formats (old ``LLL``/``9999`` and Mercosul ``LLL9``/``L99`` for motorcycles), plate widths
70-220 px, rotations -10..10°, perspective tilt 0-0.2, sensor noise σ 2, in generated scenes
(``tests/operators/lpr/rendered.py``, seeded). Bar: motorcycle plates >= 95 % exact.

Usage: ``.venv/bin/python bench/lpr_plates.py [--layout moto|car]``
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gtvision.config import load_settings
from gtvision.models.store import pull
from gtvision.operators.lpr import PlateReader
from tests.operators.lpr.rendered import scene

WIDTHS = (70, 90, 120, 160, 220)
ANGLES = (-10.0, -5.0, 0.0, 5.0, 10.0)
TILTS = (0.0, 0.2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layout", choices=["moto", "car"], default="moto")
    args = parser.parse_args()
    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    models_dir = load_settings().models_path
    pull(models_dir)
    reader = PlateReader.load(models_dir)
    hits: Counter[str] = Counter()
    total: Counter[str] = Counter()
    wrong = []
    cases = itertools.product(("old", "mercosul"), WIDTHS, ANGLES, TILTS)
    for seed, (style, width, angle, tilt) in enumerate(cases):
        s = scene(
            1000 + seed,
            style,  # type: ignore[arg-type]
            args.layout,
            plate_width=width,
            angle=angle,
            tilt=tilt,
            noise=2.0,
            size=(800, 450),
        )
        got = reader.read(s.image)
        text = got[0].text if got else ""
        for key in (style, f"{width}px", f"{angle:+.0f}deg", "all"):
            total[key] += 1
            hits[key] += text == s.text
        if text != s.text:
            wrong.append(
                f"{style} {width}px {angle:+.0f}° tilt {tilt}: {s.text} read {text or '-'}"
            )
    for key in total:
        print(f"{key:>10}: {hits[key] / total[key]:6.1%} ({hits[key]}/{total[key]})")
    for line in wrong:
        print("  wrong:", line)
    rate = hits["all"] / total["all"]
    print(f"{args.layout} exact {rate:.1%} (bar >= 95%) {'PASS' if rate >= 0.95 else 'FAIL'}")
    print(subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip())
    return 0 if rate >= 0.95 else 1


if __name__ == "__main__":
    raise SystemExit(main())
