"""The one size formatter (decimal SI units, three significant figures) and the one duration formatter."""

from __future__ import annotations

import pytest

from desktop.core.text.units import format_duration, format_size


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 bytes"), (1, "1 byte"), (999, "999 bytes"), (999.4, "999 bytes"),
    (1000, "1.00 kB"), (1234, "1.23 kB"), (9_994, "9.99 kB"), (9_996, "10.0 kB"), (99_940, "99.9 kB"),
    (99_960, "100 kB"), (999_400, "999 kB"),
    (999_600, "1.00 MB"),                       # never '1000 kB': rounding moves it to the next unit
    (98_362_432, "98.4 MB"),                    # the starter model, as the Hub lists it
    (135_000_000, "135 MB"), (4_920_000_000, "4.92 GB"), (10**9, "1.00 GB"),
    (1 << 30, "1.07 GB"),                       # a GiB is not a GB
    (12_400_000_000_000, "12.4 TB"), (3 * 10**21, "3000 EB"),
])
def test_sizes_are_decimal_to_three_figures(n: float, text: str) -> None:
    assert format_size(n) == text


def test_a_speed_and_a_negative_difference() -> None:
    assert format_size(1_600_000.7) + "/s" == "1.60 MB/s"
    assert format_size(-2_500_000) == "-2.50 MB"


@pytest.mark.parametrize(("seconds", "text"), [
    (None, ""), (0, "0 s"), (0.4, "0 s"), (42, "42 s"), (59.6, "1 min 00 s"), (125, "2 min 05 s"),
    (3599, "59 min 59 s"), (3720, "1 h 02 min"), (90_000, "25 h 00 min"), (-3, "0 s"),
])
def test_durations(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text
