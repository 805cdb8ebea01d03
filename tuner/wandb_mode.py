"""Which W&B mode a run logs in (online, offline or disabled), decided before anything starts and
without importing W&B: validation (tuner.spec) resolves ``logger.mode`` here."""

from __future__ import annotations

import netrc
import os
from urllib.parse import urlparse

from tuner.errors import ConfigError

MODES = ("auto", "online", "offline", "disabled")
# WANDB_MODE's values, as logger.mode=auto reads them.
_ENV_MODES = {
    "online": "online", "run": "online", "offline": "offline", "dryrun": "offline", "disabled": "disabled",
}


def resolve_mode(mode: str) -> str:
    """online, offline or disabled; ``auto`` honours WANDB_MODE, else online with credentials.

    Online without credentials would make W&B prompt for a key: it is refused before Ray starts.
    """
    if mode == "auto":
        env = os.environ.get("WANDB_MODE", "").lower()
        mode = _ENV_MODES.get(env) or ("online" if has_credentials() else "offline")
    if mode == "online" and not has_credentials():
        raise ConfigError(
            "logger.mode",
            "online needs W&B credentials and none were found",
            "run `wandb login` or set WANDB_API_KEY, or use logger.mode=offline",
        )
    return mode


def has_credentials() -> bool:
    """Whether W&B has an API key: WANDB_API_KEY, an identity token, or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        return netrc.netrc(path).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False
