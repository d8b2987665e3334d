"""Whether the Hugging Face hub answers, asked once per process with a short timeout.

Offline, hub loads go straight to the local cache instead of retrying for a minute or more.
"""

from __future__ import annotations

import functools
import os
import socket

HUB_HOST = ("huggingface.co", 443)


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        socket.create_connection(HUB_HOST, timeout=timeout).close()
    except OSError:
        return False
    return True
