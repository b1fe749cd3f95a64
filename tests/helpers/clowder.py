"""Render an OpenShift Template offline and validate its Clowder objects against the CRDs.

There is no ``oc`` in CI: `render` does what ``oc process`` does with what our templates use.
``${NAME}`` inside a string becomes the parameter's value; a string that is exactly
``${{NAME}}`` becomes the value parsed as JSON, so ``"780"`` gives the integer 780 and
``"false"`` a boolean. It is stricter than ``oc``, which leaves a reference to an undeclared
name as it is: that, a required parameter without a value, a ``-p`` naming no parameter and a
``generate`` parameter are errors here.

`validate` checks each ClowdApp and ClowdJobInvocation against its CRD's ``openAPIV3Schema``
(the copies in deploy/clowder/schema/) as the API server treats a structural schema: a field
the schema does not name is an error, since the server would drop it silently (or refuse it
under strict field validation); the CRDs allow none (no x-kubernetes-preserve-unknown-fields).
``metadata`` gets the few rules of ObjectMeta that a template can break.

Usage (dev/check-deploy.sh): ``python3 -m tests.helpers.clowder TEMPLATE [-p NAME=VALUE]...``
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft4Validator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "deploy" / "clowder" / "schema"
API_VERSION = "cloud.redhat.com/v1alpha1"
CRD_FILES = {
    "ClowdApp": "cloud.redhat.com_clowdapps.yaml",
    "ClowdJobInvocation": "cloud.redhat.com_clowdjobinvocations.yaml",
}
_WHOLE = re.compile(r"\$\{\{([A-Za-z0-9_]+)\}\}")
_REF = re.compile(r"\$\{\{([A-Za-z0-9_]+)\}\}|\$\{([A-Za-z0-9_]+)\}")
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
OBJECT_META: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "maxLength": 253, "pattern": _DNS_SUBDOMAIN},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "additionalProperties": False,
}


class TemplateError(Exception):
    """The template cannot be rendered (a parameter problem), or rendered objects are invalid."""


def load(path: Path) -> dict[str, Any]:
    """The one Template document of ``path``."""
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    if len(docs) != 1 or docs[0].get("kind") != "Template":
        raise TemplateError(f"{path}: expected one Template document")
    template: dict[str, Any] = docs[0]
    return template


def references(node: Any) -> Iterator[str]:
    """Every parameter name ``node`` refers to, as ``${NAME}`` or ``${{NAME}}``."""
    if isinstance(node, str):
        for match in _REF.finditer(node):
            yield match.group(1) or match.group(2)
    elif isinstance(node, dict):
        for value in node.values():
            yield from references(value)
    elif isinstance(node, list):
        for value in node:
            yield from references(value)


def parameter_values(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    """Each parameter's value: given, else its default; "" for an optional one without any."""
    params = template.get("parameters", [])
    names = [p["name"] for p in params]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    problems = [f"parameter {n} declared twice" for n in duplicates]
    problems += [f"-p {n}: the template has no such parameter" for n in given if n not in names]
    values: dict[str, str] = {}
    for param in params:
        name = param["name"]
        if "generate" in param:
            problems.append(f"parameter {name}: generate is not supported here")
        value = given.get(name, param.get("value"))
        if value is None or value == "":
            if param.get("required"):
                problems.append(f"parameter {name} is required")
            value = ""
        if not isinstance(value, str):
            problems.append(f"parameter {name}: the value must be a string (quote it)")
        values[name] = str(value)
    if problems:
        raise TemplateError("; ".join(problems))
    return values


def render(template: Mapping[str, Any], given: Mapping[str, str]) -> list[dict[str, Any]]:
    """The template's objects with every parameter reference replaced, as ``oc process``."""
    values = parameter_values(template, given)
    undeclared = sorted(set(references(template.get("objects", []))) - set(values))
    if undeclared:
        raise TemplateError(f"undeclared parameters: {', '.join(undeclared)}")

    def substitute(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: substitute(value) for key, value in node.items()}
        if isinstance(node, list):
            return [substitute(value) for value in node]
        if not isinstance(node, str):
            return node
        whole = _WHOLE.fullmatch(node)
        if whole:
            raw = values[whole.group(1)]
            try:
                return json.loads(raw)
            except ValueError:
                raise TemplateError(f"${{{{{whole.group(1)}}}}}: {raw!r} is not JSON") from None
        return _REF.sub(lambda m: values[m.group(1) or m.group(2)], node)

    objects: list[dict[str, Any]] = substitute(copy.deepcopy(template.get("objects", [])))
    return objects


def _strict(node: Any) -> None:
    """Forbid the fields a structural schema does not name, in place, at every level."""
    if isinstance(node, dict):
        if (
            node.get("type") == "object"
            and "additionalProperties" not in node
            and not node.get("x-kubernetes-preserve-unknown-fields")
        ):
            node["additionalProperties"] = False
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)


@cache
def validator(kind: str) -> Draft4Validator:
    """The validator of ``kind`` from its CRD copy: strict, with ObjectMeta's rules."""
    crd = yaml.safe_load((SCHEMA_DIR / CRD_FILES[kind]).read_text())
    group, version = API_VERSION.split("/")
    assert crd["spec"]["group"] == group and crd["spec"]["names"]["kind"] == kind
    (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version and v["served"]]
    schema = copy.deepcopy(served["schema"]["openAPIV3Schema"])
    _strict(schema)
    schema["properties"]["metadata"] = OBJECT_META
    schema["required"] = ["apiVersion", "kind", "metadata", "spec"]
    schema["properties"]["apiVersion"] = {"enum": [API_VERSION]}
    return Draft4Validator(schema)


def errors(obj: Mapping[str, Any]) -> list[str]:
    """What is wrong with one rendered object, one line per problem, by path."""
    kind = obj.get("kind")
    name = obj.get("metadata", {}).get("name", "?")
    if kind not in CRD_FILES:
        return [f"{kind} {name}: no CRD here for this kind"]
    found = sorted(validator(kind).iter_errors(obj), key=lambda e: list(map(str, e.path)))
    return [f"{kind} {name}: {e.json_path}: {e.message}" for e in found]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("-p", dest="params", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    given = dict(p.split("=", 1) for p in args.params)
    try:
        objects = render(load(args.template), given)
    except TemplateError as exc:
        print(f"clowder: {args.template}: {exc}", file=sys.stderr)
        return 1
    problems = [line for obj in objects for line in errors(obj)]
    for line in problems:
        print(f"clowder: {args.template}: {line}", file=sys.stderr)
    if not problems:
        kinds = ", ".join(f"{o['kind']} {o['metadata']['name']}" for o in objects)
        print(f"clowder: {args.template}: valid: {kinds}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
