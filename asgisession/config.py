"""Reading ``secret_key_base`` from where it belongs: the environment or a secrets file.

A secret in source code ends up in every clone, CI log and container image. Production
deployments pass it in an environment variable or mount it as a file (Docker and
Kubernetes secrets); :func:`secret_key_base_from_env` reads either, and also the
rotation list, so that rotating a key is a configuration change, not a code change.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from .crypto import MAKE_SECRET
from .errors import ConfigurationError

__all__ = ["secret_key_base_from_env"]

_SEPARATORS = re.compile(r"[\s,]+")


def secret_key_base_from_env(
    name: str = "SECRET_KEY_BASE", *, environ: Mapping[str, str] | None = None
) -> list[str]:
    """Return the secrets in rotation, newest first, from ``$NAME`` or ``$NAME_FILE``.

    The value holds one secret, or several separated by commas or whitespace, newest
    first. To rotate: put the new secret in front, deploy; when the old cookies have
    expired (the session lifetime), drop the old one and deploy again.

    ``$NAME_FILE`` names a file holding the same (for mounted secrets); setting both is an
    error, so that it is always clear which one is in force.

    :raises ConfigurationError: when neither is set, both are, the file cannot be read, or
        no secret is in it. Weak secrets are refused later, by the middleware.

    .. versionadded:: 0.1
    """
    env = os.environ if environ is None else environ
    value, file_name = env.get(name), env.get(f"{name}_FILE")
    if value is not None and file_name is not None:
        raise ConfigurationError(f"both ${name} and ${name}_FILE are set; keep one.")
    if file_name is not None:
        try:
            value = Path(file_name).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(
                f"${name}_FILE names {file_name!r}, which cannot be read: {exc.strerror}."
            ) from None
    if value is None:
        raise ConfigurationError(
            f"${name} is not set. Generate a secret with `{MAKE_SECRET}` and pass it in "
            f"the environment (or put it in a file named by ${name}_FILE); never in the code."
        )
    secrets = [part for part in _SEPARATORS.split(value.strip()) if part]
    if not secrets:
        raise ConfigurationError(f"${name} is empty. Generate a secret with `{MAKE_SECRET}`.")
    return secrets
