"""What sender trust costs per message: the From mailbox parse and the Authentication-Results verdict.

Prints microseconds per call for a plain From, a hostile one, a Gmail-style and a Microsoft 365-style
verdict (the latter without an authserv-id, parsed on the second try).

    python bench/trust.py [--rounds 20000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from mailtickets.trust.address import parse_from
from mailtickets.trust.authres import sender_auth

GMAIL = (
    "mx.google.com; dkim=pass header.i=@acme.example header.s=s1 header.b=abc; spf=pass smtp.mailfrom=b@acme.example;"
    " dmarc=pass (p=REJECT) header.from=acme.example"
)
M365 = (
    "spf=pass (sender IP is 192.0.2.7) smtp.mailfrom=acme.example; dkim=pass (signature was verified)"
    " header.d=acme.example;dmarc=pass action=none header.from=acme.example;compauth=pass reason=100"
)


def per_call(work: Callable[[], object], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        work()
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=20000)
    rounds = parser.parse_args().rounds
    cases: dict[str, Callable[[], object]] = {
        "From: plain name-addr": lambda: parse_from(["Alice Able <alice@acme.example>"]),
        "From: encoded name with address": lambda: parse_from(
            ["=?utf-8?q?Alice_=3Calice=40acme=2Eexample=3E?= <evil@attacker.example>"]
        ),
        "Authentication-Results: Gmail": lambda: sender_auth(
            [("Authentication-Results", GMAIL)], "acme.example", ["mx.google.com"]
        ),
        "Authentication-Results: Microsoft 365": lambda: sender_auth(
            [("Authentication-Results", M365)], "acme.example", ["topmost"]
        ),
    }
    for name, work in cases.items():
        print(f"{name:42} {per_call(work, rounds):8.1f} µs/call")


if __name__ == "__main__":
    main()
