"""Errors raised while building the node image; each message says what to do next."""


class NodeImageError(Exception):
    """Base class for every node image build failure."""


class PackageError(NodeImageError):
    """A Debian package could not be resolved, downloaded or unpacked."""


class ModuleError(NodeImageError):
    """A kernel module or one of its dependencies is missing from the kernel package."""


class ArchiveError(NodeImageError):
    """The initramfs archive could not be written."""


class KernelBuildError(NodeImageError):
    """The node kernel could not be configured or built from Debian's kernel source."""
