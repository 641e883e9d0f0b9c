"""Typed run configs: nested dataclasses filled from a YAML file plus `key=value` overrides.

Unknown keys are errors (a typo must never silently fall back to a default), and values are checked
against the dataclass field types, so `train.lr=abc` fails before any work starts.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from events.errors import UserFacingError

T = TypeVar("T")


def load_config(cls: type[T], path: str | Path | None = None, overrides: list[str] | None = None) -> T:
    """Build `cls` from its defaults, then the YAML file at `path`, then `a.b=value` overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise UserFacingError(f"config file not found: {path}")
        loaded = yaml.safe_load(path.read_text()) or {}
        if not isinstance(loaded, dict):
            raise UserFacingError(f"{path}: the top level must be a mapping of keys to values")
        raw = loaded
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UserFacingError(f"override {item!r} is not of the form key=value (e.g. train.max_epochs=3)")
        _set_dotted(raw, key.strip(), yaml.safe_load(value) if value != "" else None)
    return from_dict(cls, raw)


def from_dict(cls: type[T], data: dict[str, Any], prefix: str = "") -> T:
    """Instantiate dataclass `cls` from a (nested) dict, rejecting unknown keys and mistyped values."""
    if not isinstance(data, dict):
        raise UserFacingError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f" in section {prefix.rstrip('.')!r}" if prefix else ""
        raise UserFacingError(f"unknown config key(s){where}: {', '.join(prefix + k for k in unknown)}; "
                              f"known: {', '.join(sorted(fields))}")
    hints = typing.get_type_hints(cls)
    kwargs = {name: _coerce(hints[name], value, prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    return dataclasses.asdict(config)


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}: the form MLflow params take."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def loggable(config: Any) -> dict[str, Any]:
    """A config as flat params for MLflow, every URI's password and secret query values redacted."""
    return flatten(redacted(to_dict(config)))


def redacted(d: dict[str, Any]) -> dict[str, Any]:
    """A (nested) config dict with every URI value passed through `redact_uri`."""
    return {k: redacted(v) if isinstance(v, dict) else redact_uri(v) if isinstance(v, str) and "://" in v else v
            for k, v in d.items()}


SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "token", "secret", "key", "access_token", "api_key")


def redact_uri(uri: str) -> str:
    """`scheme://user:***@host/...?token=***`: the one helper every log line, parameter, tag and error
    message that shows a URI goes through (tracking stores, Optuna storages)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if k.lower() in SECRET_QUERY_KEYS else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return uri  # nothing secret; rebuilding would turn sqlite:/// into sqlite:/
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise UserFacingError(f"override {key!r}: {part!r} is a value, not a section")
    node[leaf] = value


def _coerce(tp: Any, value: Any, name: str) -> Any:
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, prefix=name + ".")
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, name)
            except UserFacingError as err:
                errors.append(str(err))
        raise UserFacingError(errors[0] if errors else f"{name}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise UserFacingError(f"{name}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserFacingError(f"{name}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{name}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise UserFacingError(f"{name}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if tp is bool and isinstance(value, bool):
        return value
    if tp is str and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise UserFacingError(f"{name}: expected {getattr(tp, '__name__', tp)}, got {value!r}")
