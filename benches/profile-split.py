#!/usr/bin/env python3
"""benches/profile-split.py: where the server's CPU time goes, from a profile taken by benches/load.sh.

Usage: LOAD_PERF=FILE LOAD_PERF_CALL_GRAPH=dwarf benches/load.sh sqlite 10 64
       benches/profile-split.py FILE [FILE ...]   (one column per profile: before, after)

Each sample of `perf script` (the server's threads only) is given to the first part, from the leaf of its
stack upwards, whose pattern one of its frames matches; allocation and thread hand-offs are judged by the
leaf first, since they happen inside every other part. Samples are on-CPU time (perf's cpu-clock), so a
commit's wait for the disk shows only as the CPU it costs; the rest of that wait is latency, not CPU.
The parts are what issue 27 asks to see: signature, parsing, SQL, commit, response, tracing, metrics,
allocation; plus the kernel's network path, which the no-op route pays too, and thread hand-offs.
"""

import re
import subprocess
import sys

# (part, pattern over one frame's symbol), tried in order for each frame from the leaf upwards: the first
# frame that any pattern matches decides. The kernel's own scheduler frames (finish_task_switch,
# try_to_wake_up) match nothing, so a switch is charged to what caused it: a futex or a park (a thread
# hand-off), a socket write (the response), an fsync (the commit).
PARTS = [
    ("commit (WAL write, fsync)", r"fsync|unixSync|sqlite3PagerCommitPhaseOne|pagerWalFrames|walWriteOneFrame|walChecksum"),
    ("response (HTTP write)", r"tcp_sendmsg|writev|write_vectored|poll_flush|poll_write"),
    ("thread hand-offs (wake, park, switch)", r"futex|eventfd|Waker::wake|::park|flume::signal|Condvar|epoll_wait|wake_by|wake_arc|unpark"),
    ("SQL (SQLite, sqlx)", r"sqlite3|sqlx_|Sqlite|Postgres|PgConnection"),
    ("signature (HMAC-SHA256)", r"sha2::|hmac::|::verify::|Signed>::verify|signing::"),
    ("tracing", r"tracing_subscriber|tracing_core|tracing::span|tower_http::trace"),
    ("metrics", r"prometheus_client|replaydesk::metrics"),
    ("parsing (form, query, JSON in)", r"form_to_json|serde_urlencoded|form_urlencoded|parse_query|for_each_email|identity::|serde_json::de|Deserialize|Deserializer|decode"),
    ("job and answer (JSON out)", r"NewJob|serde_json::ser|Serialize|render::|to_value"),
    ("request (HTTP read, routing)", r"poll_read|recvfrom|tcp_recvmsg|axum::routing|Router"),
    ("handler (the rest)", r"replaydesk::"),
    ("runtime (tokio, hyper)", r"tokio::|hyper::|mio::|epoll"),
]
ALLOCATION = r"malloc|_int_free|cfree|realloc|unlink_chunk|__libc_free|mi_|je_|sdallocx"


def samples(path):
    text = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,ip,sym"],
        capture_output=True, text=True, check=True,
    ).stdout
    for block in text.split("\n\n"):
        lines = [line.strip() for line in block.strip().splitlines() if line.strip()]
        if not lines:
            continue
        comm, frames = lines[0], lines[1:]
        if "wrk" in comm or "perf" in comm:
            continue
        yield [frame.split(" ", 1)[-1].removesuffix(" (inlined)") for frame in frames]


def part_of(frames):
    if not frames:
        return "other"
    if re.search(ALLOCATION, frames[0]):
        return "allocation (malloc, free)"
    for frame in frames:
        for part, pattern in PARTS:
            if re.search(pattern, frame):
                return part
    return "other"


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    columns = []
    for path in sys.argv[1:]:
        counts = {}
        for frames in samples(path):
            part = part_of(frames)
            counts[part] = counts.get(part, 0) + 1
        columns.append(counts)
    names = sorted({part for counts in columns for part in counts},
                   key=lambda part: -columns[0].get(part, 0))
    print("| part | " + " | ".join(sys.argv[1:]) + " |")
    print("|---|" + "---|" * len(columns))
    for name in names:
        cells = []
        for counts in columns:
            total = sum(counts.values()) or 1
            cells.append(f"{100 * counts.get(name, 0) / total:.1f} %")
        print(f"| {name} | " + " | ".join(cells) + " |")
    print("| samples | " + " | ".join(str(sum(c.values())) for c in columns) + " |")


if __name__ == "__main__":
    main()
