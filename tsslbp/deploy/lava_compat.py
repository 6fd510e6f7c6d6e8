"""Make lava-nc 0.10.0 importable on Python 3.11 without touching site-packages.

lava-nc 0.10.0 declares ``Requires-Python <3.11`` and, as released, fails to import on 3.11:
``lava/magma/compiler/var_model.py`` declares dataclass fields such as::

    x: ByteEncoder = ByteEncoder()

where ``ByteEncoder`` is itself a plain ``@dataclass``. Its instances are unhashable
(``eq=True`` without ``frozen`` sets ``__hash__`` to ``None``), and since Python 3.11
:mod:`dataclasses` rejects every unhashable default with ``ValueError: mutable default ...``.

:func:`ensure_lava_importable` installs a :data:`sys.meta_path` finder that intercepts that one
module, rewrites each such default to ``field(default_factory=ByteEncoder)`` in the source text
(keeping line numbers, so tracebacks still point at the file on disk), and compiles the result.
Nothing is written to disk: the rewritten code is never cached as bytecode.

Lava's CPU runtime runs every Lava process in its own OS process. It selects the ``fork`` start
method when its message infrastructure is imported (on every platform but Windows), so the child
processes inherit the already patched module and this finder; nothing is re-imported with
``spawn``.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Sequence
from types import CodeType, ModuleType

__all__ = [
    "PATCHED_MODULE",
    "LavaCompatError",
    "ensure_lava_importable",
    "lava_available",
    "patch_mutable_dataclass_defaults",
    "patch_start_method",
]

_log = logging.getLogger(__name__)

#: The lava-nc module whose dataclass defaults are rewritten.
PATCHED_MODULE = "lava.magma.compiler.var_model"
#: The lava-nc module that calls ``multiprocessing.set_start_method('fork')`` at import.
START_METHOD_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"

# lava calls set_start_method('fork') unconditionally, which raises "context has already been set"
# in any process where something already fixed the start method (tqdm's multiprocessing lock does,
# to the platform default). When the method is already 'fork' there is nothing to set.
_START_METHOD_CALL = "mp.set_start_method('fork')"
_GUARDED_START_METHOD_CALL = (
    "mp.get_start_method(allow_none=True) == 'fork' or mp.set_start_method('fork')"
)

# Python 3.11 is the first version that rejects unhashable dataclass defaults.
_FIRST_STRICT_PYTHON = (3, 11)

# Modules whose import proves that the parts of lava-nc used by tsslbp.deploy load: the compiler
# pulls in var_model, the runtime sets up the multiprocessing message infrastructure.
_LAVA_PROBE_MODULES = ("lava.magma.compiler.compiler", "lava.magma.runtime.runtime")


class LavaCompatError(ImportError):
    """The Python 3.11 rewrite of lava's source did not apply to the installed lava-nc."""


def _dataclass_decorator(node: ast.ClassDef) -> ast.expr | None:
    """Return the class's ``dataclass`` decorator (bare, dotted or called), or None."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        name = target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", None)
        if name == "dataclass":
            return decorator
    return None


def _makes_unhashable(decorator: ast.expr) -> bool:
    """Tell whether a ``dataclass`` decorator leaves instances unhashable (``__hash__ = None``).

    Args:
        decorator: A decorator found by :func:`_dataclass_decorator`.

    Returns:
        True for the bare decorator and for calls that keep the defaults ``eq=True``,
        ``frozen=False`` and ``unsafe_hash=False``: exactly the classes whose instances Python 3.11
        rejects as field defaults.
    """
    if not isinstance(decorator, ast.Call):
        return True
    flags = {
        kw.arg: kw.value.value for kw in decorator.keywords if isinstance(kw.value, ast.Constant)
    }
    return bool(
        flags.get("eq", True)
        and not flags.get("frozen", False)
        and not flags.get("unsafe_hash", False)
    )


def _imports_dataclasses_field(tree: ast.Module) -> bool:
    """Tell whether the module binds ``field`` to :func:`dataclasses.field` at top level."""
    return any(
        isinstance(node, ast.ImportFrom)
        and node.module == "dataclasses"
        and any(alias.name == "field" and alias.asname is None for alias in node.names)
        for node in tree.body
    )


def _field_import_anchor(tree: ast.Module) -> ast.stmt | None:
    """Pick the top-level statement after which ``from dataclasses import field`` can go.

    Returns:
        The first ``from dataclasses import ...`` statement, else the last ``from __future__``
        import, else the module docstring, else None (insert at the very start).
    """
    body = tree.body
    for node in body:
        if isinstance(node, ast.ImportFrom) and node.module == "dataclasses":
            return node
    futures = [n for n in body if isinstance(n, ast.ImportFrom) and n.module == "__future__"]
    if futures:
        return futures[-1]
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return body[0]
    return None


def _splice(lines: list[bytes], lineno: int, start: int, end: int, text: str) -> None:
    """Replace bytes ``start:end`` of line ``lineno`` (1-based; ast offsets are UTF-8 bytes)."""
    line = lines[lineno - 1]
    lines[lineno - 1] = line[:start] + text.encode() + line[end:]


def patch_mutable_dataclass_defaults(source: str) -> tuple[str, int]:
    """Rewrite ``name: T = T()`` dataclass defaults to ``name: T = field(default_factory=T)``.

    Only defaults that Python 3.11 rejects are rewritten: the default must be a call without
    arguments of a class that the same source defines as an unhashable dataclass. When a rewrite
    happens and the module does not already ``from dataclasses import field``, that import is added
    on an existing line (after ``;``), so every line keeps its number.

    Args:
        source: Python source text of one module.

    Returns:
        The rewritten source and the number of defaults rewritten (0 means unchanged source).

    Raises:
        SyntaxError: If ``source`` does not parse.

    Example:
        >>> src = (
        ...     "from dataclasses import dataclass\\n"
        ...     "@dataclass\\nclass B:\\n    n: int = 0\\n"
        ...     "@dataclass\\nclass C:\\n    b: B = B()\\n"
        ... )
        >>> new, n_rewritten = patch_mutable_dataclass_defaults(src)
        >>> n_rewritten
        1
        >>> print(new)
        from dataclasses import dataclass; from dataclasses import field
        @dataclass
        class B:
            n: int = 0
        @dataclass
        class C:
            b: B = field(default_factory=B)
        <BLANKLINE>
    """
    tree = ast.parse(source)
    dataclasses_ = {
        node: decorator
        for node in ast.walk(tree)
        if isinstance(node, ast.ClassDef) and (decorator := _dataclass_decorator(node)) is not None
    }
    unhashable = {node.name for node, deco in dataclasses_.items() if _makes_unhashable(deco)}
    defaults = [
        stmt.value
        for node in dataclasses_
        for stmt in node.body
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(stmt.value, ast.Call)
        and isinstance(stmt.value.func, ast.Name)
        and stmt.value.func.id in unhashable
        and not stmt.value.args
        and not stmt.value.keywords
        and stmt.value.lineno == stmt.value.end_lineno
    ]
    if not defaults:
        return source, 0

    lines = source.encode().splitlines(keepends=True)
    # Splice right to left, bottom to top, so earlier offsets stay valid.
    for call in sorted(defaults, key=lambda c: (c.lineno, c.col_offset), reverse=True):
        _splice(
            lines,
            call.lineno,
            call.col_offset,
            call.end_col_offset,
            f"field(default_factory={call.func.id})",
        )
    if not _imports_dataclasses_field(tree):
        anchor = _field_import_anchor(tree)
        if anchor is None:
            _splice(lines, 1, 0, 0, "from dataclasses import field; ")
        else:
            at = anchor.end_col_offset
            _splice(lines, anchor.end_lineno, at, at, "; from dataclasses import field")
    return b"".join(lines).decode(), len(defaults)


def patch_start_method(source: str) -> tuple[str, int]:
    """Make lava's import-time ``mp.set_start_method('fork')`` a no-op when fork is already set.

    Returns:
        (new source, number of calls rewritten).

    >>> patch_start_method("mp.set_start_method('fork')")[1]
    1
    """
    count = source.count(_START_METHOD_CALL)
    return source.replace(_START_METHOD_CALL, _GUARDED_START_METHOD_CALL), count


# module -> (rewrite, the first Python version that needs it)
_REWRITES = {
    PATCHED_MODULE: (patch_mutable_dataclass_defaults, _FIRST_STRICT_PYTHON),
    START_METHOD_MODULE: (patch_start_method, (3, 0)),
}


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    """Source loader that compiles the rewritten source and never caches bytecode."""

    def __init__(self, fullname: str, path: str) -> None:
        super().__init__(fullname, path)
        self.n_rewritten = 0

    def get_code(self, fullname: str) -> CodeType:
        """Read, rewrite and compile the module source (bypasses the ``__pycache__`` entry)."""
        path = self.get_filename(fullname)
        source = importlib.util.decode_source(self.get_data(path))
        rewrite, _ = _REWRITES[fullname]
        patched, self.n_rewritten = rewrite(source)
        _log.debug("%s: rewrote %d mutable dataclass defaults", path, self.n_rewritten)
        return compile(patched, path, "exec", dont_inherit=True)

    def exec_module(self, module: ModuleType) -> None:
        """Run the rewritten module; name the file if 3.11 still rejects a default in it.

        Raises:
            LavaCompatError: If executing the module still fails on a mutable dataclass default,
                i.e. the installed lava-nc has a form the rewrite does not recognise.
        """
        try:
            super().exec_module(module)
        except ValueError as exc:
            if "mutable default" not in str(exc):
                raise
            raise LavaCompatError(
                f"{self.path}: Python {sys.version_info.major}.{sys.version_info.minor} rejects a "
                f"mutable dataclass default that tsslbp.deploy.lava_compat did not rewrite "
                f"({self.n_rewritten} rewritten; expected `name: T = T()` with T a dataclass "
                f"defined in the file). Is this lava-nc 0.10.0? Error: {exc}"
            ) from exc


class _VarModelFinder(importlib.abc.MetaPathFinder):
    """Meta path finder that hands :data:`PATCHED_MODULE` to :class:`_PatchingLoader`."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """Locate lava's ``var_model`` on the normal path and attach the patching loader.

        Returns:
            A spec for :data:`PATCHED_MODULE` when it exists as a source file, else None (so the
            remaining finders handle every other module).
        """
        if fullname not in _REWRITES or sys.version_info < _REWRITES[fullname][1]:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        return importlib.util.spec_from_file_location(
            fullname, spec.origin, loader=_PatchingLoader(fullname, spec.origin)
        )


def ensure_lava_importable() -> None:
    """Install the import hook (once; later calls do nothing).

    It rewrites var_model's dataclass defaults on Python >= 3.11 only (3.10 imports it as
    released), and on every version guards lava's import-time ``set_start_method('fork')`` so that
    lava imports after other code has fixed the start method to fork. Where lava-nc is not
    installed the hook never triggers.

    Example:
        >>> ensure_lava_importable()
        >>> ensure_lava_importable()  # idempotent
        >>> sum(isinstance(f, _VarModelFinder) for f in sys.meta_path) <= 1
        True
    """
    if any(isinstance(finder, _VarModelFinder) for finder in sys.meta_path):
        return
    if all(name in sys.modules for name in _REWRITES):
        # Already imported, so they already work (or were patched by someone else).
        return
    # Ahead of PathFinder, which would otherwise load the unpatched file.
    sys.meta_path.insert(0, _VarModelFinder())


def lava_available() -> bool:
    """Tell whether lava-nc can be imported (after :func:`ensure_lava_importable`).

    Never raises: any failure to import is logged at debug level and reported as False.
    Importing lava's runtime calls ``multiprocessing.set_start_method("fork")``, which fails (so
    this returns False) in a process whose start method is already fixed, e.g. one that has
    created a ``multiprocessing.Queue``; import lava before such code runs.

    Returns:
        True if lava-nc's compiler and runtime modules import.
    """
    ensure_lava_importable()
    try:
        for name in _LAVA_PROBE_MODULES:
            importlib.import_module(name)
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available"
        _log.debug("lava-nc is not importable: %s: %s", type(exc).__name__, exc)
        return False
    return True
