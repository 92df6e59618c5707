"""Every value the engine writes into an AMI action passes one gate that refuses control characters."""

from __future__ import annotations

import pytest
from sas_router.engine.ami import UnsafeValue, safe_action


def test_plain_values_pass_unchanged() -> None:
    action = {"Action": "Setvar", "Channel": "PJSIP/operator-00000001", "Variable": "__SAS_PRIO", "Value": 15}
    assert safe_action(action) == {**action, "Value": "15"}


@pytest.mark.parametrize("value", ["x\r\nAction: Hangup", "x\nAction: Hangup", "x\rY", "nul\x00", "bell\x07", "\x7f"])
def test_control_characters_are_refused(value: str) -> None:
    with pytest.raises(UnsafeValue, match="Value contains a control character"):
        safe_action({"Action": "Setvar", "Variable": "SAS_NOTE", "Value": value})


@pytest.mark.parametrize("key", ["Bad Key", "X\r\nAction", "", "Ünïcode"])
def test_header_names_are_checked_too(key: str) -> None:
    with pytest.raises(UnsafeValue):
        safe_action({"Action": "Ping", key: "1"})


def test_an_action_needs_its_name() -> None:
    with pytest.raises(UnsafeValue, match="no Action"):
        safe_action({"Channel": "x"})
