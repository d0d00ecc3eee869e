"""Telephone numbers in one form (E.164), so one line written two ways is one line.

Registers write the same number as ``138-0000-0000``, ``+86 138 0000 0000`` or ``13800000000``;
compared as written, the hub would take them for three numbers and miss the person they share.
Numbers are read as the town writes them (China, region ``CN``: a leading 0 is the trunk prefix)
with Google's libphonenumber data (the ``phonenumbers`` library), and kept in E.164
(``+8613800000000``), the form matching and blocking compare.
"""

from __future__ import annotations

import phonenumbers

TOWN_REGION = "CN"
"""How a number without a country code is read: as dialled in the town."""


def normalise_phone(value: str) -> str:
    """``value`` in E.164 when it can be a number of its length, else as written (trimmed).

    A value that cannot be a telephone number of any length (too short, an extension alone)
    is kept as the source wrote it rather than refused: it still says something to a person.
    """
    text = value.strip()
    try:
        number = phonenumbers.parse(text, TOWN_REGION)
    except phonenumbers.NumberParseException:
        return text
    # Possible as a whole number, not only as a local one: 12345 (a hotline) is not a line to match on.
    if phonenumbers.is_possible_number_with_reason(number) != phonenumbers.ValidationResult.IS_POSSIBLE:
        return text
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
