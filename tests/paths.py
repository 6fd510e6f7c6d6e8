"""Locations the tests share (imported by test modules; ``tests`` is on pytest's pythonpath)."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: lava-dl's netx reference networks, in ../shared beside the checkout (CI has them there too).
LAVA_DL_FIXTURES = REPO.parent / "shared" / "fixtures" / "lava-dl-netx"
