"""Fuzzing the config parser: no input may fail with anything but one :class:`ConfigError` line.

The inputs are the shipped ``configs/*.yaml`` (read with ``yaml.safe_load``) mutated by hypothesis:
keys dropped, renamed or added, values replaced by wrong types (str, bool, None, list, dict), floats
(NaN, inf, huge), negative and huge integers, wrong nesting, unknown layer types, empty blocks and
non-mapping top levels; plus arbitrary YAML text and bytes through :func:`load_config`. A parse that
succeeds must survive ``to_dict`` -> ``parse_config`` unchanged, and in-range edits of the shipped
configs must parse.

Example counts: each property runs a fixed, derandomized number of examples under the "ci"
hypothesis profile (``tests/conftest.py``); the session's total is printed in the terminal summary
("hypothesis: N examples (...)"). ``TSSLBP_HYPOTHESIS_PROFILE=deep`` fuzzes longer.
"""

from __future__ import annotations

import collections
import copy
import functools
import math
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from paths import REPO

from tsslbp.config import ConfigError, ExperimentConfig, load_config, parse_config

SOURCE = "fuzz.yaml"
CONFIG_PATHS = sorted((REPO / "configs").glob("*.yaml"))
# Key names of the schema (for renames into a real but wrong place) and layer type names.
KNOWN_KEYS = [
    "Network",
    "Layers",
    "n_steps",
    "tau_m",
    "tau_s",
    "lr",
    "loss",
    "dataset",
    "n_class",
    "type",
    "n_inputs",
    "n_outputs",
    "kernel_size",
    "stride",
    "padding",
    "dilation",
    "groups",
    "p",
    "scale",
    "in_channels",
    "out_channels",
    "threshold",
    "weight_scale",
    "augment",
    "data_path",
    "seed",
]
KNOWN_WORDS = [
    "linear",
    "conv",
    "pooling",
    "dropout",
    "lstm",
    "kernel",
    "count",
    "digits",
    "LIF",
    "TSSLBP",
    "",
]


def _examples(ci_count: int) -> int:
    """``ci_count`` under the default "ci" profile, the profile's own count otherwise ("deep")."""
    return ci_count if settings.get_current_profile_name() == "ci" else settings().max_examples


@functools.cache
def _shipped_cached(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def _shipped(path: Path) -> dict[str, Any]:
    """A fresh copy of a shipped config as ``yaml.safe_load`` gives it (parsed once: YAML is slow)."""
    return copy.deepcopy(_shipped_cached(path))


# Numbers at the edges: negative, zero, huge (beyond float and int64), NaN, inf, subnormal.
NUMBERS = st.one_of(
    st.integers(-3, 3),
    st.integers(),
    st.sampled_from([-1, 0, 10**12, 2**63, -(2**63) - 1, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0, 0.5, 1e-320]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    NUMBERS,
    st.text(max_size=12),
    st.sampled_from(KNOWN_WORDS + KNOWN_KEYS + ["a\nb", "  ", "1e-3", "0x10", "yes"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(
            st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=6)), inner, max_size=3
        ),
    ),
    max_leaves=6,
)
KEY_NAMES = st.one_of(
    st.sampled_from(KNOWN_KEYS), st.text(max_size=8), st.integers(-2, 2), st.none(), st.booleans()
)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    """Every key path into nested dicts and lists, the root () included."""
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


def _get(node: Any, path: tuple) -> Any:
    for key in path:
        node = node[key]
    return node


@st.composite
def mutated_configs(draw: st.DrawFn) -> Any:
    """A shipped config with 1..4 random edits (any edit may also replace the whole document)."""
    raw: Any = _shipped(draw(st.sampled_from(CONFIG_PATHS)))
    for _ in range(draw(st.integers(1, 4))):
        path = draw(st.sampled_from(_paths(raw)))
        op = draw(
            st.sampled_from(
                ["number", "replace", "drop", "rename", "add", "wrap_list", "wrap_dict", "empty"]
            )
        )
        if not path:
            if op in ("number", "replace", "drop"):
                raw = draw(VALUES)
            elif op == "wrap_list":
                raw = [raw]
            elif op == "wrap_dict":
                raw = {draw(KEY_NAMES): raw}
            elif op == "empty":
                raw = {} if isinstance(raw, dict) else []
            continue
        parent, key = _get(raw, path[:-1]), path[-1]
        if op == "number":
            parent[key] = draw(NUMBERS)
        elif op == "replace":
            parent[key] = draw(VALUES)
        elif op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            parent[draw(KEY_NAMES)] = parent.pop(key)
        elif op == "add" and isinstance(parent, dict):
            parent[draw(KEY_NAMES)] = draw(VALUES)
        elif op == "wrap_list":
            parent[key] = [parent[key]]
        elif op == "wrap_dict":
            parent[key] = {draw(KEY_NAMES): parent[key]}
        elif op == "empty":
            parent[key] = {} if draw(st.booleans()) else None
    return raw


def _assert_config_error_line(err: ConfigError, source: str, names_key: bool = True) -> None:
    """One line, starting with the file; with ``names_key``, of the form ``<file>: <key>: expected ...``."""
    message = str(err)
    assert "\n" not in message, f"expected a one-line message, found {message!r}"
    assert message.startswith(f"{source}: "), (
        f"expected the message to start with {source!r}, found {message!r}"
    )
    if names_key:
        assert ": expected " in message, (
            f"expected '<key>: expected ...' in the message, found {message!r}"
        )


def _parses_or_config_error(raw: Any, source: str = SOURCE) -> ExperimentConfig | None:
    """Parse; only ConfigError may escape, as one line; a success must round-trip through to_dict."""
    try:
        cfg = parse_config(raw, source)
    except ConfigError as err:
        _assert_config_error_line(err, source)
        return None
    again = parse_config(cfg.to_dict(), source)
    assert again == cfg, f"to_dict round trip changed the config: {cfg} -> {again}"
    return cfg


def test_shipped_configs_parse() -> None:
    assert CONFIG_PATHS, f"no configs found under {REPO / 'configs'}"
    for path in CONFIG_PATHS:
        cfg = load_config(path)
        assert cfg.source == str(path), f"source {cfg.source!r}, expected {str(path)!r}"


def test_fuzz_mutated_configs(fuzz_counts: collections.Counter) -> None:
    before = fuzz_counts["config"]
    n = _examples(300)

    @settings(max_examples=n)
    @given(raw=mutated_configs())
    def run(raw: Any) -> None:
        fuzz_counts["config"] += 1
        _parses_or_config_error(copy.deepcopy(raw))

    run()
    ran = fuzz_counts["config"] - before
    assert ran >= n // 2, f"expected about {n} examples, ran {ran}"


# In-range values of the Network block that keep every shipped config valid.
VALID_NETWORK_EDITS = st.fixed_dictionaries(
    {},
    optional={
        "tau_m": st.floats(1.01, 100, allow_nan=False),
        "tau_s": st.one_of(st.integers(1, 50), st.floats(1.0, 50.0)),
        "lr": st.floats(1e-9, 10.0),
        # batch_size x neurons x n_steps stays within LIMITS["state_cells"] (2**31) for every
        # shipped config: the CIFAR-10 CNNs' widest layer has 262,144 neurons, n_steps <= 105.
        "batch_size": st.integers(1, 64),
        "epochs": st.integers(1, 10**6),
        "seed": st.integers(0, 2**64 - 1),
        "grad_clip": st.floats(1e-6, 1e6),
        "weight_clip": st.floats(1e-6, 1e6),
        "loss": st.sampled_from(["kernel", "count", "softmax", "KERNEL", " count "]),
        "rule": st.sampled_from(["TSSLBP", "tsslbp"]),
        "model": st.sampled_from(["LIF", "lif"]),
    },
)


def test_fuzz_valid_edits_parse(fuzz_counts: collections.Counter) -> None:
    before = fuzz_counts["config"]
    n = _examples(60)

    @settings(max_examples=n)
    @given(
        path=st.sampled_from(CONFIG_PATHS),
        edits=VALID_NETWORK_EDITS,
        n_steps_extra=st.integers(0, 100),
    )
    def run(path: Path, edits: dict[str, Any], n_steps_extra: int) -> None:
        fuzz_counts["config"] += 1
        raw = _shipped(path)
        raw["Network"].update(edits)
        raw["Network"]["n_steps"] += n_steps_extra
        cfg = _parses_or_config_error(raw)
        assert cfg is not None, f"{path.name} with in-range edits {edits} did not parse"
        assert cfg.n_steps == raw["Network"]["n_steps"], (
            f"n_steps {cfg.n_steps}, expected {raw['Network']['n_steps']}"
        )

    run()
    ran = fuzz_counts["config"] - before
    assert ran >= n // 2, f"expected about {n} examples, ran {ran}"


@st.composite
def config_files(draw: st.DrawFn) -> bytes:
    """File contents: dumped mutated configs, cut or spliced, arbitrary text, or arbitrary bytes."""
    kind = draw(st.sampled_from(["dump", "cut", "text", "bytes", "yaml_words"]))
    if kind in ("dump", "cut"):
        text = yaml.safe_dump(draw(mutated_configs()), allow_unicode=True)
        if kind == "cut":
            text = text[: draw(st.integers(0, len(text)))]
        return text.encode()
    if kind == "text":
        return draw(st.text(max_size=200)).encode()
    if kind == "yaml_words":
        words = st.sampled_from(
            [
                "Network:",
                "Layers:",
                "  ",
                "- ",
                ": ",
                "\n",
                "{",
                "}",
                "[",
                "]",
                "&a ",
                "*a",
                "!!python/object ",
                "? ",
                "%YAML 1.1\n",
                "---\n",
                "...\n",
                "'",
                '"',
                "#",
                "n_steps: 5",
                "type: conv",
                "\t",
                "|",
                ">",
                "!!binary ",
                "~",
            ]
        )
        return "".join(draw(st.lists(words, max_size=30))).encode()
    return draw(st.binary(max_size=200))


def test_fuzz_config_files(
    tmp_path_factory: pytest.TempPathFactory, fuzz_counts: collections.Counter
) -> None:
    path = tmp_path_factory.mktemp("config_fuzz") / "fuzz.yaml"
    before = fuzz_counts["config"]
    n = _examples(200)

    @settings(max_examples=n)
    @given(data=config_files())
    def run(data: bytes) -> None:
        fuzz_counts["config"] += 1
        path.write_bytes(data)
        try:
            load_config(path)
        except ConfigError as err:
            # Errors about the file as a whole name no key; everything past YAML does.
            file_level = any(s in str(err) for s in ("not valid YAML", "not UTF-8 text"))
            _assert_config_error_line(err, str(path), names_key=not file_level)

    run()
    ran = fuzz_counts["config"] - before
    assert ran >= n // 2, f"expected about {n} examples, ran {ran}"


# --- regressions found by the fuzzers above ------------------------------------------------------


def _digits_mlp() -> dict[str, Any]:
    return _shipped(REPO / "configs" / "digits_mlp.yaml")


def test_integer_beyond_float_range_is_a_config_error() -> None:
    # Was OverflowError from math.isfinite(10**400).
    raw = _digits_mlp()
    raw["Network"]["tau_m"] = 10**400
    with pytest.raises(
        ConfigError, match=r"^fuzz\.yaml: Network\.tau_m: expected a number > 1, found 1000"
    ):
        parse_config(raw, SOURCE)


def test_newline_in_a_key_keeps_the_message_one_line() -> None:
    # A YAML key may hold a newline; it was printed raw, splitting the message over two lines.
    raw = _digits_mlp()
    raw["Layers"]["bad\nname"] = None
    with pytest.raises(ConfigError) as info:
        parse_config(raw, SOURCE)
    assert (
        str(info.value)
        == r"fuzz.yaml: Layers.bad\nname: expected a mapping of layer keys, found None"
    ), str(info.value)


def test_non_mapping_top_level_names_the_top_level() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(None, SOURCE)
    assert str(info.value) == "fuzz.yaml: (top level): expected a mapping of keys, found None", str(
        info.value
    )


def test_long_found_value_is_cut_short() -> None:
    raw = _digits_mlp()
    raw["Network"]["lr"] = list(range(1000))
    with pytest.raises(ConfigError) as info:
        parse_config(raw, SOURCE)
    message = str(info.value)
    assert message.endswith("...") and len(message) < 200, (
        f"expected a short message ending in '...', found {message!r}"
    )


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    # Was UnicodeDecodeError from Path.read_text.
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"Network:\n  lr: \x80\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: not UTF-8 text (byte 0x80 at offset 15)", str(info.value)
