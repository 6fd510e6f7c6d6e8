"""Regenerate README.md's demo summary and images from a fresh run (``make readme-figures``).

Runs ``tsslbp demo --out runs/readme --no-progress`` (what ``make demo`` runs, in another out dir),
timing the whole command; replaces the region of README.md between the ``begin demo summary`` and
``end demo summary`` markers with that time and the summary table exactly as the run printed it;
copies the run's curves.png, confusion.png and raster.png to docs/img/demo_*.png. So the README's
figures are always one real run's, and tests/test_readme.py checks their format against
``tsslbp demo``'s. It also rewrites the "Trained models" table (between the ``begin models table``
and ``end models table`` markers) from models/*.net.manifest.json; ``--models-only`` does only that.

    .venv/bin/python benchmarks/readme_figures.py [--out runs/readme] [--models-only]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tsslbp.workflows.shipping import models_table

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- begin demo summary: written by `make readme-figures` from a fresh run -->"
END = "<!-- end demo summary -->"
MODELS_BEGIN = (
    "<!-- begin models table: written by `make readme-figures` from models/*.manifest.json -->"
)
MODELS_END = "<!-- end models table -->"


def summary_table(stdout: str) -> list[str]:
    """The demo's summary table: the header line and the four rows after it."""
    lines = stdout.splitlines()
    (start,) = [i for i, line in enumerate(lines) if re.match(r"^\s*model\s+accuracy\s", line)]
    return lines[start : start + 5]


def replace_region(readme: Path, begin: str, end: str, lines: list[str]) -> None:
    """Put ``lines`` between the ``begin`` and ``end`` marker lines of ``readme``."""
    text = readme.read_text()
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.S)
    if not pattern.search(text):
        sys.exit(f"{readme}: no region between {begin!r} and {end!r}")
    region = "\n".join([begin, *lines, end])
    readme.write_text(pattern.sub(lambda _: region, text, count=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "readme")
    parser.add_argument("--models-only", action="store_true", help="Only the models table.")
    args = parser.parse_args()
    readme = ROOT / "README.md"
    replace_region(readme, MODELS_BEGIN, MODELS_END, models_table(ROOT / "models"))
    print("README.md: trained models table from models/*.net.manifest.json")
    if args.models_only:
        return
    command = [sys.executable, "-m", "tsslbp", "demo", "--out", str(args.out), "--no-progress"]
    load = os.getloadavg()[0]  # the time below means little on a busy machine: say how busy
    t0 = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    seconds = time.perf_counter() - t0
    sys.stdout.write(done.stdout)
    if done.returncode != 0:
        sys.exit(f"tsslbp demo failed ({done.returncode}):\n{done.stderr[-3000:]}")
    table = summary_table(done.stdout)
    replace_region(
        readme,
        BEGIN,
        END,
        [
            f"`make demo` ({seconds:.0f} s after the install: the whole `tsslbp demo` command on "
            f"{os.cpu_count()} cores, load average {load:.1f} when it started) ends with this summary:",
            "",
            "```",
            *table,
            "```",
        ],
    )
    for name in ("curves", "confusion", "raster"):
        shutil.copyfile(args.out / f"{name}.png", ROOT / "docs" / "img" / f"demo_{name}.png")
    print(f"README.md: demo summary from this run ({seconds:.1f} s); docs/img/demo_*.png copied")


if __name__ == "__main__":
    main()
