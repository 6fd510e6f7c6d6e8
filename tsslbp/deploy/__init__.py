"""Deployment on Lava: build, run and probe fixed-point networks on lava-nc's CPU simulator.

This is the only package that imports ``lava``. Importing it first makes lava-nc 0.10.0
importable on Python 3.11 (see :mod:`tsslbp.deploy.lava_compat`), so that::

    import tsslbp.deploy
    import lava.magma.core.run_configs

works on every supported Python. Importing this package does not import lava itself: the names
that need lava (:func:`~tsslbp.deploy.runner.run_lava` and its result and error types) are loaded
from :mod:`tsslbp.deploy.runner` on first access, so ``deploy_target_check`` and
``lava_available`` work (and report) where lava is not installed.
"""

from __future__ import annotations

import importlib
from typing import Any

from tsslbp.deploy.lava_compat import ensure_lava_importable, lava_available
from tsslbp.deploy.supervise import LavaRunError, LavaTimeoutError
from tsslbp.deploy.target import DeployTarget, DeployTargetError, deploy_target_check

__all__ = [
    "DeployTarget",
    "DeployTargetError",
    "LavaResult",
    "LavaRunError",
    "LavaSpecError",
    "LavaTimeoutError",
    "LavaTiming",
    "deploy_target_check",
    "ensure_lava_importable",
    "lava_available",
    "run_lava",
]

# Names served lazily from tsslbp.deploy.runner, which imports lava.
_RUNNER_NAMES = frozenset({"LavaResult", "LavaSpecError", "LavaTiming", "run_lava"})

ensure_lava_importable()


def __getattr__(name: str) -> Any:
    """Import :mod:`tsslbp.deploy.runner` (and so lava) only when one of its names is used."""
    if name in _RUNNER_NAMES:
        return getattr(importlib.import_module("tsslbp.deploy.runner"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
