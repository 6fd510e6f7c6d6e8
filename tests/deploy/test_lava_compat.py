"""The Python 3.11 import hook that makes lava-nc 0.10.0's var_model importable."""

from __future__ import annotations

import dataclasses
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tsslbp.deploy import lava_compat
from tsslbp.deploy.lava_compat import (
    PATCHED_MODULE,
    LavaCompatError,
    ensure_lava_importable,
    lava_available,
    patch_mutable_dataclass_defaults,
)

needs_strict_dataclasses = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="Python < 3.11 accepts unhashable dataclass defaults"
)

# The shape of lava's var_model: an unhashable dataclass used as another dataclass's default.
SOURCE = textwrap.dedent(
    """\
    from __future__ import annotations
    from dataclasses import dataclass, InitVar

    @dataclass
    class Byte:
        ptr: int = 0

    @dataclass(frozen=True)
    class Frozen:
        ptr: int = 0

    @dataclass
    class Core:
        x: Byte = Byte()
        y: Byte = Byte()  # trailing comment survives
        f: Frozen = Frozen()
        n: int = int()
    """
)

# The dataclasses of lava-nc 0.10.0's var_model whose fields all default to ByteEncoder().
VAR_MODEL_ENCODER_FIELDS = {
    "CoreEncoder": ("x", "y", "p"),
    "ChipEncoder": ("x", "y", "z"),
    "AxonEncoder": ("hi", "lo"),
}


def _exec_source(source: str, name: str) -> dict[str, object]:
    """Execute module source as a fresh module (dataclasses need it in sys.modules)."""
    module = type(sys)(name)
    sys.modules[name] = module
    try:
        exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    finally:
        del sys.modules[name]
    return module.__dict__


def _var_model_path() -> Path:
    """Path of the installed lava-nc var_model.py (imports only lava's parent packages)."""
    package = importlib.util.find_spec(PATCHED_MODULE.rpartition(".")[0])
    return Path(package.submodule_search_locations[0]) / "var_model.py"


def test_rewrite_replaces_only_unhashable_dataclass_defaults() -> None:
    patched, n_rewritten = patch_mutable_dataclass_defaults(SOURCE)

    assert n_rewritten == 2, f"expected 2 defaults rewritten, found {n_rewritten}:\n{patched}"
    expected_lines = {
        "from dataclasses import dataclass, InitVar; from dataclasses import field",
        "    x: Byte = field(default_factory=Byte)",
        "    y: Byte = field(default_factory=Byte)  # trailing comment survives",
        "    f: Frozen = Frozen()",
        "    n: int = int()",
    }
    missing = expected_lines - set(patched.splitlines())
    assert not missing, f"expected lines missing from the rewrite: {missing}\nfound:\n{patched}"
    assert len(patched.splitlines()) == len(SOURCE.splitlines()), (
        f"expected line count {len(SOURCE.splitlines())} kept, found {len(patched.splitlines())}"
    )


def test_rewritten_source_defines_independent_defaults() -> None:
    namespace = _exec_source(patch_mutable_dataclass_defaults(SOURCE)[0], "_compat_sample")

    core_a, core_b = namespace["Core"](), namespace["Core"]()
    assert core_a.x == namespace["Byte"](), f"expected default Byte(), found {core_a.x}"
    assert core_a.x is not core_b.x, "expected each instance to get its own Byte default"


def test_rewrite_reuses_an_existing_field_import() -> None:
    source = SOURCE.replace("InitVar", "InitVar, field")

    patched, n_rewritten = patch_mutable_dataclass_defaults(source)

    assert n_rewritten == 2, f"expected 2 defaults rewritten, found {n_rewritten}"
    assert patched.count("import field") == 0 and patched.count("InitVar, field") == 1, (
        f"expected the existing `field` import to be reused, found:\n{patched}"
    )


def test_rewrite_leaves_clean_source_untouched() -> None:
    source = "from dataclasses import dataclass\n@dataclass\nclass A:\n    n: int = 0\n"

    assert patch_mutable_dataclass_defaults(source) == (source, 0)


@needs_strict_dataclasses
def test_unrecognised_mutable_default_names_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A default built by a helper function is not the `name: T = T()` form the rewrite knows.
    module_file = tmp_path / "fake_var_model.py"
    module_file.write_text(
        "from dataclasses import dataclass\n"
        "@dataclass\nclass Byte:\n    ptr: int = 0\n"
        "def make_byte():\n    return Byte()\n"
        "@dataclass\nclass Core:\n    x: Byte = make_byte()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(
        lava_compat._REWRITES, "fake_var_model", lava_compat._REWRITES[lava_compat.PATCHED_MODULE]
    )
    ensure_lava_importable()

    with pytest.raises(LavaCompatError) as excinfo:
        importlib.import_module("fake_var_model")

    assert str(module_file) in str(excinfo.value), (
        f"expected the error to name {module_file}, found: {excinfo.value}"
    )


@needs_strict_dataclasses
def test_hook_is_installed_once() -> None:
    ensure_lava_importable()
    ensure_lava_importable()

    found = sum(isinstance(f, lava_compat._VarModelFinder) for f in sys.meta_path)
    assert found == 1, f"expected 1 var_model finder on sys.meta_path, found {found}"


def test_lava_available_reports_without_raising() -> None:
    expected = importlib.util.find_spec("lava") is not None

    assert lava_available() is expected, f"expected lava_available() {expected}"


@pytest.mark.lava
def test_patched_real_var_model_defines_the_encoders() -> None:
    pytest.importorskip("lava")
    source = _var_model_path().read_text()

    patched, n_rewritten = patch_mutable_dataclass_defaults(source)
    namespace = _exec_source(patched, "_compat_var_model")

    expected_count = sum(len(fields) for fields in VAR_MODEL_ENCODER_FIELDS.values())
    assert n_rewritten == expected_count, (
        f"expected {expected_count} ByteEncoder defaults rewritten, found {n_rewritten}"
    )
    default = namespace["ByteEncoder"]()
    for name, fields in VAR_MODEL_ENCODER_FIELDS.items():
        instance = namespace[name]()
        found = {f.name: getattr(instance, f.name) for f in dataclasses.fields(instance)}
        expected = dict.fromkeys(fields, default)
        assert found == expected, f"{name}(): expected fields {expected}, found {found}"


@pytest.mark.lava
@needs_strict_dataclasses
def test_released_var_model_needs_the_rewrite() -> None:
    pytest.importorskip("lava")
    source = _var_model_path().read_text()

    with pytest.raises(ValueError, match="mutable default"):
        _exec_source(source, "_released_var_model")


def _run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run code in a fresh interpreter, so that no module is imported yet."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.lava
def test_fresh_interpreter_imports_lava_after_tsslbp_deploy() -> None:
    pytest.importorskip("lava")

    result = _run_python(
        "import tsslbp.deploy\n"
        "from lava.magma.core.run_configs import Loihi2SimCfg\n"
        f"import {PATCHED_MODULE} as m\n"
        "print(type(m.__loader__).__name__)\n"
    )

    expected = "_PatchingLoader" if sys.version_info >= (3, 11) else "SourceFileLoader"
    assert result.returncode == 0, f"expected a clean import, found:\n{result.stderr}"
    assert result.stdout.strip() == expected, (
        f"expected var_model loaded by {expected}, found {result.stdout.strip()!r}"
    )


def test_lava_imports_after_the_start_method_was_fixed():
    """tqdm's lock (or any multiprocessing object) fixes the start method before lava's runtime
    calls set_start_method('fork'); the hook makes that call a no-op when fork is already set."""
    pytest.importorskip("lava")
    code = (
        "import multiprocessing as mp\n"
        "mp.RLock()\n"  # fixes the start method to the platform default (fork on Linux)
        "import tsslbp.deploy\n"
        "import lava.magma.runtime.runtime\n"
        "print('ok', mp.get_start_method())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "fork"]
