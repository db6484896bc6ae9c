"""Reading YAML the safe way, with errors that name the file and line.

safe_load semantics (no Python objects), duplicate keys reported instead of silently keeping the
last, YAML 1.2 numbers (`5e-5` is a number, not a string), a UTF-8 BOM tolerated, and bytes that
are not UTF-8 reported with their offset.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mprtune.errors import ConfigError, show


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]  # libyaml: ~8x faster
    """safe_load that reports duplicate mapping keys instead of silently keeping the last."""

    duplicates: list[str]


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key (a list or mapping): the mapping constructor reports it
            continue
        if duplicate:
            loader.duplicates.append(f"line {key_node.start_mark.line + 1}: duplicate key {show(key)}")
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _construct_int(loader: _UniqueKeyLoader, node: yaml.ScalarNode) -> int:
    try:
        return yaml.SafeLoader.construct_yaml_int(loader, node)
    except ValueError:  # more digits than Python converts (4300): a typo, never a setting
        raise yaml.constructor.ConstructorError(
            None, None, f"integer with {len(str(node.value))} digits is too long", node.start_mark
        ) from None


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_UniqueKeyLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
# YAML 1.1 reads `5e-5` and `3.21e9` as strings; users mean numbers (YAML 1.2 agrees).
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def read_text(path: Path) -> str:
    """A config file's text; missing, unreadable or non-UTF-8 files are a ConfigError naming the file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(["file not found; create it or pass --config PATH"], str(path)) from None
    except IsADirectoryError:
        raise ConfigError(["is a folder, not a file; pass --config PATH/mprtune.yaml"], str(path)) from None
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror}"], str(path)) from None
    try:
        return data.decode("utf-8-sig")  # an editor's BOM is not part of the text
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [f"line {line}: not UTF-8 text (byte offset {exc.start}); save the file as UTF-8"], str(path)
        ) from None


def read_yaml(path: Path) -> Any:
    """Parse YAML safely; syntax errors and duplicate keys become a ConfigError naming the line."""
    loader = _UniqueKeyLoader(read_text(path))
    loader.duplicates = []
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{where}invalid YAML: {problem}"], str(path)) from None
    except RecursionError:
        raise ConfigError(["invalid YAML: nested too deeply"], str(path)) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(loader.duplicates, str(path))
    return data
