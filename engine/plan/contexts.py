"""Names shared by the rendered dialplan, the engine and the emulator.

The engine redirects, withdraws and switches calls by naming these contexts, extensions, channel
variables and AstDB keys; keeping them in one module means the dialplan the renderer writes and
the actions the engine sends cannot drift apart.
"""

from __future__ import annotations

CTX_PSTN = "sas-from-pstn"
CTX_QUEUE = "sas-queue"
CTX_ROUTE = "sas-route"
CTX_OVERFLOW_OUT = "sas-overflow-out"
CTX_SWITCH_OUT = "sas-switch-out"
CTX_TRUNK_HEADERS = "sas-trunk-headers"
CTX_REMOTE_AGENT = "sas-remote-agent"
#: Where a number keyed on a desk phone (SIP REFER, the '#' blind-transfer feature) sends the caller.
CTX_DESK_TRANSFER = "sas-desk-transfer"
OPERATOR_ENDPOINT = "operator"

#: AstDB family holding line switch-overs: key = line id, value = "partner:share[:number]".
DB_SWITCH = "sas-switch"
#: AstDB family of recent callers: key = caller number, value = epoch of their last call.
DB_RECENT = "sas-recent"
#: AstDB family of desk roles: key = queue interface, value = the role it logged in with. Kept on
#: the switch, beside its persistent members, so an engine restart finds every desk's role.
DB_ROLE = "sas-role"

# Channel variables the dialplan sets (inherited with "__" so agent legs and trunks carry them).
VAR_LINE = "SAS_LINE"
VAR_SITE = "SAS_SITE"
VAR_ORIGIN = "SAS_ORIGIN"
VAR_CALL_ID = "SAS_CALL_ID"
VAR_CALLER_NUM = "SAS_CALLER_NUM"
VAR_GEOLOC = "SAS_GEOLOC"
VAR_PRIO = "SAS_PRIO"
#: The priority that puts this caller at the front of a queue within its band (urgent or care).
VAR_FRONT = "SAS_FRONT"
VAR_ENTRY_QUEUE = "SAS_ENTRY_QUEUE"
VAR_QUEUE = "SAS_QUEUE"
VAR_INBOUND = "SAS_INBOUND"
VAR_ORIG_LINE = "SAS_ORIG_LINE"
VAR_OUT_REASON = "SAS_OUT_REASON"
VAR_DIALED = "SAS_DIALED"
VAR_REPEAT = "SAS_REPEAT"
VAR_OVERFLOWED_TO = "SAS_OVERFLOWED_TO"
VAR_SWITCHED_TO = "SAS_SWITCHED_TO"
#: Set to 1 at the entry of a line the plan records.
VAR_RECORD = "SAS_RECORD"
#: The call's recording, relative to Asterisk's monitor directory (set once, at the first queue).
VAR_REC = "SAS_REC"

# SIP headers carried on partner trunks.
HDR_ORIGIN = "X-SAS-Origin"
HDR_CALL_ID = "X-SAS-Call-Id"
HDR_LINE = "X-SAS-Line"
HDR_REASON = "X-SAS-Reason"
HDR_CALLER = "X-SAS-Caller"


def partner_context(partner: str) -> str:
    """Context a partner's trunk delivers into (pjsip.conf endpoint ``context=``)."""
    return f"sas-from-{partner}"


def route_to_queue(queue: str) -> str:
    """Extension of ``sas-route`` that puts a caller in ``queue``: a QueueWithdrawCaller
    WithdrawInfo, a Redirect target and a BlindTransfer target all use it."""
    return f"q-{queue}"


def route_to_partner(partner: str) -> str:
    """Extension of ``sas-route`` that overflows a caller to ``partner``."""
    return f"ovf-{partner}"
