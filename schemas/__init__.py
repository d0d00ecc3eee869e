"""Contracts every arrow of the pipeline speaks: raw envelopes, canonical records, rejects; each versioned."""

from zoneinfo import ZoneInfo

TOWN_TIMEZONE = ZoneInfo("Asia/Shanghai")  # every feed in the town reports China Standard Time
