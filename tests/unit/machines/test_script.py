"""iPXE scripts are read the way iPXE reads them (settings, options, relative URLs, chains)."""

from __future__ import annotations

import pytest

from harness.machines.sim.errors import BootFailed
from harness.machines.sim.script import expand, parse_script

pytestmark = pytest.mark.unit

SETTINGS = {"mac": "52:54:00:00:00:01", "platform": "efi"}


def test_kernel_initrd_with_options_and_relative_urls() -> None:
    text = ("#!ipxe\n# comment\n"
            "kernel --name vmlinuz /artifacts/vmlinuz initrd=initrd flexlab.mac=${mac} "
            "flexlab.token=abc\n"
            "initrd --name initrd http://10.0.0.2:8080/artifacts/initrd.img\n"
            "boot\n")
    s = parse_script(text, "http://10.0.0.2:8080/boot/x.ipxe", SETTINGS)
    assert s.kernel == "http://10.0.0.2:8080/artifacts/vmlinuz"
    assert s.initrds == ["http://10.0.0.2:8080/artifacts/initrd.img"]
    assert s.cmdline_arg("flexlab.mac") == "52:54:00:00:00:01"
    assert s.cmdline_arg("flexlab.token") == "abc" and s.boots


def test_chain_to_another_script() -> None:
    s = parse_script("#!ipxe\nchain boot/${mac}.ipxe\n", "http://h/", SETTINGS)
    assert s.chain == "http://h/boot/52:54:00:00:00:01.ipxe" and s.kernel is None


def test_not_a_script_and_unknown_settings() -> None:
    with pytest.raises(BootFailed):
        parse_script("<html>404</html>", "http://h/x", SETTINGS)
    assert expand("a${nope}b${platform}", SETTINGS) == "abefi"
