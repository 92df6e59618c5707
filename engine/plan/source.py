"""Load a plan file as plain data while remembering where every value was written.

Telecom admins fix errors by line and column, so every diagnostic must point into the file they
edited; ruamel.yaml keeps those positions on its round-trip nodes, which a plain ``yaml.safe_load``
would throw away.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in a plan file, phrased for the admin who has to fix it."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class PlanError(Exception):
    """Raised with every problem found, so an admin fixes them all in one pass."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        # By position; equal positions keep the order they were found in (stable sort).
        self.diagnostics = sorted(diagnostics, key=lambda d: (d.file, d.line, d.column))
        super().__init__("\n".join(str(d) for d in self.diagnostics))


@dataclass
class PositionedSource:
    """Plain Python data from a YAML file, plus a lookup from data paths to (line, column)."""

    file: str
    text: str
    data: Any
    _root: Any = field(repr=False)

    def position(self, path: PathKey, *, key: bool = False) -> tuple[int, int]:
        """Best (1-based) position for ``path``: the value itself, else its closest existing parent.

        ``key=True`` points at the mapping key rather than its value, which reads better for
        "unknown field" and "duplicate" messages.
        """
        node = self._root
        best = (1, 1)
        for depth, part in enumerate(path):
            last = depth == len(path) - 1
            if isinstance(node, CommentedMap) and part in node:
                line, col = node.lc.key(part) if (key and last) else node.lc.value(part)
                # Scalars carry no lc of their own; a key position is the right fallback for them.
                if line is None:
                    line, col = node.lc.key(part)
                best = (line + 1, col + 1)
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, col = node.lc.item(part)
                best = (line + 1, col + 1)
                node = node[part]
            else:
                break
        return best

    def diag(self, path: PathKey, message: str, *, key: bool = False) -> Diagnostic:
        line, col = self.position(path, key=key)
        return Diagnostic(self.file, line, col, message)


def _plain(node: Any) -> Any:
    """Strip ruamel's wrapper types so validators see ordinary dicts, lists and scalars."""
    if isinstance(node, dict):
        return {(str(k) if not isinstance(k, str) else k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def load_source(path: Path | str, *, display_name: str | None = None) -> PositionedSource:
    """Read a YAML plan file; a YAML syntax error becomes a positioned :class:`PlanError`."""
    path = Path(path)
    name = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError([Diagnostic(name, 1, 1, f"cannot read the plan file: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise PlanError([Diagnostic(name, 1, 1, "the plan file is not valid UTF-8 text")]) from exc
    return parse_source(text, name)


def parse_source(text: str, name: str) -> PositionedSource:
    """Parse YAML text; duplicate keys are refused because the second one silently wins otherwise."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        root = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or exc.context or "YAML syntax error"
        if "duplicate key" in str(exc):
            reason = "this key is written twice in the same section; keep only one"
        return_error = Diagnostic(name, line, col, f"YAML syntax error: {reason}")
        raise PlanError([return_error]) from exc
    except YAMLError as exc:
        raise PlanError([Diagnostic(name, 1, 1, f"YAML syntax error: {exc}")]) from exc
    if root is None:
        raise PlanError([Diagnostic(name, 1, 1, "the plan file is empty")])
    if not isinstance(root, CommentedMap):
        raise PlanError([Diagnostic(name, 1, 1, "a plan file must be a mapping of sections (site, queues, lines ...)")])
    return PositionedSource(file=name, text=text, data=_plain(root), _root=root)
