"""The small Go-compatibility layers of the structural engine: string formats (kube-openapi's
``strfmt`` checkers), RE2 patterns run by Python's ``re``, and Go's printing of values."""

from __future__ import annotations

from typing import Any

import pytest

from kbox.api.structural import formats, gofmt, regex

VALID: dict[str, list[str]] = {
    "date": ["2024-02-29", "0001-01-01"],
    "date-time": ["2024-02-29T10:00:00Z", "2024-02-29t10:00:00.123+02:00", "2024-01-01T23:59:59.5-07:00"],
    "duration": ["1h30m", "0", "1.5s", "300ms", "-2h", "3 days", "1 hour 5 min"],
    "uuid": ["123e4567-e89b-12d3-a456-426614174000", "123E4567E89B12D3A456426614174000"],
    "uuid4": ["123e4567-e89b-42d3-a456-426614174000"],
    "email": ["someone@example.com", "Some One <someone@example.com>", "a.b+c@sub.example.org"],
    "hostname": ["example.com", "a-b.example.com", "localhost", "xn--bcher-kva.example"],
    "ipv4": ["10.0.0.1", "010.1.1.1", "::ffff:1.2.3.4"],
    "ipv6": ["::1", "fe80::1", "2001:db8::ff00:42:8329"],
    "cidr": ["10.0.0.0/8", "::/0", "2001:db8::/32"],
    "mac": ["00:00:5e:00:53:01", "00-00-5E-00-53-01", "0000.5e00.5301", "00:00:00:00:fe:80:00:00"],
    "uri": [
        "https://example.com/x?y=1",
        "/relative/path",
        "mailto:someone@example.com",
        "http://[::1]:8080/",
    ],
    "byte": ["aGVsbG8=", "aGVsbG8h"],
    "bsonobjectid": ["507f1f77bcf86cd799439011"],
    "hexcolor": ["#fff", "A0B1C2"],
    "rgbcolor": ["rgb(255, 0, 10)"],
    "isbn10": ["0-321-75104-3"],
    "isbn13": ["978-0321751041"],
    "creditcard": ["4111 1111 1111 1111"],
    "ssn": ["123-45-6789"],
    "password": ["anything at all"],
}

INVALID: dict[str, list[str]] = {
    "date": ["2023-02-29", "2024-1-01", "20240101", "2024-13-01"],
    "date-time": ["2024-02-29", "2024-02-29T24:00:00Z", "2024-02-29T10:00:00", "yesterday"],
    "duration": ["soon", "1x", ""],
    "uuid": ["123e4567", "g23e4567-e89b-12d3-a456-426614174000"],
    "uuid4": ["123e4567-e89b-12d3-a456-426614174000"],
    "email": ["someone", "@example.com", "someone@"],
    "hostname": ["my-host", "-bad.com", "a..b", "x" * 64 + ".com"],
    "ipv4": ["10.0.0.256", "1.2.3", "::1"],
    "ipv6": ["1.2.3.4", "fe80::1%eth0", "::g"],
    "cidr": ["10.0.0.0/33", "10.0.0.0", "10.0.0.0/08"],
    "mac": ["00:00:5e:00:53", "00:00-5e:00:53:01", "zz:00:5e:00:53:01"],
    "uri": ["relative/path", "", "http://exa mple.com/"],
    "byte": ["not base64!", "abc", ""],
    "bsonobjectid": ["507f1f77bcf86cd79943901"],
    "hexcolor": ["#ffff"],
    "rgbcolor": ["rgb(256,0,0)"],
    "isbn10": ["0-321-75104-4"],
    "isbn13": ["978-0321751042"],
    "creditcard": ["4111 1111 1111 1112"],
    "ssn": ["123456789"],
}


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in VALID.items() for v in vs])
def test_valid_formats(name: str, value: str) -> None:
    assert formats.check(name, value), f"{value!r} should be a valid {name}"


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in INVALID.items() for v in vs])
def test_invalid_formats(name: str, value: str) -> None:
    assert not formats.check(name, value), f"{value!r} should not be a valid {name}"


def test_only_kube_apiserver_formats_are_checked() -> None:
    assert formats.is_supported("date-time") and formats.is_supported("datetime")
    for name in ("int32", "int64", "float", "double", "quantity", "made-up"):
        assert not formats.is_supported(name)
        assert formats.check(name, "anything")


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^[a-z]+$", "abc", True),
        ("^[a-z]+$", "abc\n", False),  # RE2's $ is the end of the text
        ("(?m)^b$", "a\nb\nc", True),
        ("[0-9]", "a1", True),  # a search, not a full match
        ("^\\d+$", "١٢٣", False),  # \d is ASCII-only in RE2
        ("^[[:alpha:]]+$", "abcXYZ", True),
        ("^[[:digit:][:upper:]]+$", "A1B2", True),
        ("^[[:digit:]]+$", "a", False),
        ("^\\Qa.b\\E$", "a.b", True),
        ("^\\Qa.b\\E$", "axb", False),
        ("^abc\\z", "abc", True),
        ("^(?<word>[a-z]+)$", "abc", True),
        ("^\\pL+$", "héllo", True),
        ("^\\p{L}+$", "héllo1", False),
        ("^\\PN+$", "abc", True),
        # flags set mid-pattern hold to the end of their group, across | (Prometheus operator CRDs)
        ("^((?i)january|february|1[0-2])$", "FEBRUARY", True),
        ("^((?i)jan|feb)x$", "Febx", True),
        ("^((?i)jan|feb)x$", "FebX", False),
        ("^(?i)(abort|warn)?$", "WARN", True),
        ("a(?i)b|c", "C", True),
        ("a(?i)b|c", "AB", False),
        ("(?i-s)a.b", "A\nB", False),
        ("(?s:a.b)", "a\nb", True),
    ],
)
def test_re2_patterns(pattern: str, text: str, matches: bool) -> None:
    assert regex.search(pattern, text) is matches


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("+", "error parsing regexp: missing argument to repetition operator: `+`"),
        ("a**", "error parsing regexp: invalid nested repetition operator: `**`"),
        ("(abc", "error parsing regexp: missing closing ): `(abc`"),
        ("abc)", "error parsing regexp: unexpected ): `abc)`"),
        ("[abc", "error parsing regexp: missing closing ]: `[abc`"),
        ("a(?=b)", "error parsing regexp: invalid or unsupported Perl syntax: `(?=`"),
        ("(?<!a)b", "error parsing regexp: invalid or unsupported Perl syntax: `(?<!`"),
        ("(a)\\1", "error parsing regexp: invalid escape sequence: `\\1`"),
        ("abc\\", "error parsing regexp: trailing backslash at end of expression: ``"),
    ],
)
def test_re2_rejections_use_go_messages(pattern: str, message: str) -> None:
    assert regex.check(pattern) == message
    assert regex.search(pattern, "abc") is None


def test_unsupported_re2_is_not_an_error() -> None:
    assert regex.check("^\\p{Greek}$") is None
    assert regex.search("^\\p{Greek}$", "\u03b1") is None
    with pytest.raises(regex.UnsupportedPattern):
        regex.compile_pattern("^\\p{Greek}$")


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (None, "null"),
        (True, "true"),
        (3, "3"),
        (3.0, "3"),
        (1.5, "1.5"),
        (1e20, "100000000000000000000"),
        (1e21, "1e+21"),
        (1.5e-7, "1.5e-07"),
        (0.0001, "0.0001"),
        ('a"b\\c\n\x01é', '"a\\"b\\\\c\\n\\x01é"'),
        (
            {"b": [1, None], "a": "x"},
            'map[string]interface {}{"a":"x", "b":[]interface {}{1, interface {}(nil)}}',
        ),
        ([], "[]interface {}{}"),
    ],
)
def test_values_print_as_field_errors_print_them(value: Any, shown: str) -> None:
    assert str(gofmt.GoValue(value)) == shown
