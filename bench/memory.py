"""Memory per message: peak RSS of the service process (and of the parse worker) while one message of a
given size is ingested into a fresh SQLite store, as a multiple of the message's size.

Each size runs in a fresh child process, so that its peak is its own. Two shapes: one attachment
(base64, the usual large mail) and a large plain-text body. With --in-process the message is parsed on
the service's own thread, as before parse workers existed.

    python bench/memory.py [--sizes 1,5,10,24] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from mailtickets.db import create_engine, session_factory, upgrade
from mailtickets.models import Client, ClientDomain
from mailtickets.pipeline.ingest import Pipeline
from mailtickets.pipeline.parse_worker import InProcessParser, ParseWorkers, limits_from
from mailtickets.settings import Settings

MEGABYTE = 1024 * 1024


def message(size: int, shape: str) -> bytes:
    mail = EmailMessage()
    mail["From"] = "Alice <alice@bench.example>"
    mail["To"] = "support@helpdesk.example"
    mail["Subject"] = f"{shape} of {size} bytes"
    mail["Message-ID"] = f"<{shape}-{size}@bench.example>"
    if shape == "attachment":
        mail.set_content("see the attachment")
        mail.add_attachment(os.urandom(size * 3 // 4), maintype="application", subtype="pdf", filename="a.pdf")
    else:
        line = "The printer shows error E-42 again, and again, and again.\n"
        mail.set_content(line * (size // len(line)))
    return mail.as_bytes(policy=SMTP)


def rss_kib(status: str = "/proc/self/status", field: str = "VmRSS") -> int:
    for line in Path(status).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def prepare(size: int, shape: str) -> Path:
    """A migrated store with one client, and the message as a file (the parent does this, not the child)."""
    folder = Path(tempfile.mkdtemp(prefix="mailtickets-memory-"))
    upgrade(_url(folder))
    (folder / "message.eml").write_bytes(message(size, shape))
    return folder


def _url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'bench.db'}"


async def measure_one(folder: Path, in_process: bool) -> dict[str, float | str]:
    url = _url(folder)
    settings = Settings(database_url=url, data_dir=folder / "data", support_address="support@helpdesk.example")
    engine = create_engine(url)
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        session.add(Client(name="Bench", domains=[ClientDomain(domain="bench.example")]))
    parser = InProcessParser(limits_from(settings)) if in_process else ParseWorkers.from_settings(settings)
    pipeline = Pipeline(settings, sessions, parser=parser)
    await pipeline.ingest(message(1000, "warm-up"), "bench")  # workers started, code paths warm
    workers = [f"/proc/{w.process.pid}" for w in parser.workers] if isinstance(parser, ParseWorkers) else []
    for process in ["/proc/self", *workers]:
        Path(process, "clear_refs").write_text("5")  # Linux: the peak (VmHWM) restarts from the RSS now
    before = rss_kib()
    workers_before = {process: rss_kib(f"{process}/status") for process in workers}
    raw = (folder / "message.eml").read_bytes()  # what an intake holds: the bytes count too
    result = await pipeline.ingest(raw, "bench")
    peak = rss_kib(field="VmHWM")
    worker_growth = max((rss_kib(f"{p}/status", "VmHWM") - kib for p, kib in workers_before.items()), default=0)
    worker_peak = max((rss_kib(f"{p}/status", "VmHWM") for p in workers), default=0)
    await pipeline.close()
    await engine.dispose()
    return {
        "bytes": len(raw),
        "outcome": result.outcome.value,
        "service_peak_over_size": max(peak - before, 0) * 1024 / len(raw),
        "worker_peak_mib": worker_peak / 1024,
        "worker_peak_over_size": max(worker_growth, 0) * 1024 / len(raw),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,5,10,24", help="message sizes in MiB, comma-separated")
    parser.add_argument("--in-process", action="store_true", help="parse on the service's thread (no workers)")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a prepared folder: measure in this child, print JSON
    args = parser.parse_args()
    if args.one:
        print(json.dumps(asyncio.run(measure_one(Path(args.one), args.in_process))))
        return
    mode = "in-process parsing" if args.in_process else "parse workers"
    print(f"peak RSS of the service process per message ({mode}), above its RSS before the bytes were read")
    print("(the parse worker's likewise, above its RSS before the message; its peak RSS in MiB beside it)")
    print(f"{'shape':<11} {'MiB':>5} {'outcome':<12} {'service peak':>13} {'worker peak':>12} {'worker MiB':>11}")
    for shape in ("attachment", "text"):
        for mib in (int(s) for s in args.sizes.split(",")):
            command = [sys.executable, __file__, "--one", str(prepare(mib * MEGABYTE, shape))]
            command += ["--in-process"] if args.in_process else []
            figures = json.loads(subprocess.run(command, capture_output=True, check=True, text=True).stdout)
            print(
                f"{shape:<11} {figures['bytes'] / MEGABYTE:>5.1f} {figures['outcome']:<12} "
                f"{figures['service_peak_over_size']:>12.1f}x {figures['worker_peak_over_size']:>11.1f}x "
                f"{figures['worker_peak_mib']:>11.0f}"
            )


if __name__ == "__main__":
    main()
