import collections
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis profiles. "ci" (the default) is deterministic and bounded: derandomized, no example
# database, no deadline (HDF5 I/O times vary), and each fuzz test sets its own small max_examples.
# "deep" multiplies the example counts for a local fuzzing session:
#   TSSLBP_HYPOTHESIS_PROFILE=deep pytest tests/export/test_netx_fuzz.py tests/test_config_fuzz.py
settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=False,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "deep",
    derandomize=False,
    database=None,
    deadline=None,
    max_examples=5000,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("TSSLBP_HYPOTHESIS_PROFILE", "ci"))

_FUZZ_COUNTS = pytest.StashKey[collections.Counter]()

# tests/data holds generator scripts (run by hand; make_nir_snntorch.py needs snntorch and nirtorch,
# which only the `nirgen` extra installs), not test modules: pytest must not import them.
collect_ignore_glob = ["data/*.py"]


@pytest.fixture
def rng():
    """A seeded numpy generator, fresh for every test."""
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def fuzz_counts(request: pytest.FixtureRequest) -> collections.Counter:
    """Examples run per fuzz target ("netx", "config", and the byte-mutated readers), reported in the terminal summary."""
    return request.config.stash.setdefault(_FUZZ_COUNTS, collections.Counter())


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    counts = config.stash.get(_FUZZ_COUNTS, None)
    if counts:
        byte_level = ("checkpoint", "cifar10", "idx", "nmnist")  # test_malformed_corpus.py
        hyp = ", ".join(f"{counts[k]} {k}" for k in sorted(counts) if k not in byte_level)
        total = sum(counts[k] for k in counts if k not in byte_level)
        mutated = ", ".join(f"{counts[k]} {k}" for k in byte_level if counts[k])
        terminalreporter.write_line(
            f"hypothesis: {total} examples ({hyp})"
            + (f"; seeded byte mutations: {mutated}" if mutated else "")
        )
