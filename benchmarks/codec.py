"""What one session cookie costs to write and to read, next to the primitives it is made of.

Run it with ``tox -e bench`` or ``python benchmarks/codec.py [--quick] [--out PATH]`` in an
environment where asgisession and the ``bench`` dependency group are installed.

For three sessions (about 50 B, 1 KB and 3 KB of JSON) it times:

json
    stdlib ``json`` (compact separators, ``ensure_ascii=False``, to and from UTF-8 bytes)
    against ``msgspec.json``: the choice made in ``asgisession/serializer.py``.
encrypted, signed
    asgisession's whole cookie codec: ``serializer.dumps`` + ``MessageEncryptor.seal``
    (or ``MessageVerifier.seal``) to write, ``open`` + ``serializer.loads`` to read.
floor
    The primitives on the same payload bytes: bare ``AESGCM.encrypt``/``decrypt`` with a
    fixed key and a fixed nonce (so no ``os.urandom``, no associated data), bare
    ``hmac.digest(key, payload, "sha256")``, and ``base64.urlsafe_b64encode`` alone.
    asgisession is reported as a multiple of these: AES-GCM for the encrypted format,
    HMAC-SHA256 for the signed one.
starlette
    What ``starlette/middleware/sessions.py`` does, replayed outside the middleware:
    ``b64encode(json.dumps(session).encode())`` signed by ``itsdangerous.TimestampSigner``
    (HMAC-SHA1, key derived again on every call), and ``unsign(max_age=...)`` + ``b64decode``
    + ``json.loads`` to read. Compared with the HMAC-SHA256 floor.

Method: every candidate is first calibrated to a batch of N calls lasting about
``batch_ms``; then, for several rounds, each candidate in turn (round-robin, the starting
candidate rotating each round) times one batch with ``time.perf_counter_ns``. The
reported figure is the median over rounds of the batch time divided by N; p25/p75 and
every sample go into the JSON file. A ratio to a baseline is the median of the per-round
ratios, each taken between two batches of the same round, so drift in machine speed
between rounds cancels out. Each call goes through one Python function call and
the loop, which is measured separately ("call overhead") and not subtracted. The garbage
collector is paused during a batch, as ``timeit`` does. Every decoder's output is checked
against the original session before anything is timed.
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import hmac
import importlib.metadata
import itertools
import json
import os
import platform
import statistics
import sys
import time
from base64 import b64decode, b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import itsdangerous
import msgspec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from asgisession import serializer
from asgisession.crypto import Keyring, MessageCodec, MessageEncryptor, MessageVerifier

DEFAULT_OUT = Path(__file__).resolve().parent / "results" / "codec.json"
#: (label, target JSON bytes). 3000 B is about the most one 4096-byte cookie can carry
#: once sealed and base64-encoded, so the largest session is a realistic worst case.
SIZES = (("50B", 50), ("1KB", 1024), ("3KB", 3000))
COOKIE_NAME = "session"
ISSUED_AT = 1_750_000_000
EXPIRES_AT = ISSUED_AT + 14 * 24 * 3600
STARLETTE_MAX_AGE = 14 * 24 * 3600
NOISY = 0.25  # an iqr above this share of the median gets a warning
# A fixed, well-formed secret: the benchmark must be repeatable, and nothing here is secret.
SECRET = hashlib.sha512(b"asgisession benchmark secret").hexdigest()
FLOOR_KEY = hashlib.sha256(b"asgisession benchmark floor key").digest()
FLOOR_NONCE = bytes(12)  # a fixed nonce is only acceptable because nothing is kept

Thunk = Callable[[], object]


@dataclass(frozen=True)
class Mode:
    rounds: int
    batch_ms: float
    warmup_batches: int


FULL = Mode(rounds=40, batch_ms=20.0, warmup_batches=2)
QUICK = Mode(rounds=7, batch_ms=5.0, warmup_batches=1)


@dataclass
class Candidate:
    size: str
    group: str  # json, encrypted, signed, floor, starlette
    op: str  # encode, decode
    name: str
    fn: Thunk
    baseline: str | None = None  # the name of a candidate of the same size to divide by
    n: int = 0
    samples_us: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.size}/{self.name}"


# -- the sessions ---------------------------------------------------------------------------


def _json_size(data: dict[str, Any]) -> int:
    return len(serializer.dumps(data))


def make_session(target: int) -> dict[str, Any]:
    """A plausible session whose compact JSON is ``target`` bytes (or just over, if tiny)."""
    data: dict[str, Any] = {"user_id": 48213, "_fresh": True}
    if target >= 200:
        data["_csrf_token"] = base64.urlsafe_b64encode(hashlib.sha256(b"csrf").digest())[
            :43
        ].decode()
        data["flash"] = [["notice", "Bienvenue, Zoë ! Vous êtes connectée."]]
        data["prefs"] = {"theme": "dark", "lang": "fr-CA", "tz": "America/Montréal", "rows": 50}
        cart: list[dict[str, Any]] = []
        data["cart"] = cart
        for i in itertools.count():
            item = {"sku": f"SKU-{i:05d}", "qty": 1 + i % 3, "price": 9.5 + i, "gift": i % 4 == 0}
            cart.append(item)
            if _json_size(data) > target - 40:
                cart.pop()
                break
    # Pad with a last search query so every size is exact (ASCII: one byte per character).
    data["q"] = ""
    missing = target - _json_size(data)
    words = itertools.cycle(("session", "cookie", "encrypted", "asgi", "middleware"))
    query = ""
    while len(query) < missing:
        query += next(words) + " "
    data["q"] = query[: max(0, missing)]
    return data


# -- the candidates -------------------------------------------------------------------------


def _stdlib_dumps(data: dict[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def build_candidates(
    label: str,
    data: dict[str, Any],
    encryptor: MessageCodec,
    verifier: MessageCodec,
    signer: itsdangerous.TimestampSigner,
) -> tuple[list[Candidate], dict[str, int]]:
    """All candidates for one session, each checked to round-trip before it is timed."""
    payload = serializer.dumps(data)
    now = ISSUED_AT + 1
    msgspec_encoder = msgspec.json.Encoder()
    msgspec_decoder = msgspec.json.Decoder()
    aead = AESGCM(FLOOR_KEY)
    hmac_key = FLOOR_KEY

    def asgisession_seal(codec: MessageCodec) -> str:
        return codec.seal(
            serializer.dumps(data), purpose=COOKIE_NAME, issued_at=ISSUED_AT, expires_at=EXPIRES_AT
        )

    def asgisession_open(codec: MessageCodec, token: str) -> dict[str, Any]:
        return serializer.loads(codec.open(token, purpose=COOKIE_NAME, now=now).payload)

    def starlette_encode() -> str:
        # starlette/middleware/sessions.py: b64encode(json.dumps(session).encode("utf-8")),
        # then self.signer.sign(data), then data.decode("utf-8") into the header.
        return signer.sign(b64encode(json.dumps(data).encode("utf-8"))).decode("utf-8")

    def starlette_decode(cookie: str) -> Any:
        # connection.cookies[name].encode("utf-8"), signer.unsign(data, max_age=...),
        # json.loads(b64decode(data)).
        unsigned = signer.unsign(cookie.encode("utf-8"), max_age=STARLETTE_MAX_AGE)
        return json.loads(b64decode(unsigned))

    encrypted_token = asgisession_seal(encryptor)
    signed_token = asgisession_seal(verifier)
    starlette_cookie = starlette_encode()
    ciphertext = aead.encrypt(FLOOR_NONCE, payload, None)
    stdlib_payload = _stdlib_dumps(data)

    # Every decoder must give the session back, or its timing means nothing.
    checks: dict[str, object] = {
        "stdlib json": json.loads(stdlib_payload),
        "msgspec": msgspec_decoder.decode(msgspec_encoder.encode(data)),
        "encrypted": asgisession_open(encryptor, encrypted_token),
        "signed": asgisession_open(verifier, signed_token),
        "starlette": starlette_decode(starlette_cookie),
    }
    for what, decoded in checks.items():
        if decoded != data:
            raise SystemExit(f"{label}: {what} does not round-trip the session; fix the benchmark")
    if aead.decrypt(FLOOR_NONCE, ciphertext, None) != payload:
        raise SystemExit(f"{label}: AESGCM floor does not round-trip")
    if len(stdlib_payload) != len(payload):
        raise SystemExit(f"{label}: stdlib and msgspec JSON differ in size; compare like with like")

    def c(group: str, op: str, name: str, fn: Thunk, baseline: str | None = None) -> Candidate:
        return Candidate(label, group, op, name, fn, baseline)

    candidates = [
        c("json", "encode", "stdlib json.dumps", lambda: _stdlib_dumps(data), "msgspec encode"),
        c("json", "encode", "msgspec encode", lambda: msgspec_encoder.encode(data)),
        c("json", "decode", "stdlib json.loads", lambda: json.loads(payload), "msgspec decode"),
        c("json", "decode", "msgspec decode", lambda: msgspec_decoder.decode(payload)),
        c("encrypted", "encode", "asgisession encrypted encode",
          lambda: asgisession_seal(encryptor), "AESGCM.encrypt"),
        c("encrypted", "decode", "asgisession encrypted decode",
          lambda: asgisession_open(encryptor, encrypted_token), "AESGCM.decrypt"),
        c("signed", "encode", "asgisession signed encode",
          lambda: asgisession_seal(verifier), "hmac sha256"),
        c("signed", "decode", "asgisession signed decode",
          lambda: asgisession_open(verifier, signed_token), "hmac sha256"),
        c("floor", "encode", "AESGCM.encrypt", lambda: aead.encrypt(FLOOR_NONCE, payload, None)),
        c("floor", "decode", "AESGCM.decrypt", lambda: aead.decrypt(FLOOR_NONCE, ciphertext, None)),
        c("floor", "encode", "hmac sha256", lambda: hmac.digest(hmac_key, payload, "sha256")),
        c("floor", "encode", "urlsafe_b64encode", lambda: base64.urlsafe_b64encode(payload)),
        c("starlette", "encode", "starlette encode", starlette_encode, "hmac sha256"),
        c("starlette", "decode", "starlette decode",
          lambda: starlette_decode(starlette_cookie), "hmac sha256"),
    ]  # fmt: skip
    cookie_chars = {
        "json_bytes": len(payload),
        "encrypted_cookie_chars": len(encrypted_token),
        "signed_cookie_chars": len(signed_token),
        "starlette_cookie_chars": len(starlette_cookie),
    }
    return candidates, cookie_chars


# -- timing ---------------------------------------------------------------------------------


def time_batch(fn: Thunk, n: int) -> int:
    """Nanoseconds for ``n`` calls of ``fn``, with the garbage collector paused."""
    loop = itertools.repeat(None, n)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter_ns()
        for _ in loop:
            fn()
        return time.perf_counter_ns() - start
    finally:
        if gc_was_enabled:
            gc.enable()


def calibrate(fn: Thunk, batch_ns: float) -> int:
    """How many calls make one batch of about ``batch_ns``."""
    n = 1
    while True:
        elapsed = time_batch(fn, n)
        if elapsed >= batch_ns / 5:
            return max(1, round(n * batch_ns / elapsed))
        n *= 4


def _noop() -> None:
    return None


def run(candidates: list[Candidate], mode: Mode, progress: Callable[[str], None]) -> float:
    """Time every candidate round-robin; return the per-call overhead in microseconds."""
    batch_ns = mode.batch_ms * 1e6
    overhead = Candidate("-", "overhead", "call", "call overhead", _noop)
    everyone = [*candidates, overhead]
    for index, candidate in enumerate(everyone, 1):
        candidate.n = calibrate(candidate.fn, batch_ns)
        for _ in range(mode.warmup_batches):
            time_batch(candidate.fn, candidate.n)
        progress(f"calibrated {index}/{len(everyone)}")
    for round_index in range(mode.rounds):
        shift = round_index % len(everyone)
        for candidate in everyone[shift:] + everyone[:shift]:
            elapsed = time_batch(candidate.fn, candidate.n)
            candidate.samples_us.append(elapsed / candidate.n / 1000)
        progress(f"round {round_index + 1}/{mode.rounds}")
    return statistics.median(overhead.samples_us)


# -- reporting ------------------------------------------------------------------------------


def summarize(candidate: Candidate, by_key: dict[str, Candidate]) -> dict[str, Any]:
    samples = candidate.samples_us
    median = statistics.median(samples)
    q1, _, q3 = statistics.quantiles(samples, n=4) if len(samples) > 1 else (median,) * 3
    ratio: float | None = None
    if candidate.baseline is not None:
        # Paired by round: both batches ran within the same round, so a slow round slows both.
        baseline = by_key[f"{candidate.size}/{candidate.baseline}"]
        pairs = zip(samples, baseline.samples_us, strict=True)
        ratio = statistics.median([a / b for a, b in pairs])
    return {
        "size": candidate.size,
        "group": candidate.group,
        "op": candidate.op,
        "name": candidate.name,
        "calls_per_batch": candidate.n,
        "rounds": len(samples),
        "median_us": median,
        "ops_per_s": 1e6 / median,
        "p25_us": q1,
        "p75_us": q3,
        "min_us": min(samples),
        "max_us": max(samples),
        "mean_us": statistics.fmean(samples),
        "baseline": candidate.baseline,
        "ratio_to_baseline": ratio,
        "samples_us": samples,
    }


def render_table(
    results: list[dict[str, Any]], sessions: dict[str, dict[str, int]], overhead_us: float
) -> str:
    lines: list[str] = []
    header = f"  {'candidate':<30} {'us/op':>9} {'ops/s':>12} {'iqr':>6}   vs baseline"
    for label, _ in SIZES:
        info = sessions[label]
        lines.append(
            f"session {label}: {info['json_bytes']} B JSON -> cookie value of "
            f"{info['encrypted_cookie_chars']} chars encrypted, {info['signed_cookie_chars']} "
            f"signed, {info['starlette_cookie_chars']} starlette"
        )
        lines.append(header)
        for row in (r for r in results if r["size"] == label):
            spread = (row["p75_us"] - row["p25_us"]) / row["median_us"] * 100
            versus = ""
            if row["ratio_to_baseline"] is not None:
                versus = f"{row['ratio_to_baseline']:6.2f}x {row['baseline']}"
            lines.append(
                f"  {row['name']:<30} {row['median_us']:9.3f} {row['ops_per_s']:12,.0f} "
                f"{spread:5.1f}%   {versus}"
            )
        lines.append("")
    lines.append(
        f"median over rounds; iqr = (p75 - p25) / median; call overhead {overhead_us * 1000:.0f} ns"
        "/op is included in every figure"
    )
    noisy = [row for row in results if row["p75_us"] - row["p25_us"] > NOISY * row["median_us"]]
    if noisy:
        lines.append(
            f"warning: {len(noisy)} of {len(results)} rows have an iqr over {NOISY:.0%}: the "
            "machine was busy or the run too short; rerun before quoting those rows"
        )
    return "\n".join(lines)


def _cpu_info() -> dict[str, Any]:
    info: dict[str, Any] = {"model": platform.processor() or None, "aes_flag": None}
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Hardware", "Model") and info.get("from_proc") is None:
            info["model"] = value.strip()
            info["from_proc"] = True
        elif key in ("flags", "Features") and info["aes_flag"] is None:
            info["aes_flag"] = "aes" in value.split()
    info.pop("from_proc", None)
    return info


def machine_info() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for dist in ("asgisession", "cryptography", "msgspec", "itsdangerous", "starlette"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_info(),
        "cpu_count": os.cpu_count(),
        "usable_cpus": len(affinity(0)) if affinity is not None else None,
        "load_average_at_end": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": sys.version,
        "python_implementation": platform.python_implementation(),
        "packages": versions,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a smoke run)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"JSON file ({DEFAULT_OUT})")
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL

    started = time.perf_counter()
    interactive = sys.stderr.isatty()

    def progress(message: str) -> None:
        text = f"[{time.perf_counter() - started:6.1f}s] {message}"
        if interactive:
            print(f"\r{text:<60}", end="", file=sys.stderr, flush=True)
        elif message.startswith("round"):
            print(text, file=sys.stderr, flush=True)

    keyring = Keyring(SECRET)
    encryptor, verifier = MessageEncryptor(keyring), MessageVerifier(keyring)
    signer = itsdangerous.TimestampSigner(SECRET)  # what starlette builds from secret_key
    candidates: list[Candidate] = []
    sessions: dict[str, dict[str, int]] = {}
    for label, target in SIZES:
        found, sessions[label] = build_candidates(
            label, make_session(target), encryptor, verifier, signer
        )
        candidates += found
    print(
        f"{len(candidates)} candidates x {mode.rounds} rounds of ~{mode.batch_ms:g} ms batches"
        f" ({'quick' if args.quick else 'full'} run)",
        file=sys.stderr,
    )
    overhead_us = run(candidates, mode, progress)
    if interactive:
        print(file=sys.stderr)

    by_key = {candidate.key: candidate for candidate in candidates}
    results = [summarize(candidate, by_key) for candidate in candidates]
    print(render_table(results, sessions, overhead_us), flush=True)

    report = {
        "benchmark": "codec",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "method": {
            "mode": "quick" if args.quick else "full",
            "rounds": mode.rounds,
            "batch_target_ms": mode.batch_ms,
            "warmup_batches": mode.warmup_batches,
            "statistic": "median over rounds of (batch ns / calls per batch)",
            "ratio": "median over rounds of (candidate us/op / baseline us/op), same round",
            "interleaving": "round-robin over all candidates, start rotated each round",
            "gc": "disabled during each batch",
            "call_overhead_us": overhead_us,
            "wall_seconds": time.perf_counter() - started,
        },
        "machine": machine_info(),
        "sessions": sessions,
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
