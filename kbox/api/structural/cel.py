"""``x-kubernetes-validations``: CEL rules, evaluated with ``cel-python`` where it can run them.

kube-apiserver compiles each rule with cel-go plus Kubernetes' own CEL libraries (lists, regex, URLs,
quantities, IPs, ...) and evaluates it with ``self`` bound to the value of the field the rule sits on
(and ``oldSelf`` to the old value, on updates, for transition rules). ``cel-python`` implements
standard CEL; kbox adds Kubernetes' string, list, regex and quantity functions (:mod:`.celfuncs`) and
enforces a rule only when it uses nothing else: a rule calling any other function (``url()``, ``ip()``,
``cidr()`` ...), using optional field syntax (``self.?x``) or that cel-python cannot parse is not
enforced, and :func:`warnings` says so for the caller to pass on as a ``Warning`` header. A rule that
runs and yields ``false`` fails as kube-apiserver words it::

    spec: Invalid value: "object": minReplicas must not exceed maxReplicas
    spec: Invalid value: "object": failed rule: self.minReplicas <= self.maxReplicas

(``reason`` and ``fieldPath`` of the rule are honoured; ``messageExpression`` is evaluated when it can
be, else the message or the default is used). A rule that reads a field that is not there fails with
``no such key: <field> evaluating rule: <rule>``, as upstream, unless it uses ``exists_one()``,
``map()`` or ``filter()`` (cel-python lets errors escape those where CEL's ``||``/``&&`` would absorb
them). Any other evaluation error (a type mismatch cel-go would have caught at compile time, say) is
not reported: kbox does not reject what it cannot judge the way kube-apiserver would.

Values are handed to CEL typed by the schema, as upstream's ``UnstructuredToVal`` does: ``number``
fields are doubles even when written as ``1``, int-or-string fields are either, ``date-time`` strings
are timestamps, ``duration`` strings durations, ``byte`` strings bytes, maps and lists recursively;
the object's own ``apiVersion``, ``kind`` and ``metadata`` are visible to root rules.
Transition rules (those using ``oldSelf``) run only on updates where the old value correlates: the
same property, the same map key, or the list-map item with the same keys.

Cost limits are not modelled.
"""

from __future__ import annotations

import base64
import importlib
import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from kbox.api.errors import FieldError, duplicate, forbidden, invalid, required
from kbox.api.structural import celfuncs
from kbox.api.structural.gofmt import GoValue
from kbox.api.structural.node import Node
from kbox.api.structural.validate import deep_equal

_log = logging.getLogger(__name__)

# Functions and macros of standard CEL that cel-python implements, and the Kubernetes library functions
# kbox adds to it (:mod:`.celfuncs`).
STANDARD_FUNCTIONS = frozenset(
    {
        "has", "all", "exists", "exists_one", "map", "filter",
        "size", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bool", "bytes", "duration", "timestamp", "type",
        "getDate", "getDayOfMonth", "getDayOfWeek", "getDayOfYear", "getFullYear", "getMonth",
        "getHours", "getMilliseconds", "getMinutes", "getSeconds",
    }
)  # fmt: skip
SUPPORTED_FUNCTIONS = STANDARD_FUNCTIONS | frozenset(celfuncs.FUNCTIONS)

_UNABSORBED_MACROS = re.compile(r"\b(?:exists_one|map|filter)\s*\(")
_STRINGS = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*\"""")
_CALLS = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def _celpy() -> Any:
    """``celpy``, imported on first use (half a second): most schemas carry no rules."""
    try:
        return importlib.import_module("celpy")
    except ImportError:  # pragma: no cover - a dependency of kbox; only a broken install lacks it
        return None


@dataclass
class Rule:
    """One compiled rule, or why kbox does not enforce it."""

    text: str
    message: str
    message_expression: str
    reason: str
    field_path: str
    program: Any = None
    message_program: Any = None
    uses_old_self: bool = False
    memo: dict[str, Any] = field(default_factory=dict)  # outcomes by value, see _evaluate
    errors_reliable: bool = True  # False when cel-python cannot absorb errors the rule may raise
    not_enforced: str = ""

    def default_message(self) -> str:
        """``ruleMessageOrDefault``."""
        if self.message.strip():
            return self.message.strip()
        return f"failed rule: {self.error_text()}"

    def error_text(self) -> str:
        """``ruleErrorString``."""
        return self.message.strip() or self.text.strip()


def _unsupported_calls(text: str) -> list[str]:
    code = _STRINGS.sub("''", text)
    return sorted({name for name in _CALLS.findall(code) if name not in SUPPORTED_FUNCTIONS})


def compile_rule(raw: dict[str, Any]) -> Rule:
    rule = Rule(
        text=str(raw.get("rule") or ""),
        message=str(raw.get("message") or ""),
        message_expression=str(raw.get("messageExpression") or ""),
        reason=str(raw.get("reason") or ""),
        field_path=str(raw.get("fieldPath") or ""),
    )
    if not rule.text.strip():
        return rule
    code = _STRINGS.sub("''", rule.text)
    rule.uses_old_self = re.search(r"\boldSelf\b", code) is not None
    # cel-python raises out of exists_one(), map() and filter() where CEL would let ``||``/``&&`` absorb
    # the error (``!has(a.x) || l.exists_one(b, a.x == b.x)``): such a rule's errors prove nothing.
    rule.errors_reliable = _UNABSORBED_MACROS.search(code) is None
    if raw.get("optionalOldSelf"):
        rule.not_enforced = "optionalOldSelf is not supported"
        return rule
    if re.search(r"\.\?|\[\?", _STRINGS.sub("''", rule.text)):
        rule.not_enforced = "uses optional field syntax (.? or [?)"
        return rule
    unsupported = _unsupported_calls(rule.text)
    if unsupported:
        rule.not_enforced = "uses " + ", ".join(f"{name}()" for name in unsupported)
        return rule
    celpy = _celpy()
    if celpy is None:
        rule.not_enforced = "no CEL evaluator is installed"
        return rule
    env = celpy.Environment()
    try:
        rule.program = env.program(env.compile(rule.text), functions=celfuncs.FUNCTIONS)
    except Exception as exc:  # cel-python's parser errors have no common base class
        rule.not_enforced = f"kbox cannot parse it ({type(exc).__name__})"
        return rule
    if rule.message_expression and not _unsupported_calls(rule.message_expression):
        try:
            rule.message_program = env.program(
                env.compile(rule.message_expression), functions=celfuncs.FUNCTIONS
            )
        except Exception:
            rule.message_program = None
    return rule


def compile_node(node: Node) -> list[Rule]:
    """The node's rules, compiled once and kept on the node."""
    if node.cel_rules is None:
        node.cel_rules = [compile_rule(raw) for raw in node.validations]
    rules: list[Rule] = node.cel_rules
    return rules


def warnings(root: Node, path: str = "openAPIV3Schema") -> list[str]:
    """One line per rule kbox does not enforce."""
    found: list[str] = []
    seen: set[int] = set()

    def walk(node: Node, where: str) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        for i, rule in enumerate(compile_node(node)):
            if rule.not_enforced:
                where_rule = f"{where}.x-kubernetes-validations[{i}]"
                found.append(
                    f"{where_rule}: rule {rule.text.strip()!r} is not enforced by kbox: {rule.not_enforced}"
                )
        for name, child in node.properties.items():
            walk(child, f"{where}.properties[{name}]")
        if node.items is not None:
            walk(node.items, f"{where}.items")
        if node.additional is not None:
            walk(node.additional, f"{where}.additionalProperties")

    walk(root, path)
    return found


# --- values ------------------------------------------------------------------------------------------


def to_cel(value: Any, node: Node | None) -> Any:
    """A decoded JSON value as CEL sees it through its schema (``UnstructuredToVal``)."""
    types = _celpy().celtypes
    if value is None:
        return None
    if node is None or (node.preserve_unknown and not node.properties and node.additional is None):
        return _celpy().json_to_cel(value)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            out[types.StringType(key)] = to_cel(item, node.property_or_additional(key))
        return types.MapType(out)
    if isinstance(value, list):
        return types.ListType([to_cel(item, node.items) for item in value])
    if isinstance(value, bool):
        return types.BoolType(value)
    if isinstance(value, int | float):
        if node.type == "number":
            return types.DoubleType(float(value))
        if isinstance(value, float) and node.type != "integer":
            return types.DoubleType(value)
        return types.IntType(int(value))
    if isinstance(value, str):
        return _string_to_cel(value, node, types)
    return _celpy().json_to_cel(value)


def _string_to_cel(value: str, node: Node, types: Any) -> Any:
    fmt = node.format.replace("-", "")
    try:
        if fmt == "datetime":
            return types.TimestampType(value)
        if fmt == "duration":
            return types.DurationType(value)
        if fmt == "byte":
            return types.BytesType(base64.b64decode(value))
    except Exception:
        return types.StringType(value)
    return types.StringType(value)


def _root_value(obj: dict[str, Any], root: Node) -> Any:
    """The object for a root rule: its fields typed by the schema, type and object meta as JSON."""
    types = _celpy().celtypes
    out = {}
    for key, item in obj.items():
        if key in ("apiVersion", "kind", "metadata") and key not in root.properties:
            out[types.StringType(key)] = _celpy().json_to_cel(item)
        else:
            out[types.StringType(key)] = to_cel(item, root.property_or_additional(key))
    return types.MapType(out)


# --- evaluation --------------------------------------------------------------------------------------


def _field_path(base: str, rule: Rule) -> str:
    suffix = rule.field_path.strip()
    if not suffix:
        return base
    if base == "<nil>":
        return suffix.removeprefix(".")
    return base + (suffix if suffix.startswith(("[", ".")) else "." + suffix)


def _failure(rule: Rule, node: Node, path: str, message: str) -> FieldError:
    where = _field_path(path, rule)
    value = node.type
    if rule.reason == "FieldValueForbidden":
        return forbidden(where, message)
    if rule.reason == "FieldValueRequired":
        return required(where, message)
    if rule.reason == "FieldValueDuplicate":
        return duplicate(where, value)
    return invalid(where, value, message)


_MISSING_KEY = re.compile(r"no such member in mapping: '([^']*)'")


# What one evaluation concluded: ``None`` (passed, or not judged), ("missing", detail) or ("failed",
# message). Kept per rule and value so that unchanged list items are not evaluated again on every
# status update (cel-python takes about a millisecond per rule).
Outcome = tuple[str, str] | None
_MEMO_SIZE = 512


def _outcome(rule: Rule, activation: dict[str, Any]) -> Outcome:
    celpy = _celpy()
    try:
        result = rule.program.evaluate(activation)
    except Exception as exc:
        missing = _MISSING_KEY.search(str(exc))
        if missing is not None and rule.errors_reliable:
            return ("missing", f"no such key: {missing.group(1)} evaluating rule: {rule.error_text()}")
        _log.debug("CEL rule %r not judged: %s", rule.text, exc)
        return None
    if not isinstance(result, celpy.celtypes.BoolType) or bool(result):
        return None
    message = rule.default_message()
    if rule.message_program is not None:
        try:
            text = str(rule.message_program.evaluate(activation)).strip()
        except Exception:
            text = ""
        if text and "\n" not in text:
            message = text
    return ("failed", message)


def _memo_key(value: Any, old: Any) -> str | None:
    try:
        return json.dumps([value, old], sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError):
        return None


def _evaluate(
    rule: Rule, node: Node, path: str, activation: dict[str, Any], value: Any, old: Any
) -> list[FieldError]:
    key = _memo_key(value, old if rule.uses_old_self else None)
    if key is not None and key in rule.memo:
        outcome = rule.memo[key]
    else:
        outcome = _outcome(rule, activation)
        if key is not None:
            if len(rule.memo) >= _MEMO_SIZE:
                rule.memo.clear()
            rule.memo[key] = outcome
    if outcome is None:
        return []
    kind, text = outcome
    if kind == "missing":
        return [invalid(path, node.type, text)]
    return [_failure(rule, node, path, text)]


_NO_OLD = object()


def _child(path: str, key: str) -> str:
    return key if path == "<nil>" else f"{path}.{key}"


def _list_map_key(item: Any, keys: list[str]) -> tuple[str, ...] | None:
    if not isinstance(item, dict):
        return None
    return tuple(repr(item.get(k)) for k in keys)


def _cel_of(value: Any, node: Node, root: bool) -> Any:
    return _root_value(value, node) if root and isinstance(value, dict) else to_cel(value, node)


def _run_rules(node: Node, value: Any, path: str, old: Any, root: bool) -> list[FieldError]:
    has_old = old is not _NO_OLD and old is not None
    unchanged = has_old and deep_equal(value, old)
    runnable = [
        rule
        for rule in compile_node(node)
        if rule.program is not None
        # transition rules run only against a correlated old value; other rules are skipped on an
        # unchanged value, since ratcheting would drop their errors anyway
        and (has_old if rule.uses_old_self else not unchanged)
    ]
    if not runnable:
        return []
    cel_value = _cel_of(value, node, root)
    old_cel = _cel_of(old, node, root) if has_old and any(r.uses_old_self for r in runnable) else None
    errs: list[FieldError] = []
    for rule in runnable:
        activation = {"self": cel_value}
        if rule.uses_old_self:
            activation["oldSelf"] = old_cel
        errs.extend(_evaluate(rule, node, path, activation, value, old if rule.uses_old_self else None))
    return errs


def validate(
    value: Any, node: Node | None, path: str = "<nil>", old: Any = _NO_OLD, *, root: bool = False
) -> list[FieldError]:
    """Every enforceable rule at and below ``value``; ``old`` is the correlated old value on updates."""
    if node is None or value is None:
        return []
    errs: list[FieldError] = []
    if node.validations and _celpy() is not None:
        errs.extend(_run_rules(node, value, path, old, root))
    if isinstance(value, dict):
        old_map = old if isinstance(old, dict) else {}
        for key, item in value.items():
            prop = node.properties.get(key)
            if prop is not None:
                where = _child(path, key)
            elif node.additional is not None:
                prop, where = node.additional, f"{path}[{key}]"
            else:
                continue
            errs.extend(validate(item, prop, where, old_map.get(key, _NO_OLD)))
    elif isinstance(value, list):
        old_items: dict[tuple[str, ...], Any] = {}
        if node.list_type == "map" and node.list_map_keys and isinstance(old, list):
            for item in old:
                key = _list_map_key(item, node.list_map_keys)
                if key is not None:
                    old_items[key] = item
        for i, item in enumerate(value):
            key = _list_map_key(item, node.list_map_keys) if old_items else None
            old_item = old_items.get(key, _NO_OLD) if key is not None else _NO_OLD
            errs.extend(validate(item, node.items, f"{path}[{i}]", old_item))
    return errs


def has_rules(root: Node) -> bool:
    """Whether any node carries ``x-kubernetes-validations`` (kube-apiserver builds a CEL validator)."""
    seen: set[int] = set()

    def walk(node: Node) -> bool:
        if id(node) in seen:
            return False
        seen.add(id(node))
        if node.validations:
            return True
        children = [*node.properties.values()]
        children.extend(n for n in (node.items, node.additional) if n is not None)
        return any(walk(child) for child in children)

    return walk(root)


BLOCKING = frozenset(
    {
        "FieldValueNotSupported",
        "FieldValueRequired",
        "FieldValueTooLong",
        "FieldValueTooMany",
        "FieldValueTypeInvalid",
    }
)
NOT_CHECKED = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


def blocked(errs: list[FieldError]) -> FieldError | None:
    """``hasBlockingErr``: CEL rules are not run on an object already invalid in these ways."""
    if any(e.type in BLOCKING for e in errs):
        return invalid("<nil>", GoValue(None), NOT_CHECKED)
    return None
