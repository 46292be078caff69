"""Why a request failed the CSRF checks: the one vocabulary the checks and the handler share.

The origin checks (``origin.py``) and the token and form checks (``middleware.py``) each
return a :class:`CSRFReason`; it reaches the log line and a custom ``on_failure`` handler. It
has a module of its own so that both sides can import it without importing each other.
"""

from __future__ import annotations

import enum

__all__ = ["CSRFReason"]


class CSRFReason(str, enum.Enum):
    """Why a request failed the CSRF checks; stable strings, fit for logs and metrics.

    .. versionadded:: 0.1
    """

    #: ``Sec-Fetch-Site: cross-site`` (or an unknown value) and no trusted ``Origin``.
    CROSS_SITE = "cross_site"
    #: ``Sec-Fetch-Site: same-site`` without ``allow_same_site`` or a trusted ``Origin``.
    SAME_SITE = "same_site"
    #: ``Origin`` (or ``Referer``) names another, untrusted origin, or is malformed.
    BAD_ORIGIN = "bad_origin"
    #: ``Origin: null`` (sandboxed frames, some redirects).
    NULL_ORIGIN = "null_origin"
    #: An https request with neither ``Sec-Fetch-Site``, ``Origin`` nor ``Referer``.
    NO_REFERER = "no_referer"
    #: No token in the header or the form.
    MISSING_TOKEN = "missing_token"  # noqa: S105 - a reason, not a secret
    #: A token is present but wrong: another session, bad length or characters, unmasked.
    BAD_TOKEN = "bad_token"  # noqa: S105 - a reason, not a secret
    #: The token header or field appears more than once, or is not a plain string.
    AMBIGUOUS_TOKEN = "ambiguous_token"  # noqa: S105 - a reason, not a secret
    #: The form body could not be parsed (bad boundary, truncated multipart).
    MALFORMED_BODY = "malformed_body"
