"""Environment variables with one name per setting (docs/ENV.md), and the older names
some of them had, still read — with a warning — so a site's scripts keep working while
they move to the new name.

``FLEXLAB_CP_ADMIN_TOKEN`` is the Control Plane's admin token everywhere: the Control
Plane reads it to set its token, site-check and the harness read it to call the admin
API. site-check once called the same secret ``FLEXLAB_CP_TOKEN``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

# old name -> the name that replaced it (read when the new one is unset)
DEPRECATED: dict[str, str] = {
    "FLEXLAB_CP_TOKEN": "FLEXLAB_CP_ADMIN_TOKEN",
}

log = logging.getLogger("flexlab.env")
_warned: set[str] = set()


def read(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The value of ``name``, or of an older name it replaced (warning once per old name
    per process, so the user learns the new name), or None when neither is set."""
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is not None:
        return value
    for old, new in DEPRECATED.items():
        if new == name and (value := env.get(old)) is not None:
            if old not in _warned:
                _warned.add(old)
                log.warning("%s is deprecated: set %s instead (docs/ENV.md)", old, new)
            return value
    return None
