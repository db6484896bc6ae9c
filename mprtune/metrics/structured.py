"""JSON answers: strict equality (key order never matters), per-field matches, JSON Schema checks.

Equality is JSON's, not Python's: ``true`` is not ``1``, ``1`` equals ``1.0``, objects are equal
when they have the same keys with equal values in any order, arrays when they have equal items in
the same order. An answer that does not parse (truncated, trailing text, NaN) matches nothing.
``jsonschema`` is imported only when a schema is used.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any


def json_equal(a: Any, b: Any) -> bool:
    """JSON equality (see the module docstring)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[key], b[key]) for key in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def field_matches(answer: Any, reference: Any, fields: Sequence[str] | None = None) -> dict[str, bool]:
    """Per field of the reference object (or `fields`): does the answer have it with an equal value?
    A reference that is not an object has no fields; an answer that is not an object matches none."""
    if not isinstance(reference, dict):
        return {}
    keys = [f for f in fields if f in reference] if fields is not None else list(reference)
    got = answer if isinstance(answer, dict) else {}
    return {key: key in got and json_equal(got[key], reference[key]) for key in keys}


def schema_fields(schema: Mapping[str, Any] | None) -> list[str]:
    """Top-level property names a schema declares (required first), for per-field accuracy."""
    if not isinstance(schema, Mapping):
        return []
    required = [k for k in schema.get("required", []) if isinstance(k, str)]
    properties = schema.get("properties")
    names = list(properties) if isinstance(properties, Mapping) else []
    return list(dict.fromkeys([*required, *names]))


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a valid JSON Schema (its own meta-schema), None when it is."""
    import jsonschema

    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.exceptions.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"not a valid JSON Schema{f' at {where}' if where else ''}: {exc.message}"
    except Exception as exc:  # a schema that is not even a mapping
        return f"not a valid JSON Schema: {type(exc).__name__}: {exc}"
    return None


@lru_cache(maxsize=16)
def _validator(schema_json: str) -> Any:
    import json

    import jsonschema

    schema = json.loads(schema_json)
    return jsonschema.validators.validator_for(schema)(schema)


def schema_error(value: Any, schema: Mapping[str, Any]) -> str | None:
    """The first reason `value` does not satisfy `schema`, None when it does."""
    import json

    from jsonschema.exceptions import best_match

    error = best_match(_validator(json.dumps(schema, sort_keys=True)).iter_errors(value))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"schema: {where + ': ' if where else ''}{error.message}"[:200]
