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
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    Event,
    ScalarEvent,
)

#: A site plan is a few hundred lines; a megabyte is already a mistake (or an attack).
MAX_PLAN_BYTES = 1_000_000
#: The deepest real plan nests five levels (sip > operator > match > item); twenty is generous.
MAX_DEPTH = 20
#: Values once every alias is expanded: a few thousand in a real plan, so an alias bomb (a few
#: hundred bytes that expand to billions of nodes) is refused long before it costs memory.
MAX_NODES = 200_000

PathKey = tuple[str | int, ...]


@dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in a plan file, phrased for the admin who has to fix it."""

    file: str
    line: int
    column: int
    message: str

    def __post_init__(self) -> None:
        # A message quotes what the admin wrote; a line break or a control character in it (a
        # hostile key) must not forge extra lines in the terminal or the engine's log.
        if not self.message.isprintable():
            cleaned = "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii")
                              for ch in self.message)
            object.__setattr__(self, "message", cleaned)

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
        if path.stat().st_size > MAX_PLAN_BYTES:
            raise PlanError([Diagnostic(name, 1, 1, f"the plan file is larger than {MAX_PLAN_BYTES:,} bytes; "
                                                    "a site plan is a few hundred lines")])
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PlanError([Diagnostic(name, 1, 1, f"cannot read the plan file: {exc.strerror}")]) from exc
    except UnicodeDecodeError as exc:
        raise PlanError([Diagnostic(name, 1, 1, "the plan file is not valid UTF-8 text")]) from exc
    return parse_source(text, name)


def _check_bounds(yaml: YAML, text: str, name: str) -> None:
    """Walk the YAML events once (no tree, no recursion) and refuse a plan that is too deep or whose
    aliases expand too far, naming the line where the limit was crossed."""
    frames: list[list[Any]] = [[None, 0]]  # [anchor, values inside so far]
    sizes: dict[str, int] = {}
    total = 0

    def refuse(event: Event, message: str) -> PlanError:
        mark = event.start_mark
        return PlanError([Diagnostic(name, mark.line + 1 if mark else 1, mark.column + 1 if mark else 1, message)])

    for event in yaml.parse(text):
        if isinstance(event, CollectionStartEvent):
            if len(frames) > MAX_DEPTH:
                raise refuse(event, f"the plan nests deeper than {MAX_DEPTH} levels; a site plan needs about five")
            frames.append([event.anchor, 0])
            continue
        if isinstance(event, CollectionEndEvent):
            anchor, count = frames.pop()
            if anchor:
                sizes[anchor] = count + 1
            frames[-1][1] += count + 1
            continue
        if isinstance(event, AliasEvent):
            added = sizes.get(str(event.anchor), 1)
        elif isinstance(event, ScalarEvent):
            added = 1
            if event.anchor:
                sizes[event.anchor] = 1
        else:
            continue
        frames[-1][1] += added
        total += added
        if total > MAX_NODES:
            raise refuse(event, f"the plan's aliases expand to more than {MAX_NODES:,} values (an alias bomb?); "
                                "write the values out or use fewer nested aliases")


def parse_source(text: str, name: str) -> PositionedSource:
    """Parse YAML text; duplicate keys are refused because the second one silently wins otherwise.

    Size, depth and alias expansion are bounded before anything is built, so a hostile plan is
    refused in milliseconds instead of filling memory."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_PLAN_BYTES:
        raise PlanError([Diagnostic(name, 1, 1, f"the plan file is larger than {MAX_PLAN_BYTES:,} bytes; "
                                                "a site plan is a few hundred lines")])
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        _check_bounds(yaml, text, name)
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
