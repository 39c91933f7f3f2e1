"""The page number a request asks for (`?page=N`): read here for every paginated page and API.

A member types whatever they like after `?page=`; this turns it into a page
number the database can take, or says that no page has that number.
"""

from __future__ import annotations

import re

# No library has two thousand million pages; below this, (page - 1) × per page
# stays within PostgreSQL's bigint OFFSET for any page size up to 4·10⁹.
PAGE_MAX = 2**31 - 1
_WHOLE_NUMBER = re.compile(r"\s*([+-]?)([0-9]+)\s*")


def page_number(raw: object) -> int | None:
    """The page asked for by a `?page=` value (a str, an int, or None when absent).

    Returns 1 for a missing value or one that is not a whole number written in
    ASCII digits ("two", "1.5", "²"), as Django's Paginator.get_page does, and
    None for a whole number that no page can have: below 1, or above PAGE_MAX
    (however many digits it has). The caller shows its last page for None.
    """
    if isinstance(raw, bool):
        return 1
    if isinstance(raw, int):
        number = raw
    elif isinstance(raw, str) and (match := _WHOLE_NUMBER.fullmatch(raw)):
        sign, digits = match.group(1), match.group(2).lstrip("0") or "0"
        if len(digits) > len(str(PAGE_MAX)):  # also spares int() a 5,000-digit string
            return None
        number = -int(digits) if sign == "-" else int(digits)
    else:
        return 1
    return number if 1 <= number <= PAGE_MAX else None
