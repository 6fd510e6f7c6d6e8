"""What a pip user gets: the wheel holds the package, its configs and entry point, and the installed
command runs from any directory without the source tree.

The wheel is built offline from a copy of the sources (``pip wheel --no-deps --no-build-isolation``,
so no build dependency is fetched) and unpacked, not installed: a subprocess with only the unpacked
wheel on PYTHONPATH, started in an empty directory, stands for a fresh install.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from paths import REPO

from tsslbp.config import load_config
from tsslbp.configs import CONFIG_DIR, ConfigNotFoundError, find_config, shipped_configs

BUILD_TOOLS_MISSING = next(
    (
        f"{name} is not installed (needed to build the wheel offline)"
        for name in ("pip", "setuptools")
        if importlib.util.find_spec(name) is None
    ),
    None,
)


def test_configs_are_found_by_name_or_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    names = shipped_configs()
    assert {"digits_mlp", "fmnist_cnn", "fmnist_mlp_400_400"} <= set(names)
    assert find_config("fmnist_cnn") == CONFIG_DIR / "fmnist_cnn.yaml"
    assert find_config("fmnist_cnn.yaml") == CONFIG_DIR / "fmnist_cnn.yaml"
    # A source checkout's spelling works from any directory.
    assert find_config("configs/digits_mlp.yaml") == CONFIG_DIR / "digits_mlp.yaml"
    own = tmp_path / "digits_mlp.yaml"  # a file the user wrote wins over the shipped name
    own.write_text((CONFIG_DIR / "digits_mlp.yaml").read_text())
    assert find_config(own) == own
    assert find_config("digits_mlp.yaml") == Path("digits_mlp.yaml")
    with pytest.raises(ConfigNotFoundError, match="not the name of a shipped config .*digits_mlp"):
        find_config("no_such_config")
    for path in names.values():
        load_config(path)


def test_repository_configs_link_points_into_the_package() -> None:
    link = REPO / "configs"
    if not link.exists():
        pytest.skip("no configs/ at the repository root")
    assert link.resolve() == CONFIG_DIR


def _build_wheel(dest: Path) -> Path:
    """Build the wheel from a copy of pyproject.toml, README.md and tsslbp/ (the checkout stays clean)."""
    src = dest / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(
        REPO / "tsslbp", src / "tsslbp", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
        + ["--wheel-dir", str(dest / "dist"), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (wheel,) = (dest / "dist").glob("tsslbp-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if BUILD_TOOLS_MISSING:
        pytest.skip(BUILD_TOOLS_MISSING)
    return _build_wheel(tmp_path_factory.mktemp("wheel"))


def test_wheel_holds_package_configs_and_entry_point(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for config in shipped_configs():
        assert f"tsslbp/configs/{config}.yaml" in names
    assert "tsslbp/cli.py" in names
    assert "tsslbp/bench/numpy_loop.py" in names, "tsslbp bench's numpy loop must be installed"
    # Nothing from the source tree beside the package.
    assert not [n for n in names if n.split("/")[0] in ("tests", "configs", "benchmarks", "docs")]
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "tsslbp = tsslbp.cli:main" in text


# Runs the console-script entry point declared by the wheel's metadata, as the `tsslbp` command does.
RUN_ENTRY_POINT = """\
import sys
from importlib.metadata import distribution
(ep,) = [e for e in distribution("tsslbp").entry_points if e.name == "tsslbp"]
import tsslbp
assert tsslbp.__file__.startswith(sys.argv[1]), tsslbp.__file__
sys.argv = ["tsslbp", *sys.argv[2:]]
ep.load()()
"""


def _run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # Plain torch ops: the fused kernels would first be compiled by numba into the fresh install.
    env |= {"PYTHONPATH": str(site), "OMP_NUM_THREADS": "1", "TSSLBP_KERNELS": "torch"}
    return subprocess.run(
        [sys.executable, "-c", RUN_ENTRY_POINT, str(site), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("site")
    zipfile.ZipFile(wheel).extractall(site)
    return site


def test_installed_command_lists_and_trains_shipped_config_from_elsewhere(
    installed: Path, tmp_path: Path
) -> None:
    done = _run_installed(installed, tmp_path, "configs")
    assert done.returncode == 0, done.stderr
    assert "fmnist_cnn" in done.stdout and str(installed) in done.stdout
    done = _run_installed(
        installed, tmp_path, "train", "digits_mlp", "--epochs", "1", "--out", "run", "--no-progress"
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "best.pt").is_file()


@pytest.mark.lava
@pytest.mark.slow
def test_installed_demo_runs_from_another_directory(installed: Path, tmp_path: Path) -> None:
    pytest.importorskip("lava")
    done = _run_installed(
        installed, tmp_path, "demo", "--epochs", "1", "--samples", "3", "--no-progress"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "bit-exact" in done.stdout
    assert (tmp_path / "runs" / "demo" / "model.net").is_file()
