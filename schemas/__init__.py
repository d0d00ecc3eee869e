"""Contracts every arrow of the pipeline speaks: raw envelopes, canonical records, rejects."""

from zoneinfo import ZoneInfo

SCHEMA_VERSION = 1
TOWN_TIMEZONE = ZoneInfo("Asia/Shanghai")  # every feed in the town reports China Standard Time
