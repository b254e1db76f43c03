"""The Boot Proxy's log lines: the head shared with the Control Plane, in order, always."""

from __future__ import annotations

import json
import logging

import pytest

from bootproxy.logs import HEAD, JsonFormatter, log_event

pytestmark = pytest.mark.unit


def _line(record: logging.LogRecord) -> dict[str, object]:
    doc = json.loads(JsonFormatter(proxy="bp1").format(record))
    assert list(doc)[:5] == list(HEAD)
    return doc


def test_an_event_line_has_the_head_then_proxy_then_fields() -> None:
    record = logging.LogRecord("bootproxy.dhcp", logging.INFO, __file__, 1, "dhcp_offer",
                               None, None)
    record.fields = {"event": "dhcp_offer", "mac": "52:54:00:00:00:01"}
    doc = _line(record)
    assert doc["event"] == doc["msg"] == "dhcp_offer" and doc["level"] == "info"
    assert list(doc)[5:] == ["proxy", "mac"] and doc["proxy"] == "bp1"


def test_a_plain_line_is_event_message_with_its_text() -> None:
    record = logging.LogRecord("bootproxy.tftp", logging.WARNING, __file__, 1,
                               "tftp rrq %s", ("ipxe.efi",), None)
    doc = _line(record)
    assert doc["event"] == "message" and doc["msg"] == "tftp rrq ipxe.efi"
    assert doc["level"] == "warning" and doc["component"] == "bootproxy.tftp"


def test_a_field_never_overwrites_the_head() -> None:
    record = logging.LogRecord("bootproxy.app", logging.INFO, __file__, 1, "x", None, None)
    record.fields = {"event": "x", "level": "loud", "msg": "hi"}
    doc = _line(record)
    assert doc["level"] == "info" and doc["msg"] == "x"
    assert doc["field_level"] == "loud" and doc["field_msg"] == "hi"
    with pytest.raises(ValueError, match="overwrite"):
        log_event(logging.getLogger("bootproxy.test"), "x", logging.CRITICAL, msg="hi")
