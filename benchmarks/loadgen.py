"""A small HTTP/1.1 keep-alive load generator on raw asyncio sockets, run as its own process.

    python -m benchmarks.loadgen --port PORT [--cookie VALUE ...] [--connections 16] [--duration 2]

Each connection sends ``GET /`` and reads the whole response (status line, headers,
``Content-Length`` body) before sending the next, for ``--duration`` seconds. Prints one
JSON object: requests, seconds, requests/s, latency percentiles in microseconds, errors.
It exists for machines without ``wrk``; being Python, it costs about as much CPU per
request as a small server does, so on a machine with few cores it shares them with the
server under test and the absolute requests/s are low. Ratios between apps served the same
way stay comparable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time


async def connection(
    port: int, request: bytes, deadline: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter_ns()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter_ns() - start) / 1000)
            if status != b"200":
                errors.append(status.decode(errors="replace"))
    finally:
        writer.close()


def _request(cookie: str | None) -> bytes:
    lines = [b"GET / HTTP/1.1", b"Host: 127.0.0.1", b"User-Agent: asgisession-loadgen"]
    if cookie:
        lines.append(b"Cookie: " + cookie.encode("latin-1"))
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def run(
    port: int, cookies: list[str], connections: int, duration: float
) -> dict[str, object]:
    """Keep ``connections`` busy until ``duration``; connection k sends ``cookies[k % n]``."""
    requests = [_request(cookie) for cookie in cookies] or [_request(None)]
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    deadline = start + duration
    await asyncio.gather(
        *(
            connection(port, requests[index % len(requests)], deadline, latencies, errors)
            for index in range(connections)
        )
    )
    elapsed = time.perf_counter() - start
    latencies.sort()

    def pct(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] if latencies else 0.0

    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "requests_per_s": len(latencies) / elapsed,
        "p50_us": pct(0.50),
        "p90_us": pct(0.90),
        "p99_us": pct(0.99),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="HTTP/1.1 keep-alive load generator")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--cookie",
        action="append",
        default=[],
        help="a Cookie header value to send (repeatable: the connections take them in turn)",
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--duration", type=float, default=2.0)
    args = parser.parse_args(argv)
    result = asyncio.run(run(args.port, args.cookie, args.connections, args.duration))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
