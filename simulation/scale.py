"""How much the simulated town does: the busy demo day, and a day of a year at the article's scale.

Kept free of imports so that ``gridhub demo --help`` shows them without loading the simulation.
"""

from __future__ import annotations

DEMO_EVENTS = 200
"""Valid incident reports of the one demo day: a busy day, to exercise the hub (a day of a year has fewer)."""
YEAR_EVENTS = 23
"""Valid grid-worker reports a day of a year: 23 × 365 = 8,395, the article's "8,000+" a year."""
YEAR_APPLICATIONS = 30
"""Applications a day at the service centre in a year: 10,950 over its 34 windows (the article gives no figure;
about one a window a working day, kept low because each takes the hub as much work as a case update)."""
YEAR_DAYS = 365
"""A run this long is a year: it must end on the article's figures."""
MAX_DAYS = 366
"""The longest run: a leap year."""
TRACK_DAYS = 7
"""Days at the end of a run that carry patrol tracks (the patrol compliance KPIs are for these days)."""
CLOSURE_RATE = 0.991
"""The article's closure rate, which a year is calibrated to."""
