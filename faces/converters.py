"""URL converters for the member pages."""

from __future__ import annotations

import datetime as dt


class YearConverter:
    """A calendar year in a URL (`/years/2019/`): 1 to 9999, what `datetime.date` can hold.

    Any other number (0, 10000, twenty digits) does not match the route, so it
    answers 404 instead of failing in `date()` with a ValueError or OverflowError.
    """

    regex = "[0-9]+"

    def to_python(self, value: str) -> int:
        digits = value.lstrip("0")
        if not digits or len(digits) > len(str(dt.MAXYEAR)):
            raise ValueError(f"no year {value}")
        year = int(digits)
        if not dt.MINYEAR <= year <= dt.MAXYEAR:
            raise ValueError(f"no year {value}")
        return year

    def to_url(self, value: int) -> str:
        return str(value)
