"""The training configs shipped inside the package (``tsslbp/configs/*.yaml``).

A config is given on the command line either as a path to a YAML file or by the name of a shipped
one (``tsslbp train fmnist_cnn``); :func:`find_config` turns either into a path and
:func:`shipped_configs` lists the names (``tsslbp configs``). The files are package data, so they
are there in an installed wheel as in a source checkout.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["CONFIG_DIR", "ConfigNotFoundError", "shipped_configs", "find_config"]

#: Where the shipped YAML files live (beside this module, in a checkout or an installed package).
CONFIG_DIR = Path(__file__).resolve().parent


class ConfigNotFoundError(ValueError):
    """Neither a config file nor the name of a shipped config."""


def shipped_configs() -> dict[str, Path]:
    """``{name: path}`` of the shipped configs, sorted by name (the name is the file's stem)."""
    return {p.stem: p for p in sorted(CONFIG_DIR.glob("*.yaml"))}


def find_config(name_or_path: str | Path) -> Path:
    """The YAML file meant by ``name_or_path``: an existing file as given, else a shipped config
    named ``NAME`` or ``NAME.yaml``.

    Raises:
        ConfigNotFoundError: neither a file nor a shipped config's name; the message lists the names.
    """
    path = Path(name_or_path)
    if path.is_file() or (path.exists() and not path.is_dir()):
        # A FIFO or device is returned as given: the reader refuses it (one line, exit 1).
        return path
    text = str(name_or_path)
    shipped = shipped_configs()
    name = text[: -len(".yaml")] if text.endswith(".yaml") else text
    if name in shipped:
        return shipped[name]
    # A name like configs/digits_mlp.yaml (the layout of a source checkout) means the shipped file.
    if path.parent.name == "configs" and path.stem in shipped and path.suffix in ("", ".yaml"):
        return shipped[path.stem]
    if path.is_dir():
        raise ConfigNotFoundError(f"{text}: is a directory, not a config file")
    raise ConfigNotFoundError(
        f"{text}: no such file, and not the name of a shipped config "
        f"({', '.join(shipped)}; `tsslbp configs` lists them)"
    )
