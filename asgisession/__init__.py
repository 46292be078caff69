"""asgisession: Rails-grade sessions for any ASGI app.

The public names are re-exported here; each is defined in a small module of its own.
"""

from .__about__ import __version__ as __version__
from .config import secret_key_base_from_env as secret_key_base_from_env
from .cookies import CookieOptions as CookieOptions
from .crypto import CookieFormat as CookieFormat
from .crypto import KeyGenerator as KeyGenerator
from .crypto import Keyring as Keyring
from .crypto import MessageCodec as MessageCodec
from .crypto import MessageEncryptor as MessageEncryptor
from .crypto import MessageVerifier as MessageVerifier
from .csrf import CSRFMiddleware as CSRFMiddleware
from .csrf import CSRFReason as CSRFReason
from .csrf import csrf_token as csrf_token
from .errors import AsgiSessionError as AsgiSessionError
from .errors import ConfigurationError as ConfigurationError
from .errors import CookieOverflow as CookieOverflow
from .errors import ExpiryTooLong as ExpiryTooLong
from .errors import InvalidMessage as InvalidMessage
from .errors import RejectReason as RejectReason
from .errors import SerializationError as SerializationError
from .errors import SessionConflict as SessionConflict
from .errors import SessionNotLoaded as SessionNotLoaded
from .errors import StoreUnavailable as StoreUnavailable
from .flash import Flash as Flash
from .flash import flash as flash
from .jar import CookieJar as CookieJar
from .jar import cookies as cookies
from .middleware import SessionMiddleware as SessionMiddleware
from .rails import RailsCookies as RailsCookies
from .revocation import UserSession as UserSession
from .revocation import revoke_session as revoke_session
from .revocation import revoke_user as revoke_user
from .revocation import user_sessions as user_sessions
from .rotation import Rotation as Rotation
from .session import Session as Session
from .sessions import SessionInfo as SessionInfo
from .sessions import Sessions as Sessions

__all__ = [
    "AsgiSessionError",
    "CSRFMiddleware",
    "CSRFReason",
    "ConfigurationError",
    "CookieFormat",
    "CookieJar",
    "CookieOptions",
    "CookieOverflow",
    "ExpiryTooLong",
    "Flash",
    "InvalidMessage",
    "KeyGenerator",
    "Keyring",
    "MessageCodec",
    "MessageEncryptor",
    "MessageVerifier",
    "RailsCookies",
    "RejectReason",
    "Rotation",
    "SerializationError",
    "Session",
    "SessionConflict",
    "SessionInfo",
    "SessionMiddleware",
    "SessionNotLoaded",
    "Sessions",
    "StoreUnavailable",
    "UserSession",
    "__version__",
    "cookies",
    "csrf_token",
    "flash",
    "revoke_session",
    "revoke_user",
    "secret_key_base_from_env",
    "user_sessions",
]
