"""Repeatable per-request measures: Python calls, memory, GC and CPU instructions.

Wall-clock A/B runs on a shared 2-core machine move by 2-4x with the load; these do not.
For each case (the requests of :mod:`benchmarks.bench_middleware`: a bare app, the
pass-through floor, asgisession's cookie store and MemoryStore untouched, read and written,
Starlette's ``SessionMiddleware``; and the encrypted codec next to its floor and Litestar):

calls
    Python frames entered (``call`` events of a :func:`sys.setprofile` hook, a resumed
    coroutine counting once per resume) and C functions called, per request.
peak KiB
    :mod:`tracemalloc`'s peak of memory held during one request above what was held
    before it (median of 200 requests).
GC per 1k
    garbage collections the request loop set off per 1000 requests with the collector on
    (its default thresholds): only objects that outlive their request (reference cycles)
    pile up enough to trigger one.
instructions, allocations (``--callgrind``)
    CPU instructions (``valgrind --tool=callgrind``) and calls into CPython's object
    allocator per request: the process runs the case ``--requests`` times and once with
    no requests, with ``PYTHONHASHSEED=0``; the difference divided by the count. Both
    repeat to within a few instructions between runs, whatever the machine's load.

``--ref REF`` also measures asgisession as of git ``REF`` (``git archive`` into a
temporary directory, first on ``sys.path`` of the child processes) and prints tree / ref;
``--tree REF`` measures a ref in place of the working tree (to A/B one past commit).

Usage::

    python -m benchmarks.profile_requests [--callgrind] [--ref main] [--only read,write]
    python -m benchmarks.profile_requests --top "cookie read"     # the frames one case enters
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
Runner = Callable[[int], None]
MIDDLEWARE = (
    "bare app",
    "pass-through",
    "cookie no cookie",
    "cookie untouched",
    "cookie read",
    "cookie write",
    "memory untouched",
    "memory read",
    "memory write",
    "starlette untouched",
    "starlette read",
    "starlette write",
)
SIZES = (("50B", 50), ("1KB", 1024), ("3KB", 3000))
CODEC = tuple(
    f"{who} {op} {size}"
    for size, _ in SIZES
    for who, op in (
        ("encrypted", "decode"),
        ("minimal", "decode"),
        ("litestar", "decode"),
        ("encrypted", "encode"),
        ("minimal", "encode"),
        ("litestar", "encode"),
    )
)
GROUPS = {"middleware": MIDDLEWARE, "codec": CODEC}


def _group_of(case: str) -> str:
    return next(group for group, cases in GROUPS.items() if case in cases)


def middleware_cases() -> dict[str, Runner]:
    """Each middleware case as ``run(n)``: n requests on one event loop, each checked once."""
    from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

    from asgisession import SessionMiddleware
    from asgisession.stores import MemoryStore

    from .bench_middleware import HEADERS, PassThrough, bare_app, batch, call, cookie_header
    from .bench_middleware import session_app as app_for
    from .codec import SECRET

    loop = asyncio.new_event_loop()
    memory = MemoryStore()

    def ours(app: Any, store: str) -> Any:
        return SessionMiddleware(app, secret_key_base=SECRET, store=memory if store else None)

    def starlette(app: Any, store: str) -> Any:
        return StarletteSessions(app, secret_key=SECRET)

    def runner(run: Callable[[int], Any]) -> Runner:
        return lambda n: loop.run_until_complete(run(n))

    found: dict[str, Runner] = {
        "bare app": runner(batch(bare_app, HEADERS)),
        "pass-through": runner(batch(PassThrough(bare_app), HEADERS)),
    }
    for prefix, wrap, store in (
        ("cookie", ours, ""),
        ("memory", ours, "memory"),
        ("starlette", starlette, ""),
    ):
        seed = loop.run_until_complete(call(wrap(app_for("seed"), store), HEADERS))
        with_cookie = [*HEADERS, (b"cookie", cookie_header(seed))]
        for scenario in ("no cookie", "untouched", "read", "write"):
            case = f"{prefix} {scenario}"
            if case not in MIDDLEWARE:
                continue
            action = "untouched" if scenario == "no cookie" else scenario
            headers = HEADERS if scenario == "no cookie" else with_cookie
            app = wrap(app_for(action), store)
            answered = loop.run_until_complete(call(app, headers))
            if scenario == "write" and prefix != "memory":
                cookie_header(answered)  # a changed cookie session is sent back
            found[case] = runner(batch(app, headers))
    return found


def codec_cases() -> dict[str, Runner]:
    """Each codec case as ``run(n)``, over :func:`benchmarks.codec.make_session` sessions."""
    import base64

    import msgspec
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from litestar.middleware.session.client_side import (
        ClientSideSessionBackend,
        CookieBackendConfig,
    )

    from asgisession import serializer
    from asgisession.crypto import Keyring, MessageEncryptor

    from .codec import COOKIE_NAME, EXPIRES_AT, FLOOR_KEY, ISSUED_AT, SECRET, make_session

    codec = MessageEncryptor(Keyring(SECRET))
    aead = AESGCM(FLOOR_KEY)
    encoder, decoder = msgspec.json.Encoder(), msgspec.json.Decoder()
    litestar = ClientSideSessionBackend(CookieBackendConfig(secret=FLOOR_KEY))
    now = ISSUED_AT + 1
    found: dict[str, Runner] = {}

    def repeat(fn: Callable[[], object]) -> Runner:
        def run(n: int) -> None:
            for _ in range(n):
                fn()

        return run

    for size, target in SIZES:
        data = make_session(target)

        def seal(data: dict[str, Any] = data) -> str:
            return codec.seal(
                serializer.dumps(data),
                purpose=COOKIE_NAME,
                issued_at=ISSUED_AT,
                expires_at=EXPIRES_AT,
            )

        token = seal()

        def open_(token: str = token) -> Any:
            return serializer.loads(codec.open(token, purpose=COOKIE_NAME, now=now).payload)

        def minimal_encode(data: dict[str, Any] = data) -> bytes:
            nonce = os.urandom(12)
            return base64.urlsafe_b64encode(nonce + aead.encrypt(nonce, encoder.encode(data), None))

        minimal_token = minimal_encode()

        def minimal_decode(minimal_token: bytes = minimal_token) -> Any:
            raw = base64.urlsafe_b64decode(minimal_token)
            return decoder.decode(aead.decrypt(raw[:12], raw[12:], None))

        litestar_cookie = litestar.dump_data(data)

        def litestar_decode(cookie: list[bytes] = litestar_cookie) -> Any:
            return litestar.load_data(cookie)

        def litestar_encode(data: dict[str, Any] = data) -> Any:
            return litestar.dump_data(data)

        for decode in (open_, minimal_decode, litestar_decode):
            if decode() != data:
                raise SystemExit(f"{size}: a decoder does not give the session back")
        found[f"encrypted decode {size}"] = repeat(open_)
        found[f"minimal decode {size}"] = repeat(minimal_decode)
        found[f"litestar decode {size}"] = repeat(litestar_decode)
        found[f"encrypted encode {size}"] = repeat(seal)
        found[f"minimal encode {size}"] = repeat(minimal_encode)
        found[f"litestar encode {size}"] = repeat(litestar_encode)
    return found


def build(group: str) -> dict[str, Runner]:
    """The group's cases, each run a few times (imports, caches, the adaptive interpreter)."""
    cases = middleware_cases() if group == "middleware" else codec_cases()
    for run in cases.values():
        run(50)
    return cases


# -- the in-process measures -------------------------------------------------------------------


def count_calls(run: Runner, n: int) -> tuple[float, float, collections.Counter[str]]:
    """Python frames entered and C functions called per request, and the frames by name."""
    frames: collections.Counter[str] = collections.Counter()
    c_calls = 0

    def hook(frame: Any, event: str, arg: Any) -> None:
        nonlocal c_calls
        if event == "call":
            code = frame.f_code
            frames[f"{Path(code.co_filename).name}:{code.co_qualname}"] += 1
        elif event == "c_call":
            c_calls += 1

    sys.setprofile(hook)
    try:
        run(n)
    finally:
        sys.setprofile(None)
    # The hook sees run() itself and the event loop's frames once per batch, not per request.
    return sum(frames.values()) / n, c_calls / n, frames


def peak_kib(run: Runner, n: int = 200) -> float:
    """Median over ``n`` requests of tracemalloc's peak during one request, in KiB."""
    peaks = []
    tracemalloc.start()
    try:
        for _ in range(n):
            before = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            run(1)
            peaks.append(tracemalloc.get_traced_memory()[1] - before)
    finally:
        tracemalloc.stop()
    return statistics.median(peaks) / 1024


def gc_per_thousand(run: Runner, n: int = 5000) -> tuple[float, float]:
    """Collections set off per 1000 requests, and objects they freed per request."""
    runs = collected = 0

    def note(phase: str, info: dict[str, int]) -> None:
        nonlocal runs, collected
        if phase == "stop":
            runs += 1
            collected += info["collected"]

    gc.collect()
    gc.callbacks.append(note)
    try:
        run(n)
    finally:
        gc.callbacks.remove(note)
    return runs * 1000 / n, collected / n


# -- callgrind ---------------------------------------------------------------------------------

_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")
_ALLOCATORS = ("_PyObject_Malloc", "PyObject_Malloc", "_PyMem_RawMalloc", "PyMem_Malloc")


def _allocations(out_file: Path) -> int:
    """Calls into the object allocator recorded in a callgrind output file."""
    names: dict[str, str] = {}
    total = 0
    callee = ""
    for line in out_file.read_text(errors="replace").splitlines():
        if line.startswith("cfn="):
            match = re.match(r"cfn=\((\d+)\)(?: (.*))?", line)
            if match:
                if match.group(2):
                    names[match.group(1)] = match.group(2)
                callee = names.get(match.group(1), "")
            else:
                callee = line[4:]
        elif line.startswith("fn="):
            match = re.match(r"fn=\((\d+)\)(?: (.*))?", line)
            if match and match.group(2):
                names[match.group(1)] = match.group(2)
        elif line.startswith("calls=") and callee == "_PyObject_Malloc":
            total += int(line[6:].split()[0])
    return total


def callgrind(case: str, n: int, ref: str) -> tuple[int, int]:
    """(instructions, allocator calls) of a child process that runs ``case`` ``n`` times.

    ``ref``: the directory holding the ``asgisession`` to measure.
    """
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--callgrind needs valgrind (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="asgisession-callgrind-") as where:
        out = Path(where) / "callgrind.out"
        env = {**os.environ, "PYTHONHASHSEED": "0", "ASGISESSION_PROFILE_REF": ref}
        argv = [
            valgrind, "--tool=callgrind", f"--callgrind-out-file={out}",
            sys.executable, "-m", "benchmarks.profile_requests", "--child", case,
            "--requests", str(n),
        ]  # fmt: skip
        done = subprocess.run(  # noqa: S603 - argv is built here
            argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False
        )
        match = _COLLECTED.search(done.stderr)
        if done.returncode != 0 or match is None:
            raise SystemExit(f"callgrind run of {case!r} failed:\n{done.stderr[-3000:]}")
        return int(match.group(1)), _allocations(out)


def child(case: str, n: int) -> None:
    """Run under valgrind: build the case's group, then the case ``n`` times (0: none)."""
    ref = os.environ.get("ASGISESSION_PROFILE_REF")
    if ref:  # ahead of the working directory, which ``python -m`` puts first
        sys.path.insert(0, ref)
    group, _, name = case.partition(":")
    cases = build(group)
    import asgisession

    if ref and not asgisession.__file__.startswith(ref):
        raise SystemExit(f"imported {asgisession.__file__}, not the ref's")
    if n:
        cases[name](n)


def export_ref(ref: str, into: Path) -> str:
    """``asgisession`` as of git ``ref``, extracted under ``into``; the path to put first."""
    archive = subprocess.run(  # noqa: S603 - argv is built here; ref is the user's own
        [shutil.which("git") or "git", "archive", "--format=tar", ref, "asgisession"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return str(into)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="per case (callgrind: 1000)")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions")
    parser.add_argument("--ref", help="also measure asgisession as of this git ref")
    parser.add_argument("--tree", help="measure this git ref as the 'tree' side instead")
    parser.add_argument("--only", default="", help="comma-separated words a case must contain")
    parser.add_argument("--top", metavar="CASE", help="list the Python frames CASE enters")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.requests)
        return
    words = [w.strip() for w in args.only.split(",") if w.strip()]
    chosen = [c for c in (*MIDDLEWARE, *CODEC) if not words or any(w in c for w in words)]
    if args.top:
        run = build(_group_of(args.top))[args.top]
        per_request, _, frames = count_calls(run, args.requests)
        print(f"{args.top}: {per_request:.1f} Python frames per request")
        for name, count in frames.most_common():
            print(f"  {count / args.requests:7.2f}  {name}")
        return
    built = {group: build(group) for group in GROUPS if any(c in GROUPS[group] for c in chosen)}
    print(f"Python {sys.version.split()[0]}, {args.requests} requests per case")
    print(f"{'case':<24} {'py calls':>9} {'C calls':>8} {'peak KiB':>9} {'GC/1k':>6} {'freed':>6}")
    for case in chosen:
        run = built[_group_of(case)][case]
        py, c_calls, _ = count_calls(run, args.requests)
        runs, freed = gc_per_thousand(run)
        print(
            f"{case:<24} {py:>9.1f} {c_calls:>8.1f} {peak_kib(run):>9.2f} {runs:>6.2f}"
            f" {freed:>6.1f}"
        )
    if not args.callgrind:
        return
    n = min(args.requests, 1000)
    with tempfile.TemporaryDirectory(prefix="asgisession-ref-") as where:
        # The tree as it is now, so that editing it while this runs changes nothing here.
        if args.tree:
            sides = {"tree": export_ref(args.tree, Path(where) / "tree")}
        else:
            shutil.copytree(
                ROOT / "asgisession",
                Path(where) / "tree" / "asgisession",
                ignore=shutil.ignore_patterns("__pycache__"),
            )
            sides = {"tree": str(Path(where) / "tree")}
        if args.ref:
            sides["ref"] = export_ref(args.ref, Path(where) / "ref")
        print(f"\ncallgrind: per request over {n} requests, minus a run of none (PYTHONHASHSEED=0)")
        columns = " ".join(f"{s + ' instr':>12} {s + ' allocs':>11}" for s in sides)
        header = f"{'case':<24} {columns}"
        print(header + ("   instr tree/ref" if args.ref else ""))
        base: dict[tuple[str, str], tuple[int, int]] = {}
        for case in chosen:
            group = _group_of(case)
            cells, per = [], {}
            for side, path in sides.items():
                if (side, group) not in base:
                    base[side, group] = callgrind(f"{group}:", 0, path)
                instr, allocs = callgrind(f"{group}:{case}", n, path)
                per[side] = (instr - base[side, group][0]) / n
                cells.append(f"{per[side]:>12,.0f} {(allocs - base[side, group][1]) / n:>11.1f}")
            ratio = f"   {per['tree'] / per['ref']:.3f}x" if args.ref else ""
            print(f"{case:<24} " + " ".join(cells) + ratio, flush=True)


if __name__ == "__main__":
    start = time.monotonic()
    main()
    if not any(a.startswith("--child") for a in sys.argv):
        print(f"({time.monotonic() - start:.0f} s)", file=sys.stderr)
