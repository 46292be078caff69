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


_EXPLANATIONS = {
    CSRFReason.CROSS_SITE: "the browser says it comes from another site (Sec-Fetch-Site: "
    "cross-site) and its Origin is not in trusted_origins",
    CSRFReason.SAME_SITE: "it comes from a sibling subdomain (Sec-Fetch-Site: same-site); "
    "set allow_same_site=True or add its origin to trusted_origins",
    CSRFReason.BAD_ORIGIN: "its Origin (or Referer) names an origin that is neither this "
    "one nor in trusted_origins",
    CSRFReason.NULL_ORIGIN: "its Origin is 'null' (a sandboxed frame or a redirect)",
    CSRFReason.NO_REFERER: "an https request with neither Sec-Fetch-Site, Origin nor Referer",
    CSRFReason.MISSING_TOKEN: "no token in the {header} header or the {field} form field",
    CSRFReason.BAD_TOKEN: "the token in the {header} header or the {field} form field is "
    "not this session's (an old page, another session, or a mangled value)",
    CSRFReason.AMBIGUOUS_TOKEN: "the {header} header or the {field} form field appears "
    "more than once, or is not a plain string",
    CSRFReason.MALFORMED_BODY: "the form body could not be parsed",
}


def _explain(reason: CSRFReason, *, header: str, field: str) -> str:
    """``reason`` in a sentence a developer can act on, naming the configured header and field."""
    return _EXPLANATIONS[reason].format(header=header, field=field)
