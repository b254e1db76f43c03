"""Node image builder: Debian kernel + busybox initramfs + the flexlab node agent.

VMs in the vm tier boot this image (direct kernel boot or over PXE/iPXE) so the
whole chain, up to the node registering with the Control Plane, runs for real.
Build with ``python -m nodeimage build``; see docs/NODEIMAGE.md.
"""

from nodeimage.build import BuildResult, build_image, latest_built
from nodeimage.errors import NodeImageError
from nodeimage.trust import initrd_with_ca

__all__ = ["BuildResult", "NodeImageError", "build_image", "initrd_with_ca", "latest_built"]
