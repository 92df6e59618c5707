"""AMI Atxfer as Asterisk 22 runs it (recording 03d), and the features.conf it depends on.

The feature code comes from ``[featuremap]`` as the channel read it when it was first bridged (a
later ``module reload features`` does not change it); the code and the number are keyed as DTMF on
the transferer's channel; the transferee is held while the number is collected; the number is
called as ``Local/<exten>@<context>`` from a consultation bridge; the transferer's hang-up merges
that bridge into the transferee's (BridgeMerge, AttendedTransfer, AgentComplete transfer). A
target that hangs up first returns the transferer to the transferee.

A mixin of :class:`~simulator.softswitch.core.Softswitch`: it uses the switch's channels,
bridges and events, and keeps the transfer state machine out of the core module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sas_router.simulator.softswitch.model import Bridge, Channel

if TYPE_CHECKING:
    from sas_router.simulator.softswitch.core import Softswitch


@dataclass
class AttendedTransferState:
    transferer: Channel
    home: Bridge
    consultation: Bridge
    target: Channel
    done: bool = False


#: Built-in features (features.c defaults); features.conf [featuremap] overrides them.
DEFAULT_FEATUREMAP = {"pickup": "*8", "blindxfer": "#", "atxfer": "", "disconnect": "*", "parkcall": "",
                      "automixmon": ""}
#: DTMF pacing of an AMI Atxfer as recording 03d shows it: feature-code digits 160 ms apart, hold
#: 100 ms after the code, then the number's digits 60 ms apart.
DTMF_FEATURE_GAP = 0.16
DTMF_HOLD_AFTER = 0.1
DTMF_DIGIT_GAP = 0.06


def parse_featuremap(text: str) -> dict[str, str]:
    """The [featuremap] and pickupexten of a features.conf, over Asterisk's defaults."""
    featuremap = dict(DEFAULT_FEATUREMAP)
    section = ""
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip().lower()
            continue
        name, sep, value = line.partition("=")
        if not sep:
            continue
        name, value = name.strip().lower(), value.lstrip(">").strip()
        if section == "featuremap" and name in featuremap:
            featuremap[name] = value
        elif section == "general" and name == "pickupexten":
            featuremap["pickup"] = value
    return featuremap


class AttendedTransfers:
    """The Atxfer half of the softswitch (see the module docstring)."""

    def atxfer(self: Softswitch, transferer: Channel, context: str | None, exten: str) -> str | None:
        """AMI Atxfer: queue the channel's ``atxfer`` feature code and the number as DTMF.

        Only what recording 03d shows: the code comes from the featuremap the channel read when
        it was bridged; the transferee hears hold music while the number is keyed in; the
        number is called as ``Local/<exten>@<context>`` from a consultation bridge."""
        features = transferer.features if transferer.features is not None else self.featuremap
        code = features.get("atxfer", "")
        if not code:
            return "No attended transfer feature code found"
        if context:
            self.setvar(transferer, "TRANSFER_CONTEXT", context)
        else:  # the transfer context: TRANSFER_CONTEXT if the channel has one, else its own context
            context = transferer.variables.get("TRANSFER_CONTEXT") or transferer.context
        at = 0.001
        for digit in code:
            self.scheduler.call_later(at, lambda digit=digit: self._dtmf(transferer, digit))
            at += DTMF_FEATURE_GAP
        at += DTMF_HOLD_AFTER - DTMF_FEATURE_GAP
        self.scheduler.call_later(at, lambda: self._atxfer_hold(transferer))
        for index, digit in enumerate(exten):
            at += DTMF_DIGIT_GAP
            last = index == len(exten) - 1
            self.scheduler.call_later(at, lambda digit=digit, last=last: self._atxfer_digit(
                transferer, digit, context, exten if last else None))
        return None

    def _dtmf(self: Softswitch, ch: Channel, digit: str) -> None:
        if not ch.hungup:
            self.emit("DTMFEnd", [*ch.snapshot(), ("Digit", digit), ("DurationMs", 0), ("Direction", "Received")])

    def _atxfer_hold(self: Softswitch, transferer: Channel) -> None:
        """The feature code matched: the transferee is put on hold while the number is collected."""
        if transferer.hungup or transferer.bridge is None:
            return
        self.emit("Hold", transferer.snapshot())
        for ch in transferer.bridge.channels:
            if ch is not transferer:
                self.emit("MusicOnHoldStart", [*ch.snapshot(), ("Class", "default")])

    def _atxfer_digit(self: Softswitch, transferer: Channel, digit: str, context: str, complete: str | None) -> None:
        self._dtmf(transferer, digit)
        if complete is not None and not transferer.hungup and transferer.bridge is not None:
            self._atxfer_dial(transferer, context, complete)

    def _atxfer_dial(self: Softswitch, transferer: Channel, context: str, exten: str) -> None:
        """Call the target from a new consultation bridge and move the transferer into it; the
        transferee stays on hold in the original bridge (and in its Queue())."""
        home = transferer.bridge
        assert home is not None
        one = self.create_outgoing(f"Local/{exten}@{context}", transferer, app_label="")
        if one is None or one.peer is None:
            return
        two = one.peer
        one.appdata = ""
        self.setvar(one, "TRANSFERERNAME", transferer.name)
        self.setvar(one, "ATTENDEDTRANSFER", transferer.name)
        self.inherit_to(transferer, one)
        consultation = Bridge()
        self.emit("BridgeCreate", consultation.snapshot())
        self.setvar(two, "ATTENDEDTRANSFER", transferer.name)
        self.setvar(two, "TRANSFERERNAME", transferer.name)
        self.inherit_to(transferer, two)
        two.cid_num, two.cid_name = transferer.cid_num, transferer.cid_name
        self.emit("NewCallerid", [*two.snapshot(), ("CID-CallingPres", self._pres(two))])
        self.place_outgoing(one)
        one.conn_num, one.conn_name = transferer.cid_num, transferer.cid_name
        self.emit("NewConnectedLine", one.snapshot())
        self._enter(consultation, one)
        self._detach(transferer, home)
        self._enter(consultation, transferer)
        state = AttendedTransferState(transferer, home, consultation, one)
        transferer.atxfer = state
        one.on_answer.append(lambda _ch: self._atxfer_answered(state))
        one.on_hangup.append(lambda _ch: self._atxfer_target_gone(state))

    def _atxfer_answered(self: Softswitch, state: AttendedTransferState) -> None:
        target, transferer = state.target, state.transferer
        self.emit("DialEnd", [*target.snapshot("Dest"), ("DialStatus", "ANSWER")])
        if state.done or transferer.hungup:
            return
        self._set_bridgepeers(target, transferer)
        self._set_connected(transferer, target.cid_num, target.cid_name)
        self._set_bridgepeers(target, transferer)  # published again once the connected line changed

    def _atxfer_target_gone(self: Softswitch, state: AttendedTransferState) -> None:
        """The target hung up before completion: the transferer returns to the transferee."""
        if state.done:
            return
        state.done = True
        transferer = state.transferer
        transferer.atxfer = None
        if transferer.hungup or not state.home.channels:
            return
        if transferer.bridge is state.consultation:
            self._detach(transferer, state.consultation)
            self.emit("BridgeDestroy", state.consultation.snapshot())
        for ch in state.home.channels:
            self.emit("MusicOnHoldStop", ch.snapshot())
        self._enter(state.home, transferer)
        self._bridged(state.home)

    def _atxfer_complete(self: Softswitch, state: AttendedTransferState) -> None:
        """The transferer hangs up: the consultation bridge merges into the transferee's and the
        target takes the transferer's place (recording 03d, in Asterisk 22's order)."""
        state.done = True
        transferer, target, home, consultation = state.transferer, state.target, state.home, state.consultation
        transferer.atxfer = None
        if transferer.variables.get("BRIDGEPEER"):
            self.setvar(transferer, "BRIDGEPEER", "")
        for ch in home.channels:
            self.emit("MusicOnHoldStop", ch.snapshot())
        if transferer.bridge is consultation:
            self._detach(transferer, consultation)
        peer = transferer.peer
        if peer is not None and not peer.hungup:
            self.emit("HangupRequest", [*peer.snapshot(), ("Cause", 16)])
            peer.hangup_queued = True
        if target.hungup or target.bridge is not consultation:
            self.destroy(transferer, 16)
            return
        self.emit("BridgeMerge", [*home.snapshot("ToBridge"), *consultation.snapshot("FromBridge")])
        self._detach(target, consultation)
        self._enter(home, target)
        if peer is not None and not peer.hungup:
            self.destroy(peer, 16)
        transferee = next((c for c in home.channels if c is not target), None)
        if transferee is not None:
            self._set_bridgepeers(transferee, target)
            self.emit("AttendedTransfer", [
                ("Result", "Success"), *transferer.snapshot("OrigTransferer"), *home.snapshot("OrigBridge"),
                *transferer.snapshot("SecondTransferer"), *consultation.snapshot("SecondBridge"),
                *transferee.snapshot("Transferee"), *target.snapshot("TransferTarget"), ("IsExternal", "No"),
                ("DestType", "Bridge"), ("DestBridgeUniqueid", home.uniqueid)])
            self._set_connected(transferee, target.cid_num, target.cid_name)
        self.queues.transferred(transferer)
        self.emit("BridgeDestroy", consultation.snapshot())
        self.destroy(transferer, 16)


    def reload_features(self: Softswitch) -> None:
        """``module reload features``: channels already bridged keep the map they read."""
        self.featuremap = parse_featuremap(self.features_source())
        self.emit("Reload", [("Module", "features"), ("Status", 0)], "system")
