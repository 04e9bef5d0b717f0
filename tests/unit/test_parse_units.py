"""units.human_bytes / parse_size."""

import pytest

from vmainspect.units import human_bytes, parse_size


@pytest.mark.parametrize(
    "n,text",
    [
        (None, "?"),
        (0, "0"),
        (1, "1B"),
        (1023, "1023B"),
        (1024, "1K"),
        (1536, "1.5K"),
        (4096, "4K"),
        (10 * 1024 - 1, "10K"),
        (640 * 1024, "640K"),
        (1023 * 1024, "1023K"),
        (1024 * 1024 - 1, "1M"),
        (1572864, "1.5M"),
        (12 << 30, "12G"),
        (4 << 30, "4G"),
        (3 << 40, "3T"),
        (-4096, "-4K"),
    ],
)
def test_human_bytes(n, text):
    assert human_bytes(n) == text


def test_human_bytes_is_short():
    for n in [0] + [int(1.37**e) for e in range(1, 140)]:
        assert len(human_bytes(n)) <= 5, n


@pytest.mark.parametrize(
    "text,n",
    [
        ("4096", 4096),
        ("4K", 4096),
        ("4k", 4096),
        ("1.5M", 1572864),
        ("2GiB", 2 << 30),
        ("12g", 12 << 30),
        (" 3 M ", 3 << 20),
        ("1T", 1 << 40),
        ("7B", 7),
    ],
)
def test_parse_size(text, n):
    assert parse_size(text) == n


@pytest.mark.parametrize("bad", ["", "x", "4Q", "-1K", "1..5M", "K"])
def test_parse_size_rejects(bad):
    with pytest.raises(ValueError):
        parse_size(bad)


def test_plural():
    from vmainspect.units import plural

    assert [plural(n, "page") for n in (0, 1, 2, 1024)] == ["0 pages", "1 page", "2 pages", "1,024 pages"]
    assert plural(1, "major fault") == "1 major fault" and plural(3, "VMA") == "3 VMAs"
