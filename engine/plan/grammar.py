"""The last gate before a rendered file is written: every line must have one of the shapes the
renderer means to write, naming only what the plan declares.

The loader already refuses names and texts that could escape, but a configuration file that runs
on every emergency call deserves a second, independent lock: whatever a :class:`Plan` holds (built
by hand, by a future loader bug, by a test), the renderer refuses to emit a context, section,
setting, dialplan application or function it does not know, or any character outside a narrow set.
A shell call (``System``, ``SHELL``), an extra ``[operator]`` or a member in a foreign context then
cannot reach Asterisk, whatever got into the model.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sas_router.engine.plan import contexts as C
from sas_router.engine.plan.model import Plan

#: Dialplan applications the rendered extensions.conf uses; anything else is refused.
APPLICATIONS = frozenset({"Answer", "Dial", "ExecIf", "Goto", "GotoIf", "NoOp", "Queue", "Return", "Set",
                          "TryExec"})
#: Dialplan functions the rendered extensions.conf reads; SHELL, SYSTEM, FILE, CURL... are not here.
FUNCTIONS = frozenset({"CALLERID", "CUT", "DB", "DIALPLAN_EXISTS", "FILTER", "IF", "PJSIP_HEADER", "RAND",
                       "STRFTIME"})
#: The one thing TryExec may run: MixMonitor on the recording path variable, and nothing after it —
#: MixMonitor's third argument is a shell command run when the recording ends.
TRY_EXEC = re.compile(r"^MixMonitor\(\$\{SAS_REC\}\)$")
#: Settings each generated file may carry (the key before ``=``).
SETTINGS = {
    "queues.conf": frozenset({
        "strategy", "timeout", "retry", "wrapuptime", "weight", "servicelevel", "musicclass", "ringinuse",
        "joinempty", "leavewhenempty", "autopause", "announce-position", "announce-holdtime",
        "announce-frequency", "periodic-announce-frequency", "member"}),
    "queues-general.conf": frozenset({"persistentmembers", "autofill", "shared_lastcall", "log_membername_as_agent"}),
    "manager.conf": frozenset({"deny", "permit", "read", "write", "writetimeout", "eventfilter"}),
    "pjsip.conf": frozenset({
        "type", "protocol", "bind", "context", "disallow", "allow", "transport", "aors", "auth", "direct_media",
        "send_pai", "trust_id_inbound", "allow_transfer", "endpoint", "match", "contact", "qualify_frequency",
        "max_contacts", "remove_existing", "auth_type", "username", "callerid", "webrtc", "rtp_symmetric",
        "force_rport", "rewrite_contact", "local_net", "external_media_address", "external_signaling_address",
        "cert_file", "priv_key_file", "method", "dtls_auto_generate_cert", "media_encryption",
        "use_avpf", "ice_support", "dtls_verify", "dtls_setup", "rtcp_mux", "identify_by", "from_domain",
        "outbound_auth", "from_user", "timers", "rtp_timeout", "tos_audio", "tos"}),
    "rtp.conf": frozenset({"rtpstart", "rtpend", "icesupport", "stunaddr"}),
    "modules.conf": frozenset({"load", "noload", "require", "preload"}),
}
#: Values of a setting: no line break, no ';' (a comment would hide the rest), no '[' or '$'.
VALUE = re.compile(r'^[A-Za-z0-9 ._/:,!@+<>"=|()*^-]*$')
#: A dialplan line: ``exten => <ext>,1(label)?,App(args)`` or `` same => n(label)?,App(args)``.
EXTEN_LINE = re.compile(r"^exten => (?P<ext>[A-Za-z0-9_.+-]{1,40}),1(?:\([a-z-]{1,20}\))?,"
                        r"(?P<app>[A-Za-z]+)\((?P<args>.*)\)$")
SAME_LINE = re.compile(r"^ same => n(?:\([a-z-]{1,20}\))?,(?P<app>[A-Za-z]+)\((?P<args>.*)\)$")
#: Application arguments: what the renderer writes (variables, expressions, function calls, headers).
ARGS = re.compile(r'^[A-Za-z0-9 ._/:,!@+<>"=|&?(){}$\[\]*^#%-]*$')
FUNCTION_CALL = re.compile(r"\$\{([A-Za-z_]+)\(")
#: A Gosub-style target inside Dial's b() option: b(context^exten^priority).
DIAL_GOSUB = re.compile(r"\bb\(([^)^]*)\^")
NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,38}$")


class RenderRefused(ValueError):
    """The renderer produced a line outside its own grammar: nothing is written."""

    def __init__(self, file: str, line_no: int, reason: str, line: str) -> None:
        shown = line.encode("unicode_escape").decode("ascii")[:120]
        super().__init__(f"{file}:{line_no}: refused to render: {reason}: {shown}")


def expected_contexts(plan: Plan) -> frozenset[str]:
    """The dialplan contexts a plan renders, and nothing else."""
    fixed = {C.CTX_PSTN, C.CTX_QUEUE, C.CTX_ROUTE, C.CTX_OVERFLOW_OUT, C.CTX_SWITCH_OUT, C.CTX_TRUNK_HEADERS,
             C.CTX_REMOTE_AGENT, C.CTX_DESK_TRANSFER}
    return frozenset(fixed | {C.partner_context(p) for p in plan.partners})


def expected_pjsip_sections(plan: Plan) -> frozenset[str]:
    """Section names pjsip.conf may hold: transports, the operator, partners, desks and templates."""
    names = {f"sas-transport-{proto}" for proto in ("udp", "tcp", "tls", "wss")}
    names |= {C.OPERATOR_ENDPOINT, "sas-desk-phone", "sas-desk-webrtc", "sas-desk-auth", "sas-desk-aor"}
    names |= set(plan.partners)
    for extension in plan.desks:
        names |= {extension, f"{extension}-auth"}
    return frozenset(names)


def check_rendered(files: dict[str, str], plan: Plan) -> None:
    """Raise :class:`RenderRefused` at the first line outside the grammar of its file."""
    for name, text in files.items():
        if name == "extensions.conf":
            _check_dialplan(name, text, plan)
        elif name in SETTINGS:
            sections = {"queues.conf": set(plan.queues), "pjsip.conf": expected_pjsip_sections(plan),
                        "manager.conf": {"sas-router"}}.get(name, set())
            _check_settings(name, text, plan, frozenset(sections))
        else:
            raise RenderRefused(name, 1, "not a file the renderer writes", "")


def _comment_ok(line: str) -> bool:
    return line.startswith(";") and line.isprintable()


def _check_dialplan(name: str, text: str, plan: Plan) -> None:
    contexts = expected_contexts(plan)
    for number, line in _numbered(name, text):
        if not line or _comment_ok(line):
            continue
        if line.startswith("["):
            if line[1:-1] not in contexts or not line.endswith("]"):
                raise RenderRefused(name, number, "a context the plan does not declare", line)
            continue
        match = EXTEN_LINE.match(line) or SAME_LINE.match(line)
        if match is None:
            raise RenderRefused(name, number, "not an 'exten =>' or 'same =>' line", line)
        app, args = match["app"], match["args"]
        if app not in APPLICATIONS:
            raise RenderRefused(name, number, f"application {app} is not one the renderer writes", line)
        if app == "TryExec" and not TRY_EXEC.match(args):
            raise RenderRefused(name, number, "TryExec runs only MixMonitor on the recording's path", line)
        if not ARGS.match(args):
            raise RenderRefused(name, number, "a character no rendered argument carries", line)
        for function in FUNCTION_CALL.findall(args):
            if function not in FUNCTIONS:
                raise RenderRefused(name, number, f"function {function} is not one the renderer reads", line)
        for nested in re.findall(r"[?:,(]([A-Z][A-Za-z]+)\(", args):  # ExecIf(cond?App(...))
            if nested not in APPLICATIONS:
                raise RenderRefused(name, number, f"application {nested} is not one the renderer writes", line)
        for context in _contexts_named(app, args):
            if context not in contexts:
                raise RenderRefused(name, number, f"context {context} is not declared", line)


def _contexts_named(app: str, args: str) -> list[str]:
    """The contexts a Goto, a GotoIf branch or a Dial's pre-dial handler sends the caller to."""
    if app == "Goto":
        return [args.split(",")[0]] if args.count(",") == 2 else []
    if app == "GotoIf":
        branches = args.rsplit("?", 1)[1].split(":") if "?" in args else []
        return [branch.split(",")[0] for branch in branches if branch.count(",") == 2]
    if app == "Dial":
        return DIAL_GOSUB.findall(args)
    return []


def _check_settings(name: str, text: str, plan: Plan, sections: frozenset[str]) -> None:
    allowed = SETTINGS[name]
    site_include = re.compile(rf"^#tryinclude {re.escape(plan.site.id)}/[a-z-]+\.conf$")
    for number, line in _numbered(name, text):
        if not line or _comment_ok(line) or site_include.match(line):
            continue
        if line.startswith("["):
            section = re.fullmatch(r"\[([A-Za-z0-9-]+)\](?:\((!|[a-z-]+)\))?", line)
            if section is None or (sections and section[1] not in sections):
                raise RenderRefused(name, number, "a section the plan does not declare", line)
            continue
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.split(";", 1)[0].strip() if name != "manager.conf" else value.strip()
        if not sep or key not in allowed:
            raise RenderRefused(name, number, f"setting {key!r} is not one the renderer writes", line)
        if value.startswith(">"):
            value = value[1:].strip()  # 'member => PJSIP/1001'
        if not VALUE.match(value):
            raise RenderRefused(name, number, "a character no rendered value carries", line)
        if key == "member" and not re.fullmatch(
                rf"PJSIP/[0-9]{{2,8}}|Local/\+?[0-9]{{2,20}}@{C.CTX_REMOTE_AGENT}/n", value):
            raise RenderRefused(name, number, "a queue member that is neither a desk nor a remote regulator", line)
        if key == "context" and value not in expected_contexts(plan):
            raise RenderRefused(name, number, f"context {value} is not declared", line)


def _numbered(name: str, text: str) -> Iterable[tuple[int, str]]:
    """The file's lines; a control character anywhere (a stray CR, a NUL) refuses the whole file."""
    for number, line in enumerate(text.split("\n"), start=1):
        if any((ord(ch) < 32 and ch != "\t") or 0x7F <= ord(ch) <= 0x9F for ch in line):
            raise RenderRefused(name, number, "a control character", line)
        yield number, line
