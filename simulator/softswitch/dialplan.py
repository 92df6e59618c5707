"""Load and evaluate the subset of ``extensions.conf`` the rendered SAS dialplan uses.

Anything outside the subset (an application or a function this emulator does not implement) is a
loud error at load time with its file and line: the renderer and the emulator must not drift
apart silently. Variable substitution, ``$[...]`` expressions and pattern matching follow
Asterisk's rules for the parts used.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field

#: Applications the emulator executes (implemented in :mod:`simulator.softswitch.core`).
APPLICATIONS = frozenset({
    "Answer", "NoOp", "Set", "Goto", "GotoIf", "ExecIf", "Queue", "Dial", "Wait", "MusicOnHold",
    "Playback", "Hangup", "Return", "Verbose", "Ringing", "Progress", "TryExec", "MixMonitor",
})
#: Dialplan functions the emulator evaluates.
FUNCTIONS = frozenset({
    "CALLERID", "DB", "PJSIP_HEADER", "CUT", "RAND", "IF", "DIALPLAN_EXISTS", "LEN", "DB_EXISTS", "FILTER",
    "STRFTIME",
})


class DialplanError(Exception):
    """A dialplan the emulator refuses to run (unsupported application/function, syntax)."""


@dataclass
class Step:
    app: str
    data: str
    label: str | None
    line: int


@dataclass
class Extension:
    name: str
    steps: dict[int, Step] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)


@dataclass
class Context:
    name: str
    extensions: dict[str, Extension] = field(default_factory=dict)
    patterns: list[tuple[re.Pattern[str], Extension]] = field(default_factory=list)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Asterisk pattern (``_X.``, ``_NXX``, ``_[1-5]!``) as a regex."""
    out = []
    i = 0
    body = pattern[1:]
    while i < len(body):
        ch = body[i]
        if ch == "X":
            out.append("[0-9]")
        elif ch == "Z":
            out.append("[1-9]")
        elif ch == "N":
            out.append("[2-9]")
        elif ch == ".":
            out.append(".+")
        elif ch == "!":
            out.append(".*")
        elif ch == "[":
            end = body.index("]", i)
            out.append("[" + body[i + 1 : end] + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    return re.compile("^" + "".join(out) + "$")


def split_args(data: str, sep: str = ",") -> list[str]:
    """Split application arguments on ``sep`` outside parentheses, brackets and quotes."""
    args, depth, quote, current = [], 0, False, []
    for ch in data:
        if ch == '"':
            quote = not quote
        elif not quote and ch in "([{":
            depth += 1
        elif not quote and ch in ")]}":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0 and not quote:
            args.append("".join(current))
            current = []
        else:
            current.append(ch)
    args.append("".join(current))
    return args


class Dialplan:
    def __init__(self) -> None:
        self.contexts: dict[str, Context] = {}
        self.globals: dict[str, str] = {}

    @classmethod
    def parse(cls, text: str, filename: str = "extensions.conf") -> Dialplan:
        plan = cls()
        errors: list[str] = []
        section = None
        current: Extension | None = None
        last_priority = 0
        for number, raw in enumerate(text.splitlines(), 1):
            line = raw.split(";", 1)[0].rstrip() if not raw.lstrip().startswith(";") else ""
            stripped = line.strip()
            if not stripped:
                continue
            if m := re.fullmatch(r"\[([^\]]+)\](\([^)]*\))?", stripped):
                section = m.group(1)
                if section not in ("general", "globals"):
                    plan.contexts.setdefault(section, Context(section))
                continue
            if section == "general":
                continue
            if section == "globals":
                key, _, value = stripped.partition("=")
                plan.globals[key.strip()] = value.strip()
                continue
            if section is None:
                errors.append(f"{filename}:{number}: line outside any context")
                continue
            m = re.fullmatch(r"(exten|same)\s*=>\s*(.*)", stripped)
            if not m:
                if stripped.startswith("include"):
                    errors.append(f"{filename}:{number}: 'include' is not supported by the emulator")
                else:
                    errors.append(f"{filename}:{number}: cannot parse '{stripped}'")
                continue
            kind, rest = m.groups()
            if kind == "exten":
                name, _, rest = rest.partition(",")
                name = name.strip()
                context = plan.contexts[section]
                current = context.extensions.get(name) or next(
                    (e for p, e in context.patterns if e.name == name), None
                )
                if current is None:
                    current = Extension(name)
                    if name.startswith("_"):
                        context.patterns.append((_pattern_regex(name), current))
                    else:
                        context.extensions[name] = current
                last_priority = 0
            elif current is None:
                errors.append(f"{filename}:{number}: 'same =>' before any 'exten =>'")
                continue
            prio_text, _, app_part = rest.partition(",")
            prio_text = prio_text.strip()
            label = None
            if lm := re.fullmatch(r"([^()]+)\(([^)]+)\)", prio_text):
                prio_text, label = lm.group(1), lm.group(2)
            if prio_text == "n":
                priority = last_priority + 1
            elif prio_text.isdigit():
                priority = int(prio_text)
            else:
                errors.append(f"{filename}:{number}: bad priority '{prio_text}'")
                continue
            app_part = app_part.strip()
            am = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)(?:\((.*)\))?", app_part, flags=re.S)
            if not am:
                errors.append(f"{filename}:{number}: cannot parse application '{app_part}'")
                continue
            app, data = am.group(1), am.group(2) or ""
            if app not in APPLICATIONS:
                errors.append(f"{filename}:{number}: application {app}() is not supported by the emulator")
            for func in re.findall(r"\$\{([A-Z_][A-Z0-9_]*)\(", data):
                if func not in FUNCTIONS:
                    errors.append(f"{filename}:{number}: function {func}() is not supported by the emulator")
            for func in re.findall(r"([A-Z_][A-Z0-9_]*)\(", data.split("=", 1)[0]) if app == "Set" else []:
                if func not in FUNCTIONS:
                    errors.append(f"{filename}:{number}: function {func}() is not supported by the emulator")
            current.steps[priority] = Step(app, data, label, number)
            if label:
                current.labels[label] = priority
            last_priority = priority
        if errors:
            raise DialplanError("\n".join(errors))
        return plan

    def find(self, context: str, exten: str) -> Extension | None:
        ctx = self.contexts.get(context)
        if ctx is None:
            return None
        if exten in ctx.extensions:
            return ctx.extensions[exten]
        if exten in ("h", "i", "s", "t"):
            return None
        matches = [e for regex, e in ctx.patterns if regex.match(exten)]
        if not matches:
            return None
        # Asterisk prefers the most specific pattern: fewer wildcard characters.
        return min(matches, key=lambda e: (e.name.count(".") + e.name.count("!"), -len(e.name)))

    def exists(self, context: str, exten: str, priority: str | int = 1) -> bool:
        ext = self.find(context, exten)
        if ext is None:
            return False
        if isinstance(priority, int) or str(priority).isdigit():
            return int(priority) in ext.steps
        return priority in ext.labels


# --- variable substitution -------------------------------------------------------------------

def substitute(text: str, lookup: Callable[[str], str]) -> str:
    """Expand ``${...}`` and ``$[...]`` the way pbx_substitute_variables does (innermost first)."""
    out = []
    i = 0
    while i < len(text):
        if text.startswith("${", i) or text.startswith("$[", i):
            opener, closer = text[i + 1], "}" if text[i + 1] == "{" else "]"
            depth, j = 1, i + 2
            while j < len(text) and depth:
                if text[j] == opener:
                    depth += 1
                elif text[j] == closer:
                    depth -= 1
                j += 1
            inner = substitute(text[i + 2 : j - 1], lookup)
            out.append(lookup(inner) if opener == "{" else evaluate(inner))
            i = j
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


# --- $[ ] expressions --------------------------------------------------------------------------

_TOKEN = re.compile(r'\s*("(?:[^"\\]|\\.)*"|\|\||&&|!=|<=|>=|==|=~|[|&=<>+\-*/%()!?:]|[^\s|&=<>+\-*/%()!?:"]+)')


def _tokens(text: str) -> list[str]:
    pos, out = 0, []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            break
        out.append(m.group(1))
        pos = m.end()
    return out


def _num(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)


class _Expr:
    """Precedence climbing over Asterisk's expression operators (ast_expr2 subset)."""

    def __init__(self, tokens: list[str]) -> None:
        self.t, self.i = tokens, 0

    def peek(self) -> str | None:
        return self.t[self.i] if self.i < len(self.t) else None

    def take(self) -> str:
        tok = self.t[self.i]
        self.i += 1
        return tok

    def parse(self) -> str:
        return self.ternary()

    def ternary(self) -> str:
        cond = self.or_()
        if self.peek() == "?":
            self.take()
            yes = self.or_()
            no = ""
            if self.peek() == ":":
                self.take()
                no = self.or_()
            return yes if cond not in ("", "0") else no
        return cond

    def or_(self) -> str:
        left = self.and_()
        while self.peek() in ("|", "||"):
            self.take()
            right = self.and_()
            left = left if left not in ("", "0") else right
        return left

    def and_(self) -> str:
        left = self.cmp()
        while self.peek() in ("&", "&&"):
            self.take()
            right = self.cmp()
            left = left if left not in ("", "0") and right not in ("", "0") else "0"
        return left

    def cmp(self) -> str:
        left = self.add()
        while self.peek() in ("=", "==", "!=", "<", ">", "<=", ">="):
            op = self.take()
            right = self.add()
            a, b = _num(left), _num(right)
            x, y = (a, b) if a is not None and b is not None else (left, right)
            result = {
                "=": x == y, "==": x == y, "!=": x != y,
                "<": x < y, ">": x > y, "<=": x <= y, ">=": x >= y,  # type: ignore[operator]
            }[op]
            left = "1" if result else "0"
        return left

    def add(self) -> str:
        left = self.mul()
        while self.peek() in ("+", "-"):
            op = self.take()
            right = self.mul()
            a, b = _num(left) or 0.0, _num(right) or 0.0
            left = _fmt(a + b if op == "+" else a - b)
        return left

    def mul(self) -> str:
        left = self.unary()
        while self.peek() in ("*", "/", "%"):
            op = self.take()
            right = self.unary()
            a, b = _num(left) or 0.0, _num(right) or 0.0
            if op == "*":
                left = _fmt(a * b)
            elif b == 0:
                left = "0"
            else:
                left = _fmt(int(a / b) if op == "/" else a % b)
        return left

    def unary(self) -> str:
        tok = self.peek()
        if tok == "!":
            self.take()
            return "1" if self.unary() in ("", "0") else "0"
        if tok == "-":
            self.take()
            return _fmt(-(_num(self.unary()) or 0.0))
        return self.atom()

    def atom(self) -> str:
        tok = self.peek()
        if tok is None:
            return ""
        if tok == "(":
            self.take()
            value = self.parse()
            if self.peek() == ")":
                self.take()
            return value
        self.take()
        if tok.startswith('"') and tok.endswith('"') and len(tok) >= 2:
            return tok[1:-1]
        return tok


def evaluate(text: str) -> str:
    tokens = _tokens(text)
    return _Expr(tokens).parse() if tokens else ""


def filter_chars(allowed: str, text: str) -> str:
    """FILTER(allowed,string): keeps the characters listed, ranges (``A-Z``) included. A ``-``
    at the end of the list is not kept: Asterisk 22.10.1 turned ``FILTER(A-Za-z0-9.-,sas-69-1.0)``
    into ``sas691.0`` (seen on the real switch, the recordings' file names)."""
    keep: set[str] = set()
    index = 0
    while index < len(allowed):
        if index + 2 < len(allowed) and allowed[index + 1] == "-":
            keep.update(chr(c) for c in range(ord(allowed[index]), ord(allowed[index + 2]) + 1))
            index += 3
        elif allowed[index] == "-" and index == len(allowed) - 1:
            index += 1
        else:
            keep.add(allowed[index])
            index += 1
    return "".join(c for c in text if c in keep)


def cut(value: str, delimiter: str, fields: str) -> str:
    parts = value.split(delimiter or "-")
    selected: list[str] = []
    for item in fields.split("&"):
        if "-" in item:
            start, _, end = item.partition("-")
            lo = int(start or 1)
            hi = int(end) if end else len(parts)
            selected += parts[lo - 1 : hi]
        elif item.isdigit() and 0 < int(item) <= len(parts):
            selected.append(parts[int(item) - 1])
    return (delimiter or "-").join(selected)


def rand(low: str, high: str, rng: random.Random) -> str:
    lo = int(low) if low.strip() else 0
    hi = int(high) if high.strip() else 2**31 - 1
    if lo > hi:
        lo, hi = hi, lo
    return str(rng.randint(lo, hi))
