"""Contracts every arrow of the pipeline speaks: raw envelopes, canonical records, rejects."""

SCHEMA_VERSION = 1
