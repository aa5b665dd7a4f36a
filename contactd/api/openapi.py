"""The OpenAPI 3.1 document, built from the route registry and the pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from contactd import __version__
from contactd.api.registry import Api
from contactd.errors import _STATUS, ErrorCode

_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "enum": [c.value for c in ErrorCode] + ["internal"]},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}


def build_openapi(registry: Api) -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for op in registry.operations:
        for m in (op.body, op.response):
            if m is not None:
                models.add(m)
    ordered = sorted(models, key=lambda m: m.__name__)
    refs, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    schemas["Error"] = _ERROR_SCHEMA

    def ref(m: type[BaseModel]) -> dict[str, Any]:
        return refs[(m, "validation")]

    paths: dict[str, Any] = {}
    for op in registry.operations:
        doc: dict[str, Any] = {
            "summary": op.summary,
            "tags": [op.tag],
            "operationId": op.handler.__name__,
            "responses": {},
        }
        params = [
            {"name": seg[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for seg in op.path.split("/")
            if seg.startswith("{")
        ]
        params += [
            {"name": name, "in": "query", "required": False, "schema": {"type": typ}}
            for name, typ in op.query.items()
        ]
        params += [
            {
                "name": name,
                "in": "header",
                "required": False,
                "description": text,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
            }
            for name, text in op.headers.items()
        ]
        if params:
            doc["parameters"] = params
        if op.body is not None:
            content: dict[str, Any] = {"schema": ref(op.body)}
            if op.example:
                content["example"] = op.example
            doc["requestBody"] = {"required": True, "content": {"application/json": content}}
        if op.response is not None:
            schema = ref(op.response)
            if op.response_list:
                schema = {"type": "array", "items": schema}
            doc["responses"][str(op.status)] = {
                "description": "OK",
                "content": {"application/json": {"schema": schema}},
            }
        else:
            doc["responses"][str(op.status)] = {"description": "OK"}
        by_status: dict[int, list[str]] = {}
        for code in op.errors:
            by_status.setdefault(_STATUS.get(code, 400), []).append(code.value)
        if op.body is not None:
            by_status.setdefault(400, []).append(ErrorCode.bad_request.value)
            by_status.setdefault(415, []).append(ErrorCode.unsupported_media_type.value)
            by_status.setdefault(422, []).append(ErrorCode.validation_failed.value)
        for status, codes in sorted(by_status.items()):
            doc["responses"][str(status)] = {
                "description": "error codes: " + ", ".join(sorted(set(codes))),
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            }
        if op.auth:
            doc["security"] = [{"bearer": []}]
            if op.permission:
                doc["description"] = f"Needs the permission `{op.permission}`."
        paths.setdefault(op.path, {})[op.method.lower()] = doc
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "contactd",
            "version": __version__,
            "description": "Real-time contact-center server. Errors are "
            '`{"error": {"code", "message"}}` with a 4xx status.',
        },
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a staff token from /api/v1/auth/login, or an API key ck_...",
                }
            },
        },
    }
