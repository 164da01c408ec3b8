"""Read an offline W&B run (`run-*.wandb`): a LevelDB-style log of protobuf `Record`s.

The file is a 7-byte header (":W&B", magic 0xBEE1, version 0), then 32 KiB blocks of chunks, each
crc32 (4 bytes) | length (2, little-endian) | type (1: full, 2: first, 3: middle, 4: last) | data; a block's tail
shorter than a chunk header is zero padding. wandb 0.31 has no reader of its own for it (the datastore moved to
wandb-core), so the tests read it here.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> list:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path}: not a W&B run log"
    out, pending, pos = [], b"", HEADER
    while pos + HEADER <= len(data):
        left_in_block = BLOCK - pos % BLOCK
        if left_in_block < HEADER:  # padding to the next block
            pos += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if pos + HEADER + length > len(data):  # a chunk still being written
            break
        chunk = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        if kind == 0 and length == 0:  # zeros at the end of a block
            continue
        if kind in (FULL, FIRST):
            pending = chunk
        else:
            pending += chunk
        if kind in (FULL, LAST):
            record = pb.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


def finished_records(path: Path, timeout_s: float = 60.0) -> list:
    """The records of a finished run: wandb-core writes the log a 32 KiB block at a time from its own process, so
    a run that `finish` ended in this process may reach the file a moment later; wait for its `exit` record."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = records(path)
        kinds = [record.WhichOneof("record_type") for record in found]
        if "exit" in kinds:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{path}: no exit record after {timeout_s:.0f} s; the log holds {kinds}")
        time.sleep(0.2)


def run_contents(path: Path) -> dict:
    """What a run holds: its run record (group, job type, name, id), config, last summary and history keys."""
    run, config, summary, history_keys = None, {}, {}, set()
    found = finished_records(path)
    for record in found:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            run = record.run
            config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
            summary.update({item.key: json.loads(item.value_json) for item in record.run.summary.update})
        elif kind == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "summary":
            for item in record.summary.update:
                key = item.key or "/".join(item.nested_key)
                summary[key] = json.loads(item.value_json)
        elif kind == "history":
            history_keys |= {item.key or "/".join(item.nested_key) for item in record.history.item}
    assert run is not None, f"{path}: no run record; the log holds {[r.WhichOneof('record_type') for r in found]}"
    return {
        "id": run.run_id,
        "group": run.run_group,
        "job_type": run.job_type,
        "name": run.display_name,
        "config": {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()},
        "summary": summary,
        "history_keys": history_keys,
    }


def offline_run(folder: Path) -> dict:
    """The one offline run under `folder/wandb`."""
    (path,) = Path(folder).glob("wandb/offline-run-*/run-*.wandb")
    return run_contents(path)
