"""Deployment targets and the check that a target can run here (imports no lava at module level).

``sim`` runs on lava-nc's CPU simulator with bit-accurate fixed-point process models
(``Loihi2SimCfg(select_tag="fixed_pt")``): it needs only lava-nc. ``loihi2`` runs on Loihi 2 chips
(``Loihi2HwCfg``): the run configuration ships with lava-nc, but the compiler and process models
behind it come from Intel's lava-loihi extension, which is only distributed to Intel Neuromorphic
Research Community members and is not installed here.
"""

from __future__ import annotations

import importlib
import logging
from enum import Enum

from tsslbp.deploy.lava_compat import lava_available

__all__ = [
    "LAVA_LOIHI_MODULES",
    "DeployTarget",
    "DeployTargetError",
    "deploy_target_check",
]

_log = logging.getLogger(__name__)

#: Modules that only lava-loihi provides: the Loihi 2 (NeuroCore) subcompiler that compiles for
#: ``Loihi2HwCfg``, and the NeuroCore process model base class its process models derive from.
LAVA_LOIHI_MODULES = (
    "lava.magma.compiler.subcompilers.nc.ncproc_compiler",
    "lava.magma.core.model.nc.model",
)


class DeployTarget(str, Enum):
    """Where ``tsslbp deploy`` runs a network."""

    #: lava-nc's CPU simulator, bit-accurate fixed-point models (``Loihi2SimCfg``, ``fixed_pt``).
    SIM = "sim"
    #: Loihi 2 hardware (``Loihi2HwCfg``); needs lava-loihi.
    LOIHI2 = "loihi2"


class DeployTargetError(RuntimeError):
    """The requested target cannot run on this machine; the message is one line saying why."""


def _missing_module(names: tuple[str, ...]) -> str | None:
    """Return the first of ``names`` that does not import, or None if all import."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            _log.debug("%s does not import: %s", name, exc)
            return name
    return None


def deploy_target_check(target: str) -> DeployTarget:
    """Check that ``target`` can run here, before any network is built.

    Args:
        target: ``"sim"`` or ``"loihi2"``.

    Returns:
        The target as a :class:`DeployTarget`.

    Raises:
        ValueError: If ``target`` is not one of the allowed names.
        DeployTargetError: If lava-nc is not importable (either target), or, for ``loihi2``, if
            lava-loihi is not installed. The message is a single line naming what is missing.

    Example:
        >>> deploy_target_check("mars")
        Traceback (most recent call last):
        ...
        ValueError: unknown deploy target 'mars'; allowed: sim, loihi2
    """
    try:
        resolved = DeployTarget(target)
    except ValueError:
        allowed = ", ".join(t.value for t in DeployTarget)
        raise ValueError(f"unknown deploy target {target!r}; allowed: {allowed}") from None
    if not lava_available():
        raise DeployTargetError(
            f"--target {resolved.value} needs lava-nc 0.10 (`import lava` fails here); install it "
            "with `make setup` (pip install --no-deps --ignore-requires-python lava-nc==0.10.0)"
        )
    if resolved is DeployTarget.LOIHI2:
        missing = _missing_module(LAVA_LOIHI_MODULES)
        if missing is not None:
            raise DeployTargetError(
                f"--target loihi2 needs Intel's lava-loihi extension (module {missing} behind "
                "Loihi2HwCfg is not installed; lava-loihi is only distributed to INRC members); "
                "--target sim runs the same network bit-accurately on Lava's CPU simulator "
                "(Loihi2SimCfg, select_tag='fixed_pt') here"
            )
    return resolved
