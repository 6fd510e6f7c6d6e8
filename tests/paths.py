"""Locations the tests share (imported by test modules; ``tests`` is on pytest's pythonpath).

lava-dl's netx reference networks live in ../shared beside the checkout, which a plain clone does
not have: tests that read them carry :data:`needs_lava_dl_fixtures` and skip, saying why. Set
``TSSLBP_LAVA_DL_FIXTURES`` to use another folder (or a missing one, to see the skips), and
``TSSLBP_REQUIRE_FIXTURES=1`` where they must run (CI): then a missing folder fails those tests
instead of skipping them.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: lava-dl's netx reference networks, in ../shared beside the checkout (CI has them there too).
LAVA_DL_FIXTURES = Path(
    os.environ.get("TSSLBP_LAVA_DL_FIXTURES", REPO.parent / "shared" / "fixtures" / "lava-dl-netx")
)
#: Why the fixture tests skip, or None when the fixtures are there (or required).
FIXTURES_MISSING = (
    None
    if LAVA_DL_FIXTURES.is_dir() or os.environ.get("TSSLBP_REQUIRE_FIXTURES") == "1"
    else f"lava-dl netx fixtures not found at {LAVA_DL_FIXTURES} (../shared beside the checkout; "
    "TSSLBP_LAVA_DL_FIXTURES names another folder)"
)
#: Mark for a test (or ``pytestmark`` for a module) that reads the fixtures.
needs_lava_dl_fixtures = pytest.mark.skipif(
    FIXTURES_MISSING is not None, reason=FIXTURES_MISSING or ""
)
