"""Deployment on Lava: build, run and probe fixed-point networks on lava-nc's CPU simulator.

This is the only package that imports ``lava``. Importing it first makes lava-nc 0.10.0
importable on Python 3.11 (see :mod:`tsslbp.deploy.lava_compat`), so that::

    import tsslbp.deploy
    import lava.magma.core.run_configs

works on every supported Python. Importing this package does not import lava itself.
"""

from tsslbp.deploy.lava_compat import ensure_lava_importable, lava_available

__all__ = ["ensure_lava_importable", "lava_available"]

ensure_lava_importable()
