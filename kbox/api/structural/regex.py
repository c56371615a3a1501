"""Schema ``pattern``s: Go's RE2 syntax, evaluated with Python's ``re`` after a small translation.

kube-apiserver compiles a ``pattern`` with Go's ``regexp`` (RE2) and tests it with ``MatchString``: a
search anywhere in the string, not a full match. Python's ``re`` reads most RE2 the same way; the
translation below covers where they differ:

* ``$`` means the very end of the text in RE2 (no ``(?m)``), Python's also matches before a final
  newline: it becomes ``\\Z``; RE2's ``\\z`` becomes ``\\Z`` too, and RE2 has no ``\\Z`` of its own;
* ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are ASCII-only in RE2, so patterns compile with ``re.ASCII``;
* POSIX classes inside brackets (``[[:alpha:]]``), ``\\Q...\\E`` literals and ``(?<name>...)`` groups
  are rewritten into Python's spelling; ``\\pL``/``\\p{L}``, ``\\p{Lu}``, ``\\p{Ll}``, ``\\p{N}`` and
  ``\\p{Nd}`` become equivalent Unicode classes (approximations for ``\\p{Lu}``/``\\p{Ll}``: ASCII ranges
  plus Python's letter classes); other Unicode classes are reported as not supported;
* what RE2 rejects is rejected here with Go's message: look-arounds (``(?=``, ``(?!``, ``(?<=``,
  ``(?<!``), backreferences (``\\1``), and the usual syntax errors.

Known gaps: ``(?i)`` with ``re.ASCII`` folds ASCII letters only (RE2 folds all of Unicode), and
possessive or atomic constructs that Python 3.11 rejects are reported with a generic message.
"""

from __future__ import annotations

import functools
import re

_POSIX = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}


class PatternError(ValueError):
    """A pattern Go's ``regexp.Compile`` would reject; the message is Go's."""


class UnsupportedPattern(ValueError):
    """A valid RE2 pattern that kbox cannot evaluate with Python's ``re``."""


def _go_error(code: str, expr: str) -> PatternError:
    return PatternError(f"error parsing regexp: {code}: `{expr}`")


def _unicode_class(name: str, negated: bool) -> str:
    if name == "L":  # letters in Unicode mode, whatever the pattern's ASCII flag
        return "(?u:[\\W\\d_])" if negated else "(?u:[^\\W\\d_])"
    if name in ("N", "Nd"):
        return "[^0-9]" if negated else "[0-9]"
    if name == "Lu":
        return "[^A-Z]" if negated else "[A-Z]"
    if name == "Ll":
        return "[^a-z]" if negated else "[a-z]"
    raise UnsupportedPattern(f"the Unicode class \\p{{{name}}} is not supported by kbox")


def _translate_class(pattern: str, pos: int) -> tuple[str, int]:
    """A bracket expression starting at ``pos`` (the ``[``); returns its Python form and the end."""
    out = ["["]
    i = pos + 1
    if i < len(pattern) and pattern[i] == "^":
        out.append("^")
        i += 1
    first = True
    while i < len(pattern):
        char = pattern[i]
        if char == "]" and not first:
            out.append("]")
            return "".join(out), i + 1
        first = False
        if pattern.startswith("[:", i):
            end = pattern.find(":]", i + 2)
            if end < 0:
                out.append("\\[")
                i += 1
                continue
            name = pattern[i + 2 : end]
            negated = name.startswith("^")
            name = name.removeprefix("^")
            if name not in _POSIX:
                raise _go_error("invalid character class range", pattern[i : end + 2])
            if negated:
                raise UnsupportedPattern("negated POSIX classes ([:^name:]) are not supported by kbox")
            out.append(_POSIX[name])
            i = end + 2
            continue
        if char == "[":
            out.append("\\[")
            i += 1
            continue
        if char == "\\":
            if i + 1 >= len(pattern):
                raise _go_error("missing closing ]", pattern[pos:])
            nxt = pattern[i + 1]
            if nxt in "pP":
                raise UnsupportedPattern("Unicode classes inside brackets are not supported by kbox")
            if nxt.isdigit() and nxt != "0":
                raise _go_error("invalid escape sequence", pattern[i : i + 2])
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(char)
        i += 1
    raise _go_error("missing closing ]", pattern[pos:])


_FLAGS_ONLY = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?\)")
_FLAGS_GROUP = re.compile(r"\(\?([imsU]*)(?:-([imsU]*))?:")


def _escape(pattern: str, i: int, out: list[str]) -> int:
    """One backslash escape at ``i``; returns the index after it."""
    if i + 1 >= len(pattern):
        raise _go_error("trailing backslash at end of expression", "")
    nxt = pattern[i + 1]
    if nxt == "Q":
        end = pattern.find("\\E", i + 2)
        literal = pattern[i + 2 :] if end < 0 else pattern[i + 2 : end]
        out.append(re.escape(literal))
        return len(pattern) if end < 0 else end + 2
    if nxt == "z":
        out.append("\\Z")
        return i + 2
    if nxt == "Z":
        raise _go_error("invalid escape sequence", "\\Z")
    if nxt.isdigit() and nxt != "0":
        raise _go_error("invalid escape sequence", pattern[i : i + 2])
    if nxt in "pP":
        negated = nxt == "P"
        if pattern.startswith("{", i + 2):
            end = pattern.find("}", i + 3)
            if end < 0:
                raise _go_error("invalid character class range", pattern[i:])
            name, after = pattern[i + 3 : end], end + 1
        else:
            name, after = pattern[i + 2 : i + 3], i + 3
        if name.startswith("^"):
            negated, name = not negated, name[1:]
        out.append(_unicode_class(name, negated))
        return after
    out.append(pattern[i : i + 2])
    return i + 2


def _check_flags(match: re.Match[str]) -> None:
    if "U" in match.group(0):
        raise UnsupportedPattern("the U (ungreedy) flag is not supported by kbox")


def _translate(pattern: str) -> str:
    """RE2 syntax to Python's. Flags set mid-pattern (``a(?i)b|c``) hold to the end of their group, across
    ``|``, in RE2; Python only takes them at the start, so each becomes a scoped group ``(?i:...)``,
    closed and reopened around every ``|`` of its group."""
    out: list[str] = []
    levels: list[list[str]] = [[]]  # per open group: the scoped-flag wrappers opened in it
    i = 0
    multiline = False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i = _escape(pattern, i, out)
            continue
        if char == "[":
            text, i = _translate_class(pattern, i)
            out.append(text)
            continue
        if char == "(":
            for look in ("(?=", "(?!", "(?<=", "(?<!"):
                if pattern.startswith(look, i):
                    raise _go_error("invalid or unsupported Perl syntax", look)
            flags_only = _FLAGS_ONLY.match(pattern, i)
            if flags_only is not None:
                _check_flags(flags_only)
                multiline = multiline or "m" in flags_only.group(1)
                wrapper = "(?" + flags_only.group(0)[2:-1] + ":"
                if wrapper != "(?:":
                    out.append(wrapper)
                    levels[-1].append(wrapper)
                i = flags_only.end()
                continue
            scoped = _FLAGS_GROUP.match(pattern, i)
            if scoped is not None:
                _check_flags(scoped)
                multiline = multiline or "m" in scoped.group(1)
            levels.append([])
            if pattern.startswith("(?<", i) and not pattern.startswith("(?<=", i):
                out.append("(?P<")
                i += 3
                continue
            out.append(char)
            i += 1
            continue
        if char == "|":
            out.append(")" * len(levels[-1]) + "|" + "".join(levels[-1]))
            i += 1
            continue
        if char == ")":
            out.append(")" * len(levels[-1]) + ")")
            if len(levels) > 1:
                levels.pop()
            i += 1
            continue
        if char == "$" and not multiline:
            out.append("\\Z")
            i += 1
            continue
        out.append(char)
        i += 1
    out.append(")" * len(levels[0]) if len(levels) == 1 else "")
    return "".join(out)


_PY_ERRORS = (
    ("missing ), unterminated subpattern", "missing closing )"),
    ("unbalanced parenthesis", "unexpected )"),
    ("unterminated character set", "missing closing ]"),
    ("multiple repeat", "invalid nested repetition operator"),
    ("nothing to repeat", "missing argument to repetition operator"),
    ("bad character range", "invalid character class range"),
    ("bad escape", "invalid escape sequence"),
)


@functools.lru_cache(maxsize=1024)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    """The compiled pattern; :class:`PatternError` for invalid RE2, :class:`UnsupportedPattern` for RE2
    that Python cannot run."""
    translated = _translate(pattern)
    try:
        return re.compile(translated, re.ASCII)
    except re.error as exc:
        for python_text, go_code in _PY_ERRORS:
            if python_text in str(exc):
                expr = pattern
                if exc.pos is not None and go_code == "missing argument to repetition operator":
                    expr = translated[exc.pos : exc.pos + 1]
                elif exc.pos is not None and go_code == "invalid nested repetition operator":
                    expr = translated[max(exc.pos - 1, 0) : exc.pos + 1]
                raise _go_error(go_code, expr) from None
        raise _go_error("invalid syntax", pattern) from None


def check(pattern: str) -> str | None:
    """Why Go would refuse ``pattern`` (``error parsing regexp: ...``), or ``None``."""
    try:
        compile_pattern(pattern)
    except PatternError as exc:
        return str(exc)
    except UnsupportedPattern:
        return None
    return None


def search(pattern: str, text: str) -> bool | None:
    """Whether ``pattern`` matches anywhere in ``text`` (``MatchString``); ``None`` when kbox cannot
    evaluate it (the caller treats that as a pass and warns once, at schema compile time)."""
    try:
        compiled = compile_pattern(pattern)
    except (PatternError, UnsupportedPattern):
        return None
    return compiled.search(text) is not None
