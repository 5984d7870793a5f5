"""ROS parameters <-> config dataclasses: one helper used by every node.

A node config is a dataclass whose fields carry ``metadata={"help": ...}``; :func:`declare_config`
declares one ROS parameter per field (with the help text as its ParameterDescriptor description,
so ``ros2 param describe`` shows it), reads the values back and builds the dataclass (whose
``__post_init__`` validates them). The same helper fills the libraries' config dataclasses
(e.g. SafetyConfig) from parameters under a prefix (``safety.workspace_min``...).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

T = TypeVar("T")

_SCALARS = (bool, int, float, str)


def _field_kind(tp: Any) -> tuple[str, type] | None:
    """('scalar', t) / ('array', t) for supported annotations, None for others (skipped)."""
    origin = typing.get_origin(tp)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return _field_kind(args[0]) if len(args) == 1 else None
    if tp in _SCALARS:
        return ("scalar", tp)
    if origin in (list, tuple, typing.Sequence):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        if args and all(a == args[0] for a in args) and args[0] in _SCALARS:
            return ("array", args[0])
    return None


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def config_fields(cls: type) -> list[tuple[str, str, type, Any, str]]:
    """(name, kind, elem_type, default, help) for each ROS-representable field of dataclass ``cls``."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = _field_kind(hints[f.name])
        if kind is None or not f.init:
            continue
        out.append((f.name, kind[0], kind[1], _default(f), f.metadata.get("help", f"{cls.__name__}.{f.name}")))
    return out


def _check_type(name: str, kind: str, elem: type, value: Any) -> None:
    """Reject a parameter value of the wrong type (dynamic typing lets any type through)."""
    ok_types = (int, float) if elem is float else (elem,)
    items = list(value) if kind == "array" and not isinstance(value, (str, bytes)) else [value]
    if kind == "array" and isinstance(value, (str, bytes)) or any(
            isinstance(v, bool) and elem is not bool or not isinstance(v, ok_types) for v in items):
        raise ValueError(f"parameter {name!r} must be {'a list of ' if kind == 'array' else ''}{elem.__name__}, "
                         f"got {value!r}")


def _to_param_value(kind: str, elem: type, value: Any) -> Any:
    if value is None:
        return None
    if kind == "array":
        return [elem(v) for v in value]
    return elem(value)


def declare_config(node: Node, cls: type[T], prefix: str = "", overrides: dict | None = None) -> T:
    """Declare one parameter per field of ``cls`` (name ``prefix + field``), read them, build ``cls``.

    Fields with ``None`` defaults (optional) are declared with their type and stay None unless set.
    Fields whose type is not a scalar/list of scalars keep their dataclass default.
    ``overrides`` replaces defaults (e.g. values a library computed), parameters still win.
    """
    values: dict[str, Any] = {}
    for name, kind, elem, default, help_text in config_fields(cls):
        if overrides and name in overrides:
            default = overrides[name]
        pname = prefix + name
        desc = ParameterDescriptor(description=help_text)
        pdefault = _to_param_value(kind, elem, default) if default is not dataclasses.MISSING else None
        # Floats (YAML writes 10 for 10.0), optional and empty-list fields are dynamically typed;
        # _check_type below enforces the field's type.
        desc.dynamic_typing = elem is float or pdefault is None or (kind == "array" and len(pdefault) == 0)
        empty = pdefault is None or (kind == "array" and len(pdefault) == 0)
        param = node.declare_parameter(pname, None if empty else pdefault, desc)
        value = param.value
        if value is None and empty and pdefault is not None:
            value = pdefault
        if value is None:
            if default is dataclasses.MISSING:
                raise ValueError(f"parameter {pname!r} is required ({help_text})")
            value = default
        if value is None:
            values[name] = None  # optional field left unset
            continue
        _check_type(pname, kind, elem, value)
        if kind == "array":
            value = [elem(v) for v in value]
            if typing.get_origin(typing.get_type_hints(cls)[name]) is tuple:
                value = tuple(value)
        elif elem is float and isinstance(value, int):
            value = float(value)
        values[name] = value
    return cls(**values)


def config_to_params(cfg: Any, prefix: str = "") -> dict[str, Any]:
    """The ROS parameter dict (``{prefix+field: value}``) of a config dataclass instance (None omitted)."""
    out = {}
    for name, kind, elem, _default_value, _help in config_fields(type(cfg)):
        value = getattr(cfg, name)
        if value is None:
            continue
        out[prefix + name] = _to_param_value(kind, elem, value)
    return out


def parse_overrides(text: str) -> dict:
    """Config overrides from a YAML mapping string ('' = none); yaml.safe_load only, never eval."""
    import yaml

    if not text.strip():
        return {}
    try:
        obj = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ValueError(f"overrides are not valid YAML: {exc}") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"overrides must be a YAML mapping, got {text!r}")
    return obj
