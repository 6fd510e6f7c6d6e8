"""Deploy targets: loihi2 needs lava-loihi, sim runs here; tsslbp.deploy imports without lava."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tsslbp.deploy import target
from tsslbp.deploy.target import DeployTarget, DeployTargetError, deploy_target_check


def test_unknown_target_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="unknown deploy target 'loihi3'; allowed: sim, loihi2"):
        deploy_target_check("loihi3")


@pytest.mark.lava
def test_sim_target_is_available() -> None:
    pytest.importorskip("lava")
    assert deploy_target_check("sim") is DeployTarget.SIM


@pytest.mark.lava
def test_loihi2_without_lava_loihi_says_what_is_missing() -> None:
    pytest.importorskip("lava")
    try:
        import lava.magma.compiler.subcompilers.nc.ncproc_compiler  # noqa: F401, PLC0415
    except ImportError:
        pass
    else:
        pytest.skip("lava-loihi is installed here")
    with pytest.raises(DeployTargetError) as info:
        deploy_target_check("loihi2")
    message = str(info.value)
    assert "\n" not in message, f"expected one line, got {message!r}"
    for part in (
        "lava-loihi",
        "lava.magma.compiler.subcompilers.nc.ncproc_compiler",
        "Loihi2HwCfg",
        "--target sim",
        "Loihi2SimCfg",
    ):
        assert part in message, f"{part!r} missing from {message!r}"


def test_missing_lava_is_one_line_for_every_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target, "lava_available", lambda: False)
    for name in ("sim", "loihi2"):
        with pytest.raises(DeployTargetError) as info:
            deploy_target_check(name)
        message = str(info.value)
        assert "\n" not in message and "lava-nc" in message, f"{name}: {message!r}"


def test_package_imports_and_reports_without_lava() -> None:
    """With lava unimportable, tsslbp.deploy imports, the target check fails with its one-line
    message, and run_lava fails only when used."""
    script = textwrap.dedent(
        """\
        import importlib.abc, sys

        class NoLava(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "lava" or name.startswith("lava."):
                    raise ModuleNotFoundError(f"No module named {name!r}")
                return None

        sys.meta_path.insert(0, NoLava())
        import tsslbp.deploy as deploy
        assert not any(m == "lava" or m.startswith("lava.") for m in sys.modules), "lava was imported"
        try:
            deploy.deploy_target_check("sim")
        except deploy.DeployTargetError as exc:
            print("target:", exc)
        try:
            deploy.run_lava
        except ImportError as exc:
            print("run_lava:", type(exc).__name__)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("target: --target sim needs lava-nc"), lines
    assert lines[1] == "run_lava: ModuleNotFoundError", lines
