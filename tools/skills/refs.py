"""``$ref`` in a skill's JSON Schemas: only inside the schema, never over the network.

A sample schema may refer to a part of itself (``#/$defs/step``). Anything else
(``http:``, ``file:``, a path, another file) is refused when the skill loads, and
validators are built over a :class:`referencing.Registry` holding only the skill's own
schemas whose retrieval refuses every other URI, so jsonschema never fetches or opens anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import jsonschema
import referencing
import referencing.exceptions
from referencing.jsonschema import DRAFT202012

from prepbench.tools.errors import SkillError

#: The base URI the skill's schema files are registered under (``<base><type>.json``).
BASE_URI = "urn:prepbench:skill:"


def iter_refs(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every ``$ref`` string in a schema with its JSON path: ``(path, ref)``."""
    if isinstance(value, dict):
        for k, v in value.items():
            path = f"{where}.{k}" if where else str(k)
            if k == "$ref" and isinstance(v, str):
                yield path, v
            else:
                yield from iter_refs(v, path)
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from iter_refs(v, f"{where}[{i}]")


def check_refs(schema: dict, file: Path) -> None:
    """Refuse a ``$ref`` that leaves the schema (anything but ``#...``).

    Raises:
        SkillError: naming the file, the field and the reference.
    """
    for path, ref in iter_refs(schema):
        if not ref.startswith("#"):
            raise SkillError(f"{file}: field '{path}': $ref '{ref}' leaves the skill (only '#/...' within the schema)")


def _refuse(uri: str) -> referencing.Resource:
    raise referencing.exceptions.NoSuchResource(ref=uri)


def registry(schemas: dict[str, dict]) -> referencing.Registry:
    """A registry of the skill's schemas (``<type>.json``) that retrieves nothing else."""
    resources = [(f"{BASE_URI}{t}.json", DRAFT202012.create_resource(s)) for t, s in schemas.items()]
    return referencing.Registry(retrieve=_refuse).with_resources(resources)


def validator(sample_type: str, schemas: dict[str, dict]) -> jsonschema.Draft202012Validator:
    """A Draft 2020-12 validator for one sample type whose references resolve within the skill."""
    schema = dict(schemas[sample_type])
    schema.setdefault("$id", f"{BASE_URI}{sample_type}.json")
    return jsonschema.Draft202012Validator(schema, registry=registry(schemas))


def unresolvable_ref(sample_type: str, schemas: dict[str, dict]) -> tuple[str, str] | None:
    """The first ``$ref`` of a schema that does not resolve, as ``(path, ref)``, else None."""
    resolver = registry(schemas).resolver(base_uri=f"{BASE_URI}{sample_type}.json")
    for path, ref in iter_refs(schemas[sample_type]):
        try:
            resolver.lookup(ref)
        except referencing.exceptions.Unresolvable:
            return path, ref
    return None
