"""iPXE script rendering, MAC normalisation and Range parsing (no sockets)."""

import pytest

from bootproxy.httpboot import BootData, BootDataError, Unsatisfiable, parse_range
from bootproxy.httpboot.script import render_script
from bootproxy.macs import parse_mac

pytestmark = pytest.mark.unit

BOOT = BootData(mac="52:54:00:12:34:56", hostname="node-1", kernel="vmlinuz-6.1",
                initrd="initrd.img", cmdline="console=ttyS0 flexlab.token=abc123")


def test_script_fetches_from_this_server_and_boots_with_cmdline() -> None:
    text = render_script(BOOT, "http://10.0.0.2:8080/")
    lines = text.splitlines()
    assert lines[0] == "#!ipxe"
    assert ("kernel http://10.0.0.2:8080/artifacts/vmlinuz-6.1 initrd=initrd "
            "console=ttyS0 flexlab.token=abc123") in lines
    assert "initrd --name initrd http://10.0.0.2:8080/artifacts/initrd.img" in lines
    assert lines[-1] == "boot"


@pytest.mark.parametrize("field,value", [
    ("cmdline", "quiet\nshell"), ("hostname", "a\rb"), ("kernel", "../etc/passwd"),
    ("initrd", "a b"), ("kernel", ""),
])
def test_unsafe_boot_data_is_refused(field: str, value: str) -> None:
    data = BootData(**{**BOOT.__dict__, field: value})
    with pytest.raises(BootDataError):
        render_script(data, "http://x")


@pytest.mark.parametrize("text,expected", [
    ("52:54:00:12:34:56", "52:54:00:12:34:56"), ("52-54-00-12-34-AB", "52:54:00:12:34:ab"),
    ("525400123456", "52:54:00:12:34:56"), ("52:54:00:12:34", None), ("zz:54:00:12:34:56", None),
])
def test_parse_mac(text: str, expected: str | None) -> None:
    assert parse_mac(text) == expected


@pytest.mark.parametrize("header,expected", [
    (None, None), ("bytes=0-9", (0, 9)), ("bytes=90-", (90, 99)), ("bytes=-10", (90, 99)),
    ("bytes=95-200", (95, 99)), ("bytes=-500", (0, 99)), ("bytes=0-1,5-6", None),
    ("items=0-1", None), ("bytes=5-2", None), ("bytes=x-y", None),
])
def test_parse_range(header: str | None, expected: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=200-300", "bytes=-0"])
def test_unsatisfiable_ranges(header: str) -> None:
    with pytest.raises(Unsatisfiable):
        parse_range(header, 100)
