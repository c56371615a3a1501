"""Label and field selectors: parsing, matching and the per-kind selectable fields.

Label selectors follow ``k8s.io/apimachinery/pkg/labels`` (the string syntax of ``?labelSelector=``,
and ``metav1.LabelSelector`` objects from specs); field selectors follow ``pkg/fields`` plus the
per-kind field label conversions kube-apiserver registers. Parse errors are 400 BadRequest with
kube-apiserver's messages, which kubectl prints as ``Error from server (BadRequest): <message>``.

A nil ``metav1.LabelSelector`` matches nothing and an empty one matches everything:
``from_label_selector(None)`` and ``from_label_selector({})`` keep that difference.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from kbox.api import errors
from kbox.api.errors import FieldError, StatusError
from kbox.api.validation import is_qualified_name, is_valid_label_value, validate_label_selector

MAX_SELECTOR_LENGTH = 64 * 1024
"""Longer selectors are refused with a clean 400 before any parsing (kubectl's are a few dozen bytes)."""

# selection.Operator values, as apimachinery spells them.
IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)


def _check_length(text: str, what: str) -> None:
    if len(text) > MAX_SELECTOR_LENGTH:
        raise errors.bad_request(
            f"{what} selector is too long: {len(text)} characters, the limit is {MAX_SELECTOR_LENGTH}"
        )


def _go_quote(value: str) -> str:
    """Go's ``%q`` for a string (``strconv.Quote``), which Kubernetes' field errors use."""
    out = ['"']
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in escapes:
            out.append(escapes[ch])
        elif ch.isprintable() and not 0xD800 <= ord(ch) <= 0xDFFF:
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _field_error(path: str, value: str, detail: str) -> str:
    """A ``field.Invalid`` error's text, as ``err.Error()`` prints it."""
    return f"{path}: Invalid value: {_go_quote(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message alone, several deduplicated in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


class SelectorSyntaxError(Exception):
    """A label selector that does not parse; the text is kube-apiserver's message."""


# ---------------------------------------------------------------------------------------------------
# Label selectors


@dataclass(frozen=True, slots=True)
class Requirement:
    """One term of a label selector: ``key``, an operator and its values (sorted and unique when parsed)."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        value = labels.get(self.key)
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return value is not None and value in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return value is None or value not in self.values
        return value is not None and _compare(op, value, self.values)

    def __str__(self) -> str:
        op = self.operator
        if op == EXISTS:
            return self.key
        if op == DOES_NOT_EXIST:
            return "!" + self.key
        values = ",".join(sorted(self.values))
        if op in (IN, NOT_IN):
            return f"{self.key} {op} ({values})"
        symbol = {GREATER_THAN: ">", LESS_THAN: "<"}.get(op, op)
        return f"{self.key}{symbol}{values}"


def _parse_int(text: str) -> int | None:
    """Go's ``strconv.ParseInt(text, 10, 64)``: optional sign, ASCII digits, 64-bit range."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or not body.isascii() or not body.isdigit():
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


def _compare(op: str, value: str, values: tuple[str, ...]) -> bool:
    actual = _parse_int(value)
    bound = _parse_int(values[0]) if len(values) == 1 else None
    if actual is None or bound is None:
        return False
    return actual > bound if op == GREATER_THAN else actual < bound


class LabelSelector:
    """A conjunction of requirements, or the selector that matches nothing (from a nil LabelSelector)."""

    __slots__ = ("_nothing", "requirements")

    def __init__(self, requirements: tuple[Requirement, ...] = (), *, nothing: bool = False) -> None:
        self.requirements = tuple(sorted(requirements, key=lambda r: r.key))
        self._nothing = nothing

    @classmethod
    def everything(cls) -> LabelSelector:
        return cls()

    @classmethod
    def nothing(cls) -> LabelSelector:
        return cls(nothing=True)

    @property
    def empty(self) -> bool:
        """True when it does not restrict anything (the nothing-selector is not empty)."""
        return not self.requirements and not self._nothing

    @property
    def matches_nothing(self) -> bool:
        return self._nothing

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self._nothing:
            return False
        present = labels or {}
        return all(r.matches(present) for r in self.requirements)

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have, if the selector pins it (``k=v``, ``k==v``, ``k in (v)``)."""
        for r in self.requirements:
            if r.key == key:
                pinned = r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1
                return r.values[0] if pinned else None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)

    def __repr__(self) -> str:
        return "LabelSelector(<nothing>)" if self._nothing else f"LabelSelector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelSelector):
            return NotImplemented
        return (self.requirements, self._nothing) == (other.requirements, other._nothing)

    def __hash__(self) -> int:
        return hash((self.requirements, self._nothing))


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """``labels.SelectorFromSet``: equality on every pair; an empty or missing set selects everything."""
    return LabelSelector(tuple(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items()))


def _count_error(op: str, values: list[str]) -> str | None:
    """``labels.NewRequirement``'s check of how many values an operator takes."""
    if op in (IN, NOT_IN) and not values:
        return "for 'in', 'notin' operators, values set can't be empty"
    if op in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        return "exact-match compatibility requires one single value"
    if op in (EXISTS, DOES_NOT_EXIST) and values:
        return "values set must be empty for exists and does not exist"
    if op in (GREATER_THAN, LESS_THAN) and len(values) != 1:
        return "for 'Gt', 'Lt' operators, exactly one value is required"
    return None


def _requirement_errors(key: str, op: str, values: list[str]) -> list[str]:
    """``labels.NewRequirement``'s checks, with its unrooted field paths."""
    errs = [_field_error("key", key, "; ".join(msgs))] if (msgs := is_qualified_name(key)) else []
    if count := _count_error(op, values):
        errs.append(f"values: Invalid value: {_go_slice(values)}: {count}")
    if op in (GREATER_THAN, LESS_THAN):
        detail = "for 'Gt', 'Lt' operators, the value must be an integer"
        errs.extend(
            _field_error(f"values[{i}]", v, detail) for i, v in enumerate(values) if _parse_int(v) is None
        )
    for i, value in enumerate(values):
        if msgs := is_valid_label_value(value):
            errs.append(_field_error(f"values[{i}][{key}]", value, "; ".join(msgs)))
    return errs


def _go_slice(values: list[str]) -> str:
    return "[]string{" + ", ".join(_go_quote(v) for v in values) + "}"


def _new_requirement(key: str, op: str, values: list[str]) -> Requirement:
    errs = _requirement_errors(key, op, values)
    if errs:
        raise SelectorSyntaxError(_aggregate(errs))
    return Requirement(key, op, tuple(values))


class _Tok(Enum):
    END = "end"
    CLOSE = ")"
    COMMA = ","
    NOT = "!"
    DOUBLE_EQ = "=="
    EQ = "="
    GT = ">"
    ID = "id"
    IN = "in"
    LT = "<"
    NEQ = "!="
    NOTIN = "notin"
    OPEN = "("


_SYMBOLS = {"!": _Tok.NOT, "!=": _Tok.NEQ, "=": _Tok.EQ, "==": _Tok.DOUBLE_EQ, "(": _Tok.OPEN}
_SYMBOLS |= {")": _Tok.CLOSE, ",": _Tok.COMMA, ">": _Tok.GT, "<": _Tok.LT}
_KEYWORDS = {"in": _Tok.IN, "notin": _Tok.NOTIN}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")
_OPERATOR_OF = {
    _Tok.IN: IN,
    _Tok.NOTIN: NOT_IN,
    _Tok.EQ: EQUALS,
    _Tok.DOUBLE_EQ: DOUBLE_EQUALS,
    _Tok.NEQ: NOT_EQUALS,
    _Tok.GT: GREATER_THAN,
    _Tok.LT: LESS_THAN,
}


def _lex(text: str) -> list[tuple[_Tok, str]]:
    """Tokens, the longest operator first (``==`` before ``=``), ending with END."""
    items: list[tuple[_Tok, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            items.append((_Tok.END, ""))
            return items
        start = i
        if text[i] in _SPECIAL:
            symbol = text[start : start + 2]
            if len(symbol) < 2 or symbol not in _SYMBOLS:
                symbol = text[start]
            i += len(symbol)
            items.append((_SYMBOLS[symbol], symbol))
            continue
        while i < n and text[i] not in _SPECIAL and text[i] not in _WHITESPACE:
            i += 1
        word = text[start:i]
        items.append((_KEYWORDS.get(word, _Tok.ID), word))


class _Parser:
    """The recursive-descent parser of ``labels.Parse``; ``in``/``notin`` read as values where values go."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def peek(self, values: bool = True) -> tuple[_Tok, str]:
        return self._as_value(self.items[self.pos], values)

    def take(self, values: bool = True) -> tuple[_Tok, str]:
        item = self.items[self.pos]
        self.pos += 1
        return self._as_value(item, values)

    @staticmethod
    def _as_value(item: tuple[_Tok, str], values: bool) -> tuple[_Tok, str]:
        if values and item[0] in (_Tok.IN, _Tok.NOTIN):
            return _Tok.ID, item[1]
        return item

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.peek()
            if tok == _Tok.END:
                return requirements
            if tok not in (_Tok.ID, _Tok.NOT):
                raise SelectorSyntaxError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorSyntaxError as err:
                raise SelectorSyntaxError(f"unable to parse requirement: {err}") from None
            tok, lit = self.take()
            if tok == _Tok.END:
                return requirements
            if tok != _Tok.COMMA:
                raise SelectorSyntaxError(f"found '{lit}', expected: ',' or 'end of string'")
            tok, lit = self.peek()
            if tok not in (_Tok.ID, _Tok.NOT):
                raise SelectorSyntaxError(f"found '{lit}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        key, op = self.key_and_inferred_operator()
        if op in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, op, [])
        tok, lit = self.take(values=False)
        if tok not in _OPERATOR_OF:
            raise SelectorSyntaxError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        op = _OPERATOR_OF[tok]
        values = self.value_set() if op in (IN, NOT_IN) else self.exact_value()
        return _new_requirement(key, op, sorted(values))

    def key_and_inferred_operator(self) -> tuple[str, str]:
        op = ""
        tok, lit = self.take()
        if tok == _Tok.NOT:
            op = DOES_NOT_EXIST
            tok, lit = self.take()
        if tok != _Tok.ID:
            raise SelectorSyntaxError(f"found '{lit}', expected: identifier")
        if msgs := is_qualified_name(lit):
            raise SelectorSyntaxError(_field_error("<nil>", lit, "; ".join(msgs)))
        if self.peek()[0] in (_Tok.END, _Tok.COMMA) and op != DOES_NOT_EXIST:
            op = EXISTS
        return lit, op

    def value_set(self) -> set[str]:
        tok, lit = self.take()
        if tok != _Tok.OPEN:
            raise SelectorSyntaxError(f"found '{lit}' expected: '('")
        tok, lit = self.peek()
        if tok == _Tok.CLOSE:
            self.take()
            return {""}
        if tok not in (_Tok.ID, _Tok.COMMA):
            raise SelectorSyntaxError(f"found '{lit}', expected: ',', ')' or identifier")
        values = self.identifiers()
        if self.take()[0] != _Tok.CLOSE:
            raise SelectorSyntaxError(f"found '{lit}', expected: ')'")
        return values

    def identifiers(self) -> set[str]:
        """A comma-separated list whose items may be empty: ``(a,,b)``, ``(,a)`` and ``(a,)`` hold ``""``."""
        values: set[str] = set()
        while True:
            tok, lit = self.take()
            if tok == _Tok.ID:
                values.add(lit)
                nxt, nxt_lit = self.peek()
                if nxt == _Tok.CLOSE:
                    return values
                if nxt != _Tok.COMMA:
                    raise SelectorSyntaxError(f"found '{nxt_lit}', expected: ',' or ')'")
            elif tok == _Tok.COMMA:
                if not values:
                    values.add("")
                nxt = self.peek()[0]
                if nxt == _Tok.CLOSE:
                    values.add("")
                    return values
                if nxt == _Tok.COMMA:
                    values.add("")
            else:
                raise SelectorSyntaxError(f"found '{lit}', expected: ',', or identifier")

    def exact_value(self) -> set[str]:
        if self.peek()[0] in (_Tok.END, _Tok.COMMA):
            return {""}
        tok, lit = self.take()
        if tok != _Tok.ID:
            raise SelectorSyntaxError(f"found '{lit}', expected: identifier")
        return {lit}


def parse_labels(text: str) -> LabelSelector:
    """Parse ``?labelSelector=``; a syntax or key/value error is a 400 with kube-apiserver's message."""
    _check_length(text, "label")
    try:
        return LabelSelector(tuple(_Parser(text).parse()))
    except SelectorSyntaxError as err:
        raise errors.bad_request(str(err)) from None


def from_label_selector(obj: Mapping[str, Any] | None, path: str = "spec.selector") -> LabelSelector:
    """A ``metav1.LabelSelector`` as a selector: None matches nothing, ``{}`` matches everything.

    An invalid selector raises a 422 ``StatusError`` (reason Invalid) whose causes are the field errors
    of :func:`kbox.api.validation.validate_label_selector` at ``path``. Strategies validate specs with
    that function first; controllers then only meet stored, valid selectors.
    """
    if obj is None:
        return LabelSelector.nothing()
    causes = validate_label_selector(obj, path)
    if causes:
        raise _invalid_selector(causes)
    requirements = [Requirement(k, EQUALS, (v,)) for k, v in (obj.get("matchLabels") or {}).items()]
    operators = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
    for expr in obj.get("matchExpressions") or []:
        values = tuple(expr.get("values") or ())
        requirements.append(Requirement(expr["key"], operators[expr["operator"]], values))
    return LabelSelector(tuple(requirements))


def _invalid_selector(causes: list[FieldError]) -> StatusError:
    message = "; ".join(f"{c.field}: {c.message()}" for c in causes)
    return StatusError(message, 422, "Invalid", {"causes": [c.cause() for c in causes]})


# ---------------------------------------------------------------------------------------------------
# Field selectors


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """``field=value`` (``==`` is read as ``=``) or ``field!=value``; the value is unescaped."""

    field: str
    operator: str
    value: str

    def matches(self, fields: Mapping[str, str]) -> bool:
        equal = fields.get(self.field, "") == self.value
        return equal if self.operator == EQUALS else not equal

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{escape_field_value(self.value)}"


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A conjunction of field requirements; empty matches everything. A missing field reads as ``""``."""

    requirements: tuple[FieldRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all(r.matches(fields) for r in self.requirements)

    def requires_exact_match(self, field: str) -> str | None:
        """The value a ``field=value`` term pins ``field`` to, if any (to narrow by name or namespace)."""
        for r in self.requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def unescape_field_value(value: str) -> str:
    """``fields.UnescapeValue``: ``\\\\``, ``\\,`` and ``\\=`` only; a bare ``,`` or ``=`` is an error."""
    if not any(ch in value for ch in "\\,="):
        return value
    out: list[str] = []
    escaped = False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise errors.bad_request(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise errors.bad_request(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if escaped:
        raise errors.bad_request("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_terms(text: str) -> list[str]:
    """Split on commas that are not escaped."""
    terms: list[str] = []
    start, escaped = 0, False
    for i, ch in enumerate(text):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    """The first operator from the left, ``!=`` and ``==`` winning over ``=`` at the same place."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_fields(text: str) -> FieldSelector:
    """Parse ``?fieldSelector=``; terms are sorted, as ``fields.ParseSelector`` sorts them."""
    _check_length(text, "field")
    if not text:
        return FieldSelector()
    requirements: list[FieldRequirement] = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise errors.bad_request(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, raw = split
        requirements.append(
            FieldRequirement(field, NOT_EQUALS if op == "!=" else EQUALS, unescape_field_value(raw))
        )
    return FieldSelector(tuple(requirements))


# Per-kind selectable fields. ``_FIELD_LABELS`` is what kube-apiserver's field label conversion accepts
# for a (group, kind); ``_FIELD_SETS`` computes the values from an object of that group's shape.

_META = ("metadata.name", "metadata.namespace")
_INVOLVED = ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
_NOT_SUPPORTED = "field label not supported: {label}"


@dataclass(frozen=True, slots=True)
class _FieldLabels:
    accepted: frozenset[str]
    aliases: Mapping[str, str]
    message: str = _NOT_SUPPORTED


def _labels(
    *names: str, aliases: Mapping[str, str] | None = None, message: str = _NOT_SUPPORTED
) -> _FieldLabels:
    return _FieldLabels(frozenset(names), aliases or {}, message)


_FIELD_LABELS: dict[tuple[str, str], _FieldLabels] = {
    ("", "Pod"): _labels(
        *_META,
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
        aliases={"spec.host": "spec.nodeName"},
    ),
    ("", "Node"): _labels("metadata.name", "spec.unschedulable"),
    ("", "Namespace"): _labels("metadata.name", "status.phase"),
    ("", "ReplicationController"): _labels(*_META, "status.replicas"),
    ("", "Secret"): _labels(*_META, "type"),
    ("", "Service"): _labels(*_META, "spec.clusterIP", "spec.type"),
    ("", "Event"): _labels(
        *_META,
        *(f"involvedObject.{f}" for f in _INVOLVED),
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("events.k8s.io", "Event"): _labels(
        *_META, *(f"regarding.{f}" for f in _INVOLVED), "reason", "reportingController", "type"
    ),
    ("apps", "ReplicaSet"): _labels(*_META, "status.replicas"),
    ("batch", "Job"): _labels(
        *_META, "status.successful", message='field label "{label}" not supported for batchv1.Job'
    ),
    ("certificates.k8s.io", "CertificateSigningRequest"): _labels("metadata.name", "spec.signerName"),
}


def check_fields(group: str, kind: str, selector: FieldSelector) -> FieldSelector:
    """Refuse labels the kind does not support (400, kube-apiserver's wording); resolve aliases.

    The returned selector uses the labels :func:`field_set` produces for the same group and kind.
    The first unsupported label in sorted term order is the one reported, as upstream.
    """
    labels = _FIELD_LABELS.get((group, kind))
    out: list[FieldRequirement] = []
    for r in selector.requirements:
        if labels is None:
            if r.field not in _META:
                quoted = ", ".join(_go_quote(m) for m in _META)
                raise errors.bad_request(f"{_go_quote(r.field)} is not a known field selector: only {quoted}")
            out.append(r)
        elif r.field in labels.aliases:
            out.append(FieldRequirement(labels.aliases[r.field], r.operator, r.value))
        elif r.field in labels.accepted:
            out.append(r)
        else:
            raise errors.bad_request(labels.message.format(label=r.field))
    return FieldSelector(tuple(out))


def _get(obj: Mapping[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _text(obj: Mapping[str, Any], *path: str) -> str:
    value = _get(obj, *path)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flag(obj: Mapping[str, Any], *path: str) -> str:
    return "true" if _get(obj, *path) is True else "false"


def _count(obj: Mapping[str, Any], *path: str) -> str:
    value = _get(obj, *path)
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else "0"


def _pod_ip(pod: Mapping[str, Any]) -> str:
    ips = _get(pod, "status", "podIPs")
    if isinstance(ips, list) and ips and isinstance(ips[0], dict):
        return str(ips[0].get("ip") or "")
    return _text(pod, "status", "podIP")


def _pod_fields(pod: Mapping[str, Any]) -> dict[str, str]:
    return {
        "spec.nodeName": _text(pod, "spec", "nodeName"),
        "spec.restartPolicy": _text(pod, "spec", "restartPolicy"),
        "spec.schedulerName": _text(pod, "spec", "schedulerName"),
        "spec.serviceAccountName": _text(pod, "spec", "serviceAccountName"),
        "spec.hostNetwork": _flag(pod, "spec", "hostNetwork"),
        "status.phase": _text(pod, "status", "phase"),
        "status.podIP": _pod_ip(pod),
        "status.nominatedNodeName": _text(pod, "status", "nominatedNodeName"),
    }


def _event_fields(event: Mapping[str, Any]) -> dict[str, str]:
    fields = {f"involvedObject.{f}": _text(event, "involvedObject", f) for f in _INVOLVED}
    reporting = _text(event, "reportingComponent")
    fields.update(
        reason=_text(event, "reason"),
        reportingComponent=reporting,
        source=_text(event, "source", "component") or reporting,
        type=_text(event, "type"),
    )
    return fields


def _events_v1_fields(event: Mapping[str, Any]) -> dict[str, str]:
    fields = {f"regarding.{f}": _text(event, "regarding", f) for f in _INVOLVED}
    reporting = _text(event, "reportingController")
    fields.update(
        reason=_text(event, "reason"),
        reportingController=reporting,
        source=_text(event, "deprecatedSource", "component") or reporting,
        type=_text(event, "type"),
    )
    return fields


_FIELD_SETS: dict[tuple[str, str], Callable[[Mapping[str, Any]], dict[str, str]]] = {
    ("", "Pod"): _pod_fields,
    ("", "Node"): lambda o: {"spec.unschedulable": _flag(o, "spec", "unschedulable")},
    ("", "Namespace"): lambda o: {"status.phase": _text(o, "status", "phase")},
    ("", "ReplicationController"): lambda o: {"status.replicas": _count(o, "status", "replicas")},
    ("", "Secret"): lambda o: {"type": _text(o, "type")},
    ("", "Service"): lambda o: {
        "spec.clusterIP": _text(o, "spec", "clusterIP"),
        "spec.type": _text(o, "spec", "type"),
    },
    ("", "Event"): _event_fields,
    ("events.k8s.io", "Event"): _events_v1_fields,
    ("apps", "ReplicaSet"): lambda o: {"status.replicas": _count(o, "status", "replicas")},
    ("batch", "Job"): lambda o: {"status.successful": _count(o, "status", "succeeded")},
    ("certificates.k8s.io", "CertificateSigningRequest"): lambda o: {
        "spec.signerName": _text(o, "spec", "signerName")
    },
}


def field_set(group: str, kind: str, obj: Mapping[str, Any]) -> dict[str, str]:
    """The selectable fields of ``obj``: ``metadata.name``, ``metadata.namespace`` ("" when cluster-scoped)
    and the kind's own. Booleans read ``"true"``/``"false"``, counts as decimal strings."""
    fields = {
        "metadata.name": _text(obj, "metadata", "name"),
        "metadata.namespace": _text(obj, "metadata", "namespace"),
    }
    extra = _FIELD_SETS.get((group, kind))
    if extra is not None:
        fields.update(extra(obj))
    return fields
