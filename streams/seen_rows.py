"""The worker's memory of the bulk-lane rows it accepted, so an unchanged re-sync skips validation.

A department re-sends its whole register every night and almost every row is the one it sent
before. Each row brings the hash of its content; the worker remembers, per source, kind and
record, the content hash and fingerprint of the last row it accepted, and a row whose content
it accepted last time needs no validation to give the same fingerprint again. It still reaches
the sink as a seen row (the record's uid and ids, the remembered fingerprint, and the row as its
source sent it), because the sink, not the worker, holds the warehouse's copies: there it is a
duplicate when the warehouse holds that fingerprint, and a reject that can be replayed when it
does not (the warehouse was restored behind the worker's back, or refused the row at its contract).

The memory is only a cache: a miss costs a validation, never an outcome, so it may forget
whatever it likes (the oldest entries, past ``GRIDHUB_SEEN_ROWS_MAX``). Everything that can change
a row's judgement besides its content (the reference tables, the code that judges a row) goes
into a reference digest, and entries learned under another digest are ignored. What one batch
taught the memory goes to ``bulk.seen`` as one compact Arrow message after the batch's canonical
rows were delivered, so a restarted worker reads the topic back and skips as it did; a message
per row would cost what skipping saves.

The rows validation refused are sent again too, and refused again for the same reason: the
memory also keeps, in this process only, why it refused a record's content, for the town day it
was refused on (a birth date after today is refused until that day comes).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from aiokafka import AIOKafkaConsumer, TopicPartition

from foundation.logs import get_logger
from foundation.partition_ends import fetched_ends
from foundation.settings import Settings
from schemas import TOWN_TIMEZONE
from schemas.batches import PROVENANCE_COLUMNS, SEEN_DIGEST_HEX, SEEN_PAYLOAD, RecordBatch
from schemas.digests import blake2b_64, leading_hex, uint64_hex
from schemas.rejects import RejectStage

log = get_logger(__name__)
_Entry = TypeVar("_Entry")

FORGOTTEN = 0
"""The content digest of a persisted entry that tells the memory to forget its record."""
_SLACK = 10
"""A full memory drops a tenth more than it must, so it is rebuilt once per many batches, not every batch."""
MESSAGE_ENTRIES = 30_000
"""Entries per ``bulk.seen`` message: 24 bytes each stays well under the 1 MiB a broker accepts."""
_JUDGES = ("bulk.py", "batch_people.py", "normalise.py", "routing.py")
"""The worker's modules whose code decides a bulk-lane row, beside everything in :mod:`schemas`."""


def _key_prefix(source: str, kind: str) -> str:
    """What precedes a record id in the text its key hashes: one spelling for a column and for one record."""
    return f"{source}\x1f{kind}\x1f"


def record_keys(source: str, kind: str, record_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The memory's key of each record id of a column, for a source and kind (a null id is keyed as ``None``).

    The 8-byte blake2b of ``source``, ``kind`` and the id joined by \\x1f: stable across processes,
    unlike Python's ``hash``, since the keys travel on ``bulk.seen`` to the next worker.
    """
    return blake2b_64(pc.binary_join_element_wise(_key_prefix(source, kind), pc.fill_null(record_ids, "None"), ""))


def record_key(source: str, kind: str, record_id: str | None) -> int:
    """The memory's key of one record, the same as :func:`record_keys` gives it in a column.

    The per-record lane asks it for every record it passes on; an Arrow array of one value cost
    the worker 5% of its time at 200 reports/s (bench/PROFILE.md), hashing the text directly does not.
    """
    text = f"{_key_prefix(source, kind)}{record_id}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def fingerprint_digest(fingerprint: str) -> int:
    """The first 64 bits of a hex fingerprint: what the sink compares a seen row with."""
    return int(fingerprint[:SEEN_DIGEST_HEX], 16)


def reference_digest(settings: Settings) -> str:
    """A digest of everything besides a row's content that decides its judgement.

    The routing rules, grid, approval catalogue and enforcement bureau the settings name, and the
    code of :mod:`schemas` and the worker's validation: a new release or a new table makes every
    remembered row be validated again once.
    """
    here = Path(__file__).parent
    code = sorted((here.parent / "schemas").rglob("*.py")) + [here / name for name in _JUDGES]
    tables = [settings.routing_rules, settings.grid_path, settings.approval_items, settings.enforcement]
    digest = hashlib.sha256()
    for path in [*code, *tables]:
        digest.update(str(path.name).encode() + b"\0" + Path(path).read_bytes() + b"\0")
    return digest.hexdigest()


@dataclass(frozen=True)
class Learned:
    """What one batch taught the memory, as one message on ``bulk.seen`` holds it.

    Each entry is a record's key digest with its content and fingerprint digests; a content
    digest of :data:`FORGOTTEN` forgets the record.
    """

    reference: str
    keys: list[int]
    contents: list[int]
    fingerprints: list[int]

    def __len__(self) -> int:
        return len(self.keys)

    def encode(self) -> bytes:
        """One Arrow IPC stream of three 64-bit columns, the reference digest in its metadata."""
        table = pa.table(
            {
                "key": pa.array(self.keys, pa.uint64()),
                "content": pa.array(self.contents, pa.uint64()),
                "fingerprint": pa.array(self.fingerprints, pa.uint64()),
            }
        ).replace_schema_metadata({"reference": self.reference})
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        return sink.getvalue().to_pybytes()

    def encode_within(self, entries: int = MESSAGE_ENTRIES) -> list[bytes]:
        """The entries as messages of at most ``entries`` each, in order (a raw batch may be larger than usual)."""
        return [
            Learned(
                self.reference,
                self.keys[start : start + entries],
                self.contents[start : start + entries],
                self.fingerprints[start : start + entries],
            ).encode()
            for start in range(0, len(self), entries)
        ]

    @classmethod
    def decode(cls, value: bytes) -> Learned:
        """A message of ``bulk.seen`` read back; anything else raises (the caller skips it)."""
        table = pa.ipc.open_stream(value).read_all()
        reference = (table.schema.metadata or {}).get(b"reference", b"").decode()
        return cls(
            reference,
            table.column("key").to_pylist(),
            table.column("content").to_pylist(),
            table.column("fingerprint").to_pylist(),
        )


def _newest(entries: dict[int, _Entry], limit: int) -> dict[int, _Entry]:
    """``entries`` cut to the newest, a tenth below ``limit``, once they pass it; else ``entries`` itself."""
    if len(entries) <= limit:
        return entries
    return dict(islice(entries.items(), len(entries) - limit + limit // _SLACK, None))


@dataclass(frozen=True)
class Refusal:
    """Why validation refused a row: what a reject of the same content says again."""

    stage: RejectStage
    reason_code: str
    reason: str


class SeenRows:
    """Key digest to (content digest, fingerprint digest) of the last row accepted, oldest first."""

    def __init__(self, limit: int, reference: str) -> None:
        self.limit = limit
        self.reference = reference
        self._entries: dict[int, int] = {}
        self._refusals: dict[int, tuple[int, date, Refusal]] = {}

    @property
    def enabled(self) -> bool:
        """A limit of 0 turns the memory off: every row is validated, nothing is persisted."""
        return self.limit > 0

    def __len__(self) -> int:
        return len(self._entries)

    def fingerprint(self, key: int, content: int) -> int | None:
        """The fingerprint digest remembered for the record when its content is the one remembered."""
        return self.fingerprints([key], [content])[0]

    def fingerprints(self, keys: list[int], contents: list[int]) -> list[int | None]:
        """:meth:`fingerprint` of each key with its content, for a whole batch at once."""
        entries, low = self._entries, 0xFFFF_FFFF_FFFF_FFFF
        found = [entries.get(key) for key in keys]
        return [
            None if entry is None or entry >> 64 != content else entry & low
            for entry, content in zip(found, contents, strict=True)
        ]

    def learn(self, learned: Learned) -> None:
        """Take in what a batch taught (under this memory's reference digest only); keep at most ``limit``."""
        if not self.enabled or learned.reference != self.reference:
            return
        entries = self._entries
        for key, content, fingerprint in zip(learned.keys, learned.contents, learned.fingerprints, strict=True):
            entries.pop(key, None)
            if content != FORGOTTEN:
                entries[key] = content << 64 | fingerprint
        self._entries = _newest(entries, self.limit)

    def refusal(self, key: int, content: int, day: date) -> Refusal | None:
        """Why the record's row was refused, when its content is the one refused on the same town day.

        A refusal holds for its day only: a birth date after the town's today is refused today
        and accepted once that day has come.
        """
        found = self._refusals.get(key)
        return found[2] if found is not None and found[0] == content and found[1] == day else None

    def refuse(self, key: int, content: int, day: date, refusal: Refusal) -> None:
        """Remember why a row was refused on the town day ``day``; keep at most ``limit`` refusals, the newest.

        Only this process remembers refusals, not ``bulk.seen``: a reason is text, a restart
        validates the refused rows once more, and a refused row is rare beside the accepted ones.
        """
        if not self.enabled:
            return
        refusals = self._refusals
        refusals.pop(key, None)
        refusals[key] = (content, day, refusal)
        self._refusals = _newest(refusals, self.limit)

    def forget(self, source: str, kind: str, record_id: str) -> Learned | None:
        """Forget a record the per-record lane changed in the warehouse; what to persist, if it was remembered.

        Otherwise an old content sent again in bulk would be skipped with the fingerprint it had
        before, and be refused by the sink instead of landing as an update.
        """
        key = record_key(source, kind, record_id)
        if self._entries.pop(key, None) is None:
            return None
        return Learned(self.reference, [key], [FORGOTTEN], [0])

    async def restore(self, bootstrap: str, topic: str, options: dict[str, Any]) -> int:
        """Read everything ``topic`` holds into the memory, in order; the number of messages read.

        Whatever fails meanwhile leaves the memory with what it read, and the rest is validated
        again: the bulk lane must never stop for its cache.
        """
        if not self.enabled:
            return 0
        try:
            return await self._read(bootstrap, topic, options)
        except Exception as exc:  # noqa: BLE001 - a miss costs a validation, a stopped agent the whole lane
            log.warning("seen_rows_not_restored", topic=topic, remembered=len(self), error=repr(exc))
            return 0

    async def _read(self, bootstrap: str, topic: str, options: dict[str, Any]) -> int:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, **options)
        await consumer.start()
        try:
            await consumer.topics()
            numbers = sorted(consumer.partitions_for_topic(topic) or ())
            partitions = [TopicPartition(topic, number) for number in numbers]
            if not partitions:
                return 0
            ends = await fetched_ends(consumer, partitions)
            await consumer.seek_to_beginning(*partitions)
            read = 0
            left = {partition for partition in partitions if ends[partition] > 0}
            while left:
                for messages in (await consumer.getmany(*left, timeout_ms=1000)).values():
                    for message in messages:
                        read += 1
                        self._restore_one(message.value)
                left = {partition for partition in left if await consumer.position(partition) < ends[partition]}
            return read
        finally:
            await consumer.stop()

    def _restore_one(self, value: bytes | None) -> None:
        try:
            learned = Learned.decode(value or b"")
        except (pa.ArrowInvalid, KeyError, OSError):
            return  # a message the memory cannot read is a miss for its rows: they are validated again
        self.learn(learned)


@dataclass(frozen=True)
class Triage:
    """A raw batch split into rows to validate and rows the memory lets through as seen."""

    fresh: RecordBatch
    seen: RecordBatch | None
    reference: str
    pending: dict[str, tuple[int, int]]
    """Record uid of each fresh row the memory may learn, with its key and content digests."""
    unknown: list[int]
    """Keys of records validated without being learned (held more than once by the batch, so the sink decides
    among them, or without a content hash): the memory forgets them, as their copy may change."""
    day: date
    """The town day the batch was triaged on, which a refusal learned from its rows holds for."""
    refused: pa.Table
    """Rows the memory refused without validating them: the content refused on this day before."""
    refusals: list[Refusal]
    """Why each of :attr:`refused` was refused, row for row."""

    def learned(self, accepted: RecordBatch | None) -> Learned:
        """What to remember of the rows the validation ``accepted``, and to forget of the :attr:`unknown` ones."""
        keys, contents, fingerprints = list(self.unknown), [FORGOTTEN] * len(self.unknown), [0] * len(self.unknown)
        if accepted is not None:
            columns = accepted.rows.select(["record_uid", "fingerprint"]).to_pydict()
            for uid, fingerprint in zip(columns["record_uid"], columns["fingerprint"], strict=True):
                known = self.pending.get(uid)
                if known is not None:
                    keys.append(known[0])
                    contents.append(known[1])
                    fingerprints.append(fingerprint_digest(fingerprint))
        return Learned(self.reference, keys, contents, fingerprints)


def triage(memory: SeenRows, batch: RecordBatch) -> Triage:
    """Split ``batch``: a record the batch holds once, with the content the memory remembers, is seen.

    A record the batch holds more than once is always validated, so the sink decides among its
    rows exactly as it would without the memory. The keys and content digests of the whole batch
    are computed column-wise (:func:`record_keys`, :func:`schemas.digests.leading_hex`): row by row,
    a re-sync's triage took 6-8 s of the worker's time a million rows.
    """
    rows = batch.rows
    keys = record_keys(batch.source, batch.kind, rows.column("source_record_id"))
    contents = (
        leading_hex(rows.column("content_hash"), SEEN_DIGEST_HEX)
        if "content_hash" in rows.column_names
        else np.zeros(len(keys), np.uint64)
    )
    _, where, counts = np.unique(keys, return_inverse=True, return_counts=True)
    unknown = (counts[where] > 1) | (contents == 0)
    asked = np.flatnonzero(~unknown)
    remembered = memory.fingerprints(keys[asked].tolist(), contents[asked].tolist())
    known = np.array([fingerprint is not None for fingerprint in remembered], bool)
    learnable = asked[~known]
    day = datetime.now(TOWN_TIMEZONE).date()
    found = [
        memory.refusal(key, content, day)
        for key, content in zip(keys[learnable].tolist(), contents[learnable].tolist(), strict=True)
    ]
    refused = np.array([refusal is not None for refusal in found], bool)
    refused_rows = rows.take(pa.array(learnable[refused], pa.int64()))
    learnable = learnable[~refused]
    fresh = unknown.copy()
    fresh[learnable] = True
    uids = rows.column("record_uid").take(pa.array(learnable, pa.int64())).to_pylist()
    pending = dict(zip(uids, zip(keys[learnable].tolist(), contents[learnable].tolist(), strict=True), strict=True))
    seen_rows = asked[known]
    taken = rows.take(pa.array(np.flatnonzero(fresh), pa.int64()))
    fresh_batch = RecordBatch(batch.kind, batch.source, batch.run_id, batch.received_at, taken)
    fingerprints = np.array([fingerprint for fingerprint in remembered if fingerprint is not None], np.uint64)
    seen = _seen_batch(batch, seen_rows, uint64_hex(fingerprints)) if len(seen_rows) else None
    refusals = [refusal for refusal in found if refusal is not None]
    return Triage(
        fresh_batch, seen, memory.reference, pending, sorted(set(keys[unknown].tolist())), day, refused_rows, refusals
    )


def _seen_batch(batch: RecordBatch, rows: np.ndarray, fingerprints: pa.Array) -> RecordBatch:
    """The seen rows as the sink takes them: uid, ids, remembered fingerprint, and the row as sent (for a replay)."""
    taken = batch.rows.take(pa.array(rows, pa.int64()))
    payload = taken.drop_columns([*PROVENANCE_COLUMNS, "content_hash"])
    table = pa.table(
        {
            **{name: taken.column(name) for name in PROVENANCE_COLUMNS},
            "fingerprint": fingerprints,
            SEEN_PAYLOAD: pa.StructArray.from_arrays(
                [column.combine_chunks() for column in payload.columns], names=payload.column_names
            ),
        }
    )
    return RecordBatch(batch.kind, batch.source, batch.run_id, batch.received_at, table, datetime.now(UTC))
