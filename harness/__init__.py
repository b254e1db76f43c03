"""flexlab: simulation and conformance test harness for KubeFlex-style PXE provisioning."""

__version__ = "0.1.0"
