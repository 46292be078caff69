"""CSRF protection, pure ASGI: Rails-compatible authenticity tokens behind an origin check.

A state-changing request (any method but ``GET``, ``HEAD`` and ``OPTIONS``) must come from
this site and carry the session's token, or the app never sees it. Each job has one module,
and each module states its rules first:

- ``middleware.py``: :class:`CSRFMiddleware`, which requests are checked, in what order, and
  what a failure does;
- ``origin.py``: ``Sec-Fetch-Site``, ``Origin`` and ``Referer`` against this request's own
  origin and ``trusted_origins``, and which paths can be exempt;
- ``tokens.py``: the secret in ``session["_csrf_token"]``, its masked tokens, Rails'
  per-form tokens, and :func:`csrf_token` for templates;
- ``fields.py``: finding the token field in a form body as it streams, read the way
  Starlette reads forms (python-multipart);
- ``forms.py``: reading a form body up to that field (holding what it read, in a temporary
  file past 256 KiB) and replaying it to the app byte for byte;
- ``reasons.py``: :class:`CSRFReason`, what every failed check reports.

The names below are importable from here, as they were from the single ``csrf.py``; the
private ones only because the Rails interop and property tests import them by this path.
"""

from .fields import _form_fields as _form_fields
from .middleware import SAFE_METHODS as SAFE_METHODS
from .middleware import CSRFMiddleware as CSRFMiddleware
from .middleware import FailureHandler as FailureHandler
from .middleware import logger as logger
from .reasons import CSRFReason as CSRFReason
from .tokens import FIELD_NAME as FIELD_NAME
from .tokens import HEADER_NAME as HEADER_NAME
from .tokens import SESSION_KEY as SESSION_KEY
from .tokens import TOKEN_LENGTH as TOKEN_LENGTH
from .tokens import _decode_secret as _decode_secret
from .tokens import _global_token as _global_token
from .tokens import _per_form_token as _per_form_token
from .tokens import csrf_token as csrf_token
from .tokens import mask_token as mask_token
from .tokens import token_matches as token_matches

__all__ = ["CSRFMiddleware", "CSRFReason", "csrf_token"]
