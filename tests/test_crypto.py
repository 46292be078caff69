# STYLE.md puts the expected value first in asserts; SIM300 ("Yoda condition") forbids it.
from __future__ import annotations

import ast
import base64
import hashlib
import re
import secrets
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import asgisession
import asgisession.crypto as crypto_module
from asgisession.crypto import (
    HEADER_SIZE,
    MAC_SIZE,
    MAX_CLOCK_SKEW,
    NONCE_SIZE,
    TAG_SIZE,
    VERSION_GCM,
    VERSION_SIGNED,
    KeyGenerator,
    Keyring,
    MessageEncryptor,
    MessageVerifier,
    Opened,
    b64url_decode,
    b64url_encode,
)
from asgisession.errors import ConfigurationError, InvalidMessage, RejectReason

# Fixed random secrets (secrets.token_hex(32)), so failures reproduce.
NEW_SECRET = "b44d486a7fa51bdc790620eb9f84555741eb6274729962447fd1e41773a7073a"
OLD_SECRET = "69bab5cae5eb70e8594aa4a3407224fe0ca690368f05df89228965297ff5edba"
OTHER_SECRET = "891dfb4aaf4f3a859c8760d82264968fee0bfc2cfebdbf7b68b4f4ddd5d2d071"

NOW = 1_700_000_000
ISSUED_AT = NOW - 60
EXPIRES_AT = NOW + 3600
PURPOSE = "session"
PAYLOAD = b'{"user_id":42,"cart":[1,2,3]}'

B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

Codec = MessageEncryptor | MessageVerifier
CodecClass = type[MessageEncryptor] | type[MessageVerifier]
CODEC_CLASSES = pytest.mark.parametrize(
    "codec_cls", [MessageEncryptor, MessageVerifier], ids=["encrypted", "signed"]
)


def make(codec_cls: CodecClass, *secret_list: str) -> Codec:
    return codec_cls(Keyring(list(secret_list)))


def seal(codec: Codec, payload: bytes = PAYLOAD, *, purpose: str = PURPOSE) -> str:
    return codec.seal(payload, purpose=purpose, issued_at=ISSUED_AT, expires_at=EXPIRES_AT)


def reason_of(codec: Codec, token: str, *, purpose: str = PURPOSE, now: int = NOW) -> RejectReason:
    with pytest.raises(InvalidMessage) as excinfo:
        codec.open(token, purpose=purpose, now=now)
    return excinfo.value.reason


# --- KeyGenerator ---------------------------------------------------------------------


def test_derive_gives_a_distinct_key_per_purpose() -> None:
    """Each purpose gets its own 32-byte key."""
    generator = KeyGenerator(NEW_SECRET)
    purposes = ["session-encryption", "session-signing", "csrf", "cookie-jar", ""]
    keys = [generator.derive(purpose) for purpose in purposes]
    assert [32] * len(purposes) == [len(key) for key in keys]
    assert len(purposes) == len(set(keys))


def test_derived_keys_are_not_the_secret() -> None:
    """No derived key is the secret or a slice of it."""
    secret = NEW_SECRET.encode()
    generator = KeyGenerator(NEW_SECRET)
    for key in (generator.derive("session-encryption"), generator.key_id):
        assert key not in secret
        assert secret[: len(key)] != key
        assert bytes.fromhex(NEW_SECRET)[: len(key)] != key


def test_derive_is_cached_and_stable() -> None:
    """The same purpose always gives the same key, across instances and str/bytes secrets."""
    generator = KeyGenerator(NEW_SECRET)
    first = generator.derive("session-encryption")
    assert first is generator.derive("session-encryption")
    assert first == KeyGenerator(NEW_SECRET).derive("session-encryption")
    assert first == KeyGenerator(NEW_SECRET.encode()).derive("session-encryption")


def test_derive_honours_length() -> None:
    """The requested length is the length of the key returned."""
    generator = KeyGenerator(NEW_SECRET)
    assert 16 == len(generator.derive("x", 16))
    assert 64 == len(generator.derive("x", 64))


def test_different_secrets_give_different_keys_and_key_ids() -> None:
    """Two secrets share no derived key and no key id."""
    new, old = KeyGenerator(NEW_SECRET), KeyGenerator(OLD_SECRET)
    assert new.derive("session-encryption") != old.derive("session-encryption")
    assert new.key_id != old.key_id
    assert 4 == len(new.key_id)


def test_key_generator_repr_hides_the_secret() -> None:
    """The repr shows the key id but no part of the secret."""
    generator = KeyGenerator(NEW_SECRET)
    text = repr(generator)
    assert generator.key_id.hex() in text
    for start in range(0, len(NEW_SECRET) - 8, 4):
        assert NEW_SECRET[start : start + 8] not in text
    assert NEW_SECRET not in repr(Keyring([NEW_SECRET, OLD_SECRET]))
    assert OLD_SECRET[:16] not in repr(Keyring([NEW_SECRET, OLD_SECRET]))


# --- secret validation ----------------------------------------------------------------


@pytest.mark.parametrize(
    "secret",
    ["", "s3cr3t", "x7Qp" * 7 + "abc", secrets.token_hex(15), b"\x8f\x11" * 15 + b"z"],
    ids=["empty", "tiny", "31-chars", "30-hex", "31-bytes"],
)
def test_short_secrets_are_refused(secret: str | bytes) -> None:
    """A secret under 32 bytes is refused, with its length and how to make a good one."""
    size = len(secret.encode() if isinstance(secret, str) else secret)
    with pytest.raises(ConfigurationError) as excinfo:
        KeyGenerator(secret)
    message = str(excinfo.value)
    assert f"{size} bytes" in message
    assert "at least 32" in message
    assert "python -m asgisession secret" in message


def test_thirty_two_bytes_is_enough() -> None:
    """The length limit sits exactly at 32 bytes."""
    assert 4 == len(KeyGenerator(NEW_SECRET[:32]).key_id)
    with pytest.raises(ConfigurationError, match="31 bytes"):
        KeyGenerator(NEW_SECRET[:31])


PAD = "9f86d081884c7d659a2feaa0c55ad015"


@pytest.mark.parametrize(
    ("secret", "fragment"),
    [
        (f"changeme-{PAD}", "changeme"),
        (f"CHANGEME_{PAD}", "changeme"),
        (f"{PAD}-change-me", "change-me"),
        (f"replace_me_with_{PAD}", "replace_me"),
        (f"your-secret-key-{PAD}", "your-secret"),
        (f"insecure-dev-key-{PAD}", "insecure"),
        (f"placeholder{PAD}", "placeholder"),
        (f"secret_key_base={PAD}", "secret_key_base"),
        (f"example-{PAD}", "example"),
    ],
)
def test_placeholder_secrets_are_refused(secret: str, fragment: str) -> None:
    """A long secret that contains a placeholder word is refused, naming the word."""
    with pytest.raises(ConfigurationError) as excinfo:
        KeyGenerator(secret)
    message = str(excinfo.value)
    assert f"placeholder ({fragment})" in message
    assert "python -m asgisession secret" in message


@pytest.mark.parametrize(
    ("secret", "count"),
    [("a" * 64, 1), ("ab" * 32, 2), (b"\x00" * 32, 1), ("abcdefg" * 6, 7), ("1234" * 10, 4)],
)
def test_low_diversity_secrets_are_refused(secret: str | bytes, count: int) -> None:
    """A secret made of fewer than 8 distinct characters is refused, saying so."""
    with pytest.raises(ConfigurationError, match=f"only {count} distinct characters"):
        KeyGenerator(secret)


@pytest.mark.parametrize(
    "secret",
    [
        "abcdefgh" * 8,
        "Ab3$xY9!" * 5,
        "abcdefgh" * 4 + "abcd",
        b"\x01\x02\x03\x04\xf5\xf6\xf7\xf8" * 4,
    ],
    ids=["x8", "x5", "partial-repeat", "bytes"],
)
def test_short_repeated_patterns_are_refused(secret: str | bytes) -> None:
    """A secret that repeats an 8-character pattern is refused, naming the period."""
    with pytest.raises(ConfigurationError, match="a pattern of 8 characters, repeated"):
        KeyGenerator(secret)


@pytest.mark.parametrize(
    "secret",
    [
        secrets.token_hex(32),
        secrets.token_hex(64),
        secrets.token_bytes(32),
        NEW_SECRET.encode(),
    ],
    ids=["token_hex(32)", "token_hex(64)", "token_bytes(32)", "bytes"],
)
def test_good_secrets_are_accepted(secret: str | bytes) -> None:
    """Random secrets pass validation."""
    assert 4 == len(KeyGenerator(secret).key_id)


@pytest.mark.parametrize(
    ("secret", "period"),
    [
        ("0123456789abcdef" * 2, 16),  # the issue's example: 16 distinct characters
        ("0123456789abcdef" * 8, 16),  # the secret Rails' own tests use
        ("0123456789abcdef" * 2 + "0123", 16),
        ("Kp3vX9qLm2Wz8RtY" * 2, 16),
        (secrets.token_hex(16) * 2, 32),
        (secrets.token_hex(24) * 2, 48),
    ],
    ids=["hex16x2", "rails-test-secret", "partial-repeat", "mixed16x2", "hex32x2", "hex48x2"],
)
def test_longer_repeated_patterns_are_refused(secret: str, period: int) -> None:
    """A secret that is any pattern written twice or more is refused, naming the period."""
    with pytest.raises(ConfigurationError, match=f"a pattern of {period} characters, repeated"):
        KeyGenerator(secret)


@settings(max_examples=300, deadline=None)
@given(nbytes=st.integers(16, 96), spelling=st.sampled_from(["hex", "urlsafe", "bytes"]))
def test_random_secrets_never_look_repeated(nbytes: int, spelling: str) -> None:
    """Secrets made by the secrets module (hex, url-safe base64, raw bytes) always pass."""
    made: str | bytes
    if spelling == "hex":
        made = secrets.token_hex(nbytes)
    elif spelling == "urlsafe":
        made = secrets.token_urlsafe(max(nbytes, 32))
    else:
        made = secrets.token_bytes(max(nbytes, 32))
    assert 4 == len(KeyGenerator(made).key_id)


@given(raw=st.binary(max_size=80) | st.text("ab", max_size=40).map(str.encode))
def test_period_is_the_shortest_repeated_pattern(raw: bytes) -> None:
    """The detector agrees with the definition: the shortest p with raw[p:] == raw[:-p],
    counted only when the pattern appears at least twice (2p <= len)."""
    expected = next((p for p in range(1, len(raw) // 2 + 1) if raw[p:] == raw[:-p]), None)
    assert expected == crypto_module._period(raw)


# --- Keyring --------------------------------------------------------------------------


def test_keyring_keeps_secrets_newest_first() -> None:
    """The first secret is the newest and seals; the order of generators is kept."""
    keyring = Keyring([NEW_SECRET, OLD_SECRET])
    assert KeyGenerator(NEW_SECRET).key_id == keyring.newest.key_id
    assert [KeyGenerator(s).key_id for s in (NEW_SECRET, OLD_SECRET)] == [
        g.key_id for g in keyring.generators
    ]


@pytest.mark.parametrize("single", [NEW_SECRET, NEW_SECRET.encode()], ids=["str", "bytes"])
def test_keyring_takes_a_single_secret(single: str | bytes) -> None:
    """A lone str or bytes secret is one secret, not a sequence of characters."""
    keyring = Keyring(single)
    assert 1 == len(keyring.generators)
    assert KeyGenerator(NEW_SECRET).key_id == keyring.newest.key_id


@pytest.mark.parametrize(
    ("secret_list", "indexes"),
    [
        ([NEW_SECRET, NEW_SECRET], "0 and 1"),
        ([NEW_SECRET, OLD_SECRET, NEW_SECRET], "0 and 2"),
        ([OLD_SECRET, NEW_SECRET, NEW_SECRET.encode()], "1 and 2"),
    ],
)
def test_keyring_refuses_duplicates(secret_list: list[str | bytes], indexes: str) -> None:
    """The same secret listed twice (even once as bytes) is refused, naming both entries."""
    with pytest.raises(ConfigurationError, match=f"entries {indexes} are the same secret"):
        Keyring(secret_list)


@pytest.mark.parametrize("empty", [[], ()], ids=["list", "tuple"])
def test_keyring_refuses_an_empty_sequence(empty: list[str] | tuple[str, ...]) -> None:
    """An empty list of secrets is refused."""
    with pytest.raises(ConfigurationError, match="empty"):
        Keyring(empty)


def test_keyring_refuses_a_weak_old_secret() -> None:
    """Every secret in the ring is validated, not only the newest."""
    with pytest.raises(ConfigurationError, match="placeholder"):
        Keyring([NEW_SECRET, "changeme" * 5])


def test_keyring_lookup_finds_each_key_id() -> None:
    """lookup gives the index of a key id, 0 for the newest, and None for a stranger."""
    keyring = Keyring([NEW_SECRET, OLD_SECRET])
    assert 0 == keyring.lookup(KeyGenerator(NEW_SECRET).key_id)
    assert 1 == keyring.lookup(KeyGenerator(OLD_SECRET).key_id)
    assert keyring.lookup(KeyGenerator(OTHER_SECRET).key_id) is None
    assert keyring.lookup(b"") is None


# --- base64url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"", ""),
        (b"A", "QQ"),
        (b"AB", "QUI"),
        (b"ABC", "QUJD"),
        (b"\xfb\xff", "-_8"),
        (b"\xfb\xef\xbe", "----"),
        (b"\xff\xff\xff", "____"),
    ],
)
def test_b64url_known_values(data: bytes, text: str) -> None:
    """Encoding is unpadded base64url, and decoding str or bytes gives the data back."""
    assert text == b64url_encode(data)
    assert data == b64url_decode(text)
    assert data == b64url_decode(text.encode())


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_b64url_round_trip(data: bytes) -> None:
    """Any bytes survive a round trip, through characters of the URL-safe alphabet only."""
    text = b64url_encode(data)
    assert re.fullmatch(r"[A-Za-z0-9_-]*", text) is not None
    assert data == b64url_decode(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("QQ==", RejectReason.NON_CANONICAL),
        ("QUI=", RejectReason.NON_CANONICAL),
        ("QUJD=", RejectReason.NON_CANONICAL),
        ("=", RejectReason.NON_CANONICAL),
        ("QQ=A", RejectReason.MALFORMED),
        ("a+bc", RejectReason.MALFORMED),
        ("ab/c", RejectReason.MALFORMED),
        ("+/+/", RejectReason.MALFORMED),
        ("QUJD\n", RejectReason.MALFORMED),
        (" QUJD", RejectReason.MALFORMED),
        ("QU JD", RejectReason.MALFORMED),
        ("QUJD\t", RejectReason.MALFORMED),
        ("QUJD\x00", RejectReason.MALFORMED),
        ("QUJDé", RejectReason.MALFORMED),
        ("QUJ\u00a0", RejectReason.MALFORMED),
        ("QUJD😀", RejectReason.MALFORMED),
        (b"QUJD\xff", RejectReason.MALFORMED),
        ("QUJD.", RejectReason.MALFORMED),
        ("A", RejectReason.MALFORMED),
        ("QUJDR", RejectReason.MALFORMED),
        ("QUJDRUZHS", RejectReason.MALFORMED),
        ("QR", RejectReason.NON_CANONICAL),
        ("QUJ", RejectReason.NON_CANONICAL),
        ("QUJDRB", RejectReason.NON_CANONICAL),
        ("__", RejectReason.NON_CANONICAL),
    ],
)
def test_b64url_decode_rejects_non_canonical_spellings(
    text: str | bytes, reason: RejectReason
) -> None:
    """Padding, the standard alphabet, junk, impossible lengths and stray bits are refused."""
    with pytest.raises(InvalidMessage) as excinfo:
        b64url_decode(text)
    assert reason == excinfo.value.reason


def test_stdlib_accepts_what_b64url_decode_refuses() -> None:
    """The refused spellings really are ones a lenient decoder would take (the test has teeth)."""
    assert b"A" == base64.urlsafe_b64decode("QR==")
    assert b"A" == base64.urlsafe_b64decode("QQ==")
    assert b"ABC" == base64.b64decode("QU JD\n")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=B64URL_ALPHABET + "=+/ \n.", max_size=40))
def test_b64url_decode_accepts_only_the_canonical_spelling(text: str) -> None:
    """Whatever decodes re-encodes to exactly the same text; all else is InvalidMessage."""
    try:
        data = b64url_decode(text)
    except InvalidMessage as exc:
        reason = exc.reason
    else:
        assert text == b64url_encode(data)
        return
    assert reason in {RejectReason.MALFORMED, RejectReason.NON_CANONICAL}


# --- the two message formats ----------------------------------------------------------


@CODEC_CLASSES
@pytest.mark.parametrize(
    "payload", [b"", PAYLOAD, bytes(range(256)), b"x" * 3000], ids=["empty", "json", "bin", "3k"]
)
def test_seal_then_open_round_trips(codec_cls: CodecClass, payload: bytes) -> None:
    """A sealed payload opens with its payload, timestamps and key index 0, not stale."""
    codec = make(codec_cls, NEW_SECRET)
    token = seal(codec, payload)
    assert Opened(payload, ISSUED_AT, EXPIRES_AT, 0, False) == codec.open(
        token, purpose=PURPOSE, now=NOW
    )
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token) is not None


@CODEC_CLASSES
def test_frame_header_layout(codec_cls: CodecClass) -> None:
    """The frame starts with version, key id, purpose digest, issued and expiry, big-endian."""
    codec = make(codec_cls, NEW_SECRET, OLD_SECRET)
    frame = b64url_decode(seal(codec))
    version = VERSION_GCM if codec_cls is MessageEncryptor else VERSION_SIGNED
    expected = struct.pack(
        ">B4s8sQQ",
        version,
        KeyGenerator(NEW_SECRET).key_id,
        hashlib.sha256(PURPOSE.encode()).digest()[:8],
        ISSUED_AT,
        EXPIRES_AT,
    )
    assert 29 == HEADER_SIZE
    assert expected == frame[:HEADER_SIZE]


def test_frame_sizes() -> None:
    """Encrypted frames carry nonce and tag; signed frames carry the payload and a MAC."""
    encrypted = b64url_decode(seal(make(MessageEncryptor, NEW_SECRET)))
    signed = b64url_decode(seal(make(MessageVerifier, NEW_SECRET)))
    assert HEADER_SIZE + NONCE_SIZE + len(PAYLOAD) + TAG_SIZE == len(encrypted)
    assert HEADER_SIZE + len(PAYLOAD) + MAC_SIZE == len(signed)


@CODEC_CLASSES
@pytest.mark.parametrize(
    ("now", "opens"),
    [(EXPIRES_AT - 1, True), (EXPIRES_AT, False), (EXPIRES_AT + 1, False), (2**63, False)],
)
def test_expiry_is_absolute_from_expires_at(codec_cls: CodecClass, now: int, opens: bool) -> None:
    """A message opens until the second before expires_at and is EXPIRED from then on."""
    codec = make(codec_cls, NEW_SECRET)
    token = seal(codec)
    if opens:
        assert PAYLOAD == codec.open(token, purpose=PURPOSE, now=now).payload
    else:
        assert RejectReason.EXPIRED == reason_of(codec, token, now=now)


@CODEC_CLASSES
@pytest.mark.parametrize(
    ("ahead", "opens"),
    [(0, True), (MAX_CLOCK_SKEW, True), (MAX_CLOCK_SKEW + 1, False), (86400, False)],
)
def test_issue_time_in_the_future_is_refused_beyond_the_skew(
    codec_cls: CodecClass, ahead: int, opens: bool
) -> None:
    """A message issued up to MAX_CLOCK_SKEW seconds ahead of the reader opens; later ones
    are ISSUED_IN_FUTURE (a fast clock, or a value sealed for a future time)."""
    codec = make(codec_cls, NEW_SECRET)
    token = codec.seal(PAYLOAD, purpose=PURPOSE, issued_at=NOW + ahead, expires_at=NOW + 7 * 86400)
    if opens:
        assert NOW + ahead == codec.open(token, purpose=PURPOSE, now=NOW).issued_at
    else:
        assert RejectReason.ISSUED_IN_FUTURE == reason_of(codec, token)


@CODEC_CLASSES
@pytest.mark.parametrize("other", ["other", "Session", "session ", ""])
def test_wrong_purpose_is_refused(codec_cls: CodecClass, other: str) -> None:
    """A message sealed for one purpose does not open for another."""
    codec = make(codec_cls, NEW_SECRET)
    assert RejectReason.WRONG_PURPOSE == reason_of(codec, seal(codec), purpose=other)


@CODEC_CLASSES
def test_removed_key_is_unknown(codec_cls: CodecClass) -> None:
    """Once its secret leaves the ring, a message is refused as UNKNOWN_KEY."""
    token = seal(make(codec_cls, OLD_SECRET))
    assert RejectReason.UNKNOWN_KEY == reason_of(make(codec_cls, NEW_SECRET), token)
    assert RejectReason.UNKNOWN_KEY == reason_of(make(codec_cls, NEW_SECRET, OTHER_SECRET), token)


@CODEC_CLASSES
def test_older_key_still_opens_with_its_index(codec_cls: CodecClass) -> None:
    """A message under a rotated-out (but listed) secret opens: key index 1, stale."""
    token = seal(make(codec_cls, OLD_SECRET))
    opened = make(codec_cls, NEW_SECRET, OLD_SECRET).open(token, purpose=PURPOSE, now=NOW)
    assert Opened(PAYLOAD, ISSUED_AT, EXPIRES_AT, 1, True) == opened
    third = make(codec_cls, NEW_SECRET, OTHER_SECRET, OLD_SECRET)
    assert 2 == third.open(token, purpose=PURPOSE, now=NOW).key_index


@CODEC_CLASSES
def test_newest_key_seals(codec_cls: CodecClass) -> None:
    """With several secrets, the first one seals: only a ring holding it can open."""
    token = seal(make(codec_cls, NEW_SECRET, OLD_SECRET))
    assert 0 == make(codec_cls, NEW_SECRET).open(token, purpose=PURPOSE, now=NOW).key_index
    assert RejectReason.UNKNOWN_KEY == reason_of(make(codec_cls, OLD_SECRET), token)
    assert KeyGenerator(NEW_SECRET).key_id == b64url_decode(token)[1:5]


@CODEC_CLASSES
def test_key_purpose_separates_keys(codec_cls: CodecClass) -> None:
    """Codecs with different key purposes on the same secret cannot open each other's tokens."""
    keyring = Keyring(NEW_SECRET)
    sealer = codec_cls(keyring, key_purpose="session")
    opener = codec_cls(keyring, key_purpose="cookie-jar")
    assert RejectReason.BAD_TAG == reason_of(opener, seal(sealer))


def test_nonces_are_96_bit_and_distinct() -> None:
    """10,000 seals of one payload use 10,000 distinct 12-byte nonces."""
    codec = make(MessageEncryptor, NEW_SECRET)
    frames = [b64url_decode(seal(codec)) for _ in range(10_000)]
    nonces = {frame[HEADER_SIZE : HEADER_SIZE + NONCE_SIZE] for frame in frames}
    assert 12 == NONCE_SIZE
    assert 10_000 == len(nonces)
    assert 10_000 == len({frame[HEADER_SIZE + NONCE_SIZE :] for frame in frames})


def test_encrypted_payload_is_hidden() -> None:
    """The encrypted format does not show the payload, nor any long piece of it."""
    frame = b64url_decode(seal(make(MessageEncryptor, NEW_SECRET)))
    for start in range(len(PAYLOAD) - 4):
        assert PAYLOAD[start : start + 5] not in frame


def test_signed_payload_is_readable() -> None:
    """The signed format carries the payload in clear after base64url-decoding."""
    frame = b64url_decode(seal(make(MessageVerifier, NEW_SECRET)))
    assert PAYLOAD == frame[HEADER_SIZE:-MAC_SIZE]


@CODEC_CLASSES
def test_tampering_any_byte_is_refused(codec_cls: CodecClass) -> None:
    """Changing any one byte of the frame is refused, for the reason its region implies."""
    codec = make(codec_cls, NEW_SECRET)
    frame = b64url_decode(seal(codec))
    expected: dict[int, set[RejectReason]] = {}
    actual: dict[int, set[RejectReason]] = {}
    for index in range(len(frame)):
        if index == 0:
            expected[index] = {RejectReason.MALFORMED}
        elif index < 5:
            expected[index] = {RejectReason.UNKNOWN_KEY}
        else:
            expected[index] = {RejectReason.BAD_TAG}
        for mask in (0x01, 0x80, 0xFF):
            tampered = bytearray(frame)
            tampered[index] ^= mask
            reason = reason_of(codec, b64url_encode(bytes(tampered)))
            actual.setdefault(index, set()).add(reason)
    assert expected == actual


@CODEC_CLASSES
@pytest.mark.parametrize(
    "change",
    [
        lambda frame: frame[:-1],
        lambda frame: frame + b"\x00",
        lambda frame: frame[:HEADER_SIZE],
        lambda frame: frame[: HEADER_SIZE + 27],
        lambda frame: b"",
        lambda frame: frame[:1],
    ],
    ids=["drop-last", "append", "header-only", "one-short", "empty", "version-only"],
)
def test_resized_frames_are_refused(
    codec_cls: CodecClass, change: Callable[[bytes], bytes]
) -> None:
    """A frame with bytes added or removed never opens."""
    codec = make(codec_cls, NEW_SECRET)
    frame = b64url_decode(seal(codec))
    reason = reason_of(codec, b64url_encode(change(frame)))
    assert reason in {RejectReason.BAD_TAG, RejectReason.MALFORMED}


def test_encrypted_token_does_not_open_as_signed() -> None:
    """The verifier refuses an encrypted token by its version byte, and vice versa."""
    keyring = Keyring(NEW_SECRET)
    encryptor, verifier = MessageEncryptor(keyring), MessageVerifier(keyring)
    assert RejectReason.MALFORMED == reason_of(verifier, seal(encryptor, b"x" * 100))
    assert RejectReason.MALFORMED == reason_of(encryptor, seal(verifier, b"x" * 100))


@CODEC_CLASSES
@pytest.mark.parametrize("token", ["", "not a token", "....", "A", "AAAA" * 30, "=" * 8])
def test_garbage_tokens_are_malformed(codec_cls: CodecClass, token: str) -> None:
    """Tokens that are not base64url, or decode to a foreign frame, are refused early."""
    reason = reason_of(make(codec_cls, NEW_SECRET), token)
    assert reason in {RejectReason.MALFORMED, RejectReason.NON_CANONICAL}


# --- property tests: nothing but the sealed token opens ---------------------------------

ENCRYPTOR = make(MessageEncryptor, NEW_SECRET, OLD_SECRET)
VERIFIER = make(MessageVerifier, NEW_SECRET, OLD_SECRET)
FUZZ_CODECS = pytest.mark.parametrize("codec", [ENCRYPTOR, VERIFIER], ids=["encrypted", "signed"])
FUZZ = settings(max_examples=200, deadline=None)
payloads = st.binary(max_size=64)


@FUZZ_CODECS
@FUZZ
@given(payload=payloads, data=st.data())
def test_any_bit_flip_is_refused(codec: Codec, payload: bytes, data: st.DataObject) -> None:
    """Flipping any single bit of the decoded frame only ever raises InvalidMessage."""
    frame = bytearray(b64url_decode(seal(codec, payload)))
    bit = data.draw(st.integers(0, len(frame) * 8 - 1), label="bit")
    frame[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidMessage):
        codec.open(b64url_encode(bytes(frame)), purpose=PURPOSE, now=NOW)


@FUZZ_CODECS
@FUZZ
@given(payload=payloads, data=st.data())
def test_any_truncation_is_refused(codec: Codec, payload: bytes, data: st.DataObject) -> None:
    """Cutting characters off either end of a token only ever raises InvalidMessage."""
    token = seal(codec, payload)
    cut = data.draw(st.integers(1, len(token)), label="cut")
    truncated = token[cut:] if data.draw(st.booleans(), label="front") else token[:-cut]
    with pytest.raises(InvalidMessage):
        codec.open(truncated, purpose=PURPOSE, now=NOW)


def _respell(token: str, how: str, data: st.DataObject) -> str:
    if how == "padding":
        return token + "=" * data.draw(st.integers(1, 3), label="pads")
    if how == "std-alphabet":
        return token.translate(str.maketrans("-_", "+/"))
    if how == "std-base64":
        return base64.b64encode(b64url_decode(token)).decode()
    if how == "swap-case":
        index = data.draw(st.integers(0, len(token) - 1), label="index")
        return token[:index] + token[index].swapcase() + token[index + 1 :]
    junk = data.draw(st.text(min_size=1, max_size=3), label="junk")
    index = data.draw(st.integers(0, len(token)), label="index")
    return token[:index] + junk + token[index:]


@FUZZ_CODECS
@FUZZ
@given(
    payload=payloads,
    how=st.sampled_from(["padding", "std-alphabet", "std-base64", "swap-case", "insert"]),
    data=st.data(),
)
def test_any_other_spelling_is_refused(
    codec: Codec, payload: bytes, how: str, data: st.DataObject
) -> None:
    """Re-spelling a valid token (padding, '+/', junk, case) only ever raises InvalidMessage."""
    token = seal(codec, payload)
    respelled = _respell(token, how, data)
    if respelled == token:  # e.g. no '-' or '_' to swap, or no letter at that index
        assert how in {"std-alphabet", "std-base64", "swap-case"}
        return
    with pytest.raises(InvalidMessage):
        codec.open(respelled, purpose=PURPOSE, now=NOW)


# --- source check: MACs and tags are compared in constant time --------------------------

SENSITIVE = {
    "mac", "macs", "hmac", "digest", "digests", "hexdigest", "tag", "tags",
    "signature", "signatures", "sig", "sigs",
}  # fmt: skip
FLAGGED_OPS = (ast.Eq, ast.NotEq, ast.In, ast.NotIn)


def _words(identifier: str) -> set[str]:
    split = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", identifier)
    return {word for word in split.lower().split("_") if word}


def _mentions_secret_bytes(node: ast.AST) -> bool:
    """Whether an operand names a MAC, digest, tag or signature (lengths and constants aside)."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "len":
        return False
    if isinstance(node, ast.Name):
        return not node.id.isupper() and bool(_words(node.id) & SENSITIVE)
    if (
        isinstance(node, ast.Attribute)
        and not node.attr.isupper()
        and _words(node.attr) & SENSITIVE
    ):
        return True
    return any(_mentions_secret_bytes(child) for child in ast.iter_child_nodes(node))


def variable_time_comparisons(source: str, filename: str = "<test>") -> list[str]:
    """``file:line`` of each ==/!=/in comparison whose operands mention secret bytes."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Compare):
            continue
        if not any(isinstance(op, FLAGGED_OPS) for op in node.ops):
            continue
        if any(_mentions_secret_bytes(operand) for operand in [node.left, *node.comparators]):
            found.append(f"{filename}:{node.lineno}: {ast.unparse(node)}")
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "ok = mac == expected",
        "ok = expected != mac",
        "ok = expected_mac != hmac.digest(key, msg, 'sha256')",
        "ok = hashlib.sha256(x).digest() == y",
        "ok = sig == compute(x)",
        "ok = self._tag == other",
        "ok = body[-32:] == self.signature",
        "ok = given in known_macs",
        "ok = expectedMac == given",
        "ok = a == b == auth_tag",
    ],
)
def test_checker_flags_variable_time_comparisons(snippet: str) -> None:
    """The source checker catches the comparisons it is meant to catch."""
    assert 1 == len(variable_time_comparisons(snippet))


@pytest.mark.parametrize(
    "snippet",
    [
        "ok = hmac.compare_digest(mac, expected)",
        "ok = frame[0] != version",
        "ok = len(mac) == MAC_SIZE",
        "ok = stage == 'x'",
        "ok = tagline == 'x'",
        "ok = digest is None",
        "ok = len(frame) < HEADER_SIZE + MAC_SIZE",
    ],
)
def test_checker_passes_constant_time_and_unrelated_code(snippet: str) -> None:
    """The source checker does not flag compare_digest, lengths or look-alike names."""
    assert [] == variable_time_comparisons(snippet)


def _package_sources() -> list[Path]:
    return sorted(Path(asgisession.__file__).parent.rglob("*.py"))


def test_package_compares_macs_in_constant_time() -> None:
    """No module of the package compares MACs, tags or digests with ==, != or in."""
    sources = _package_sources()
    assert "crypto.py" in {path.name for path in sources}
    found = [
        hit
        for path in sources
        for hit in variable_time_comparisons(path.read_text("utf-8"), str(path))
    ]
    assert [] == found


def _compare_digest_calls(node: ast.AST) -> int:
    return sum(
        1
        for child in ast.walk(node)
        if isinstance(child, ast.Call)
        and isinstance(child.func, ast.Attribute | ast.Name)
        and (child.func.attr if isinstance(child.func, ast.Attribute) else child.func.id)
        == "compare_digest"
    )


def test_verifier_and_purpose_check_use_compare_digest() -> None:
    """The MAC check and the purpose-digest check really call hmac.compare_digest."""
    tree = ast.parse(Path(crypto_module.__file__).read_text("utf-8"))
    functions = {
        f"{cls.name}.{fn.name}": fn
        for cls in tree.body
        if isinstance(cls, ast.ClassDef)
        for fn in cls.body
        if isinstance(fn, ast.FunctionDef)
    }
    assert 1 <= _compare_digest_calls(functions["MessageVerifier.open"])
    assert 1 <= _compare_digest_calls(functions["_FramedCodec._check"])


def test_b64url_decode_every_two_character_string() -> None:
    """Of all 4,096 two-character strings, exactly the 256 canonical ones decode."""
    decoded = {}
    reasons = set()
    for first in B64URL_ALPHABET:
        for second in B64URL_ALPHABET:
            try:
                decoded[first + second] = b64url_decode(first + second)
            except InvalidMessage as exc:
                reasons.add(exc.reason)
    assert {RejectReason.NON_CANONICAL} == reasons
    assert {b64url_encode(bytes([n])): bytes([n]) for n in range(256)} == decoded


@pytest.mark.parametrize("wrap", [bytearray, memoryview], ids=["bytearray", "memoryview"])
def test_keyring_takes_one_bytes_like_secret(wrap: Callable[[bytes], object]) -> None:
    """A bytearray or memoryview is one secret, not a list of one-byte secrets."""
    raw = secrets.token_bytes(32)
    ring = Keyring(wrap(raw))  # type: ignore[arg-type]
    assert KeyGenerator(raw).key_id == ring.newest.key_id
    assert 1 == len(ring.generators)


def test_derive_binds_the_length() -> None:
    """A shorter key for the same purpose is not a prefix of the longer one."""
    generator = KeyGenerator(secrets.token_hex(32))
    assert generator.derive("p", 32)[:16] != generator.derive("p", 16)
