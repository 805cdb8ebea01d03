"""Read W&B's run files (``run-<id>.wandb``) back: which records are on disk, and whether W&B
has finished writing the file.

W&B's service keeps a run's records in memory and writes them when it closes the run, which
happens after ``run.finish()`` has returned (wandb 0.31: finish() waits for the exit record to
be handled, then tells the service to close the run without waiting for it). A driver killed
outright leaves the file with its header only. The logger reads the files to wait for W&B and
to continue a resumed trial's run where its files end.

The format (LevelDB's log format, as W&B writes it): a 7-byte header, then 32 KiB blocks of
chunks; a chunk is a CRC-32 of its type and data, a length, a type (whole record, or first,
middle or last piece) and the data; a block's last bytes are zeros when no chunk header fits.
A record is a ``wandb_internal_pb2.Record``.

Example::

    records, problem = read_records(Path(run.settings.sync_file))
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from wandb.proto import wandb_internal_pb2

HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
BLOCK = 32768
CHUNK_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def read_records(path: Path) -> tuple[list[wandb_internal_pb2.Record], str]:
    """The whole records a .wandb file holds, in order, and why reading stopped before the end
    of the file ('' when every byte was read as whole records with the right lengths and CRCs)."""
    data = path.read_bytes()
    if data[: len(HEADER)] != HEADER:
        return [], f"no W&B header in its first {len(HEADER)} bytes"
    records: list[wandb_internal_pb2.Record] = []
    position, pending = len(HEADER), None
    while position < len(data):
        left = BLOCK - position % BLOCK
        if left < CHUNK_HEADER:  # zeros to the end of the block
            position += left
            continue
        if position + CHUNK_HEADER > len(data):
            return records, f"cut short in a chunk header at byte {position} of {len(data)}"
        crc, length, kind = struct.unpack_from("<IHB", data, position)
        start, end = position + CHUNK_HEADER, position + CHUNK_HEADER + length
        if kind not in (FULL, FIRST, MIDDLE, LAST) or length > left - CHUNK_HEADER:
            return records, f"no chunk at byte {position} (type {kind}, length {length})"
        if end > len(data):
            return records, f"cut short in a chunk at byte {position}: {length} bytes, {len(data) - start} there"
        if zlib.crc32(data[start - 1 : end]) != crc:
            return records, f"CRC mismatch in the chunk at byte {position}"
        if (kind in (FULL, FIRST)) != (pending is None):
            return records, f"a record piece out of order at byte {position}"
        pending = data[start:end] if kind in (FULL, FIRST) else pending + data[start:end]
        position = end
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = None
    if pending is not None:
        return records, f"cut short after the first pieces of a record, at byte {len(data)}"
    return records, ""


def is_finished(path: Path) -> bool:
    """Whether W&B has written the whole file: every record whole, the last one the run's exit."""
    return ends_with_exit(*read_records(path))


def ends_with_exit(records: list[wandb_internal_pb2.Record], problem: str) -> bool:
    """Whether records read from a file (read_records) are a finished run's, to its exit record."""
    return not problem and bool(records) and records[-1].WhichOneof("record_type") == "exit"


def last_step(records: list[wandb_internal_pb2.Record]) -> int:
    """The highest history step among the records (0 when there is none)."""
    steps = [r.history.step.num for r in records if r.WhichOneof("record_type") == "history"]
    return max(steps, default=0)
