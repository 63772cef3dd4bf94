"""Units as users write them: tc conventions, errors that name the field."""

from __future__ import annotations

import pytest

from pydistem.errors import ValidationError
from pydistem.model.units import parse_duration, parse_percent, parse_rate, parse_size


@pytest.mark.parametrize(
    ("text", "bits"),
    [
        ("10mbit", 10e6),
        ("10mbps", 80e6),  # tc: mbps are megaBYTES per second
        ("1gbit", 1e9),
        ("500kbit", 500e3),
        ("1.5mbit", 1.5e6),
        ("2kibit", 2048),
        ("1mibit", 1024**2),
        ("100", 100),
        (" 10MBit ", 10e6),
        (1000, 1000),
    ],
)
def test_rates(text, bits):
    assert parse_rate("bandwidth", text) == pytest.approx(bits)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("20ms", 0.02), ("1.5s", 1.5), ("300us", 300e-6), ("100", 100e-6), ("0ms", 0.0)],
)
def test_durations(text, seconds):
    assert parse_duration("latency", text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "pct"), [("0.5%", 0.5), ("5", 5.0), ("25%", 25.0), (0, 0.0)])
def test_percents(text, pct):
    assert parse_percent("loss", text) == pytest.approx(pct)


@pytest.mark.parametrize(("text", "size"), [("4096", 4096), ("100k", 102400), ("2M", 2 << 20)])
def test_sizes(text, size):
    assert parse_size("queue", text) == size


@pytest.mark.parametrize(
    ("parser", "field", "value", "words"),
    [
        (parse_rate, "output.bandwidth", "-10mbit", "negative"),
        (parse_rate, "output.bandwidth", "10furlong", "unknown unit"),
        (parse_rate, "output.bandwidth", "0mbit", "greater than zero"),
        (parse_rate, "output.bandwidth", "fast", "not a rate"),
        (parse_rate, "output.bandwidth", True, "not a rate"),
        (parse_duration, "input.latency", "-5ms", "negative"),
        (parse_duration, "input.latency", "5 fortnights", "unknown unit"),
        (parse_percent, "input.loss", "101%", "at most 100"),
        (parse_percent, "input.loss", "-1%", "negative"),
        (parse_size, "input.queue", "12parsecs", "unknown unit"),
    ],
)
def test_bad_values_name_the_field(parser, field, value, words):
    with pytest.raises(ValidationError) as err:
        parser(field, value)
    assert err.value.field == field
    assert words in err.value.reason
