"""The machine API's contract as an OpenAPI 3.1 document (served at ``/api/v1/openapi.json``) and as the
Markdown reference in ``docs/api.md`` (``feblam gateway openapi --markdown``; a test keeps it current)."""

from __future__ import annotations

from typing import Any

from gateway.actions import MAX_REASON

VERSION = "1.0.0"
#: The longest Idempotency-Key taken.
MAX_IDEMPOTENCY_KEY = 128
#: What ``GET /api/v1/cases?state=`` takes (open: every state a desk still works on).
STATES = ("open", "all", "new", "acknowledged", "escalated", "reopened", "closed", "expired")


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


_AUTH = {
    "401": _error("no valid bearer token (or client certificate)"),
    "429": _error("too many refused requests from this address, or too many streams; see Retry-After"),
    "503": _error("this gateway is a standby: the active one serves the desks; see Retry-After"),
}


def document() -> dict[str, Any]:
    """The OpenAPI document of ``/api/v1``."""
    idempotency = {
        "name": "Idempotency-Key",
        "in": "header",
        "required": True,
        "description": "a key of the client's choosing, one per action (a UUID): the same key again gets the first "
        "answer (with `Idempotent-Replayed: true`) and never a second action; the same key for another request is 422",
        "schema": {"type": "string", "minLength": 1, "maxLength": MAX_IDEMPOTENCY_KEY},
    }
    case_id = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 128}}
    accepted = {
        "202": {
            "description": "the action is recorded; its effect comes as a change on the stream",
            "content": {"application/json": {"schema": _ref("Accepted")}},
        },
        "400": _error("malformed: no Idempotency-Key, an outcome that is not one, a missing reason"),
        "404": _error("no such case on the client's desk's board"),
        "409": _error("the case's state forbids it (already acknowledged, already closed)"),
        "422": _error("the Idempotency-Key was used for another request"),
        **_AUTH,
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "FEBLAM Hit Gateway — machine API",
            "version": VERSION,
            "description": (
                "For the systems of a desk (a dispatch centre's CAD, a zone's records system, a partner's): take the "
                "desk's cases, follow them live and act on them. A client sees its own desk's cases only, as the "
                "desk's users do (need to know: no covert match at a partner); every case shown and every refusal "
                "is an access-audit event under the client's name; actions are signed by the gateway and appear on "
                "the board and in the events trail under the client's name."
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/me": {
                "get": {
                    "summary": "Who the token is",
                    "operationId": "me",
                    "responses": {
                        "200": {
                            "description": "the client and its desk",
                            "content": {"application/json": {"schema": _ref("Me")}},
                        },
                        **_AUTH,
                    },
                }
            },
            "/api/v1/cases": {
                "get": {
                    "summary": "The desk's cases, oldest change first, paged",
                    "operationId": "listCases",
                    "parameters": [
                        {
                            "name": "state",
                            "in": "query",
                            "schema": {"type": "string", "enum": list(STATES), "default": "open"},
                            "description": "open: new, acknowledged, escalated or reopened",
                        },
                        {
                            "name": "since",
                            "in": "query",
                            "schema": {"type": "string", "format": "date-time"},
                            "description": "only cases changed at or after this time",
                        },
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                        {
                            "name": "cursor",
                            "in": "query",
                            "schema": {"type": "string"},
                            "description": "next_cursor of the page before",
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "one page; follow the stream from last_event_id to miss nothing",
                            "content": {"application/json": {"schema": _ref("CasePage")}},
                        },
                        "400": _error("a parameter that is not one"),
                        **_AUTH,
                    },
                }
            },
            "/api/v1/cases/{case_id}": {
                "get": {
                    "summary": "One case of the desk",
                    "operationId": "getCase",
                    "parameters": [case_id],
                    "responses": {
                        "200": {"description": "the case", "content": {"application/json": {"schema": _ref("Card")}}},
                        "404": _error("no such case on the desk's board"),
                        **_AUTH,
                    },
                }
            },
            "/api/v1/events": {
                "get": {
                    "summary": "The desk's case changes as server-sent events",
                    "operationId": "followChanges",
                    "description": (
                        "Each change is one event `change` whose `id` is its number in the desk's feed and whose "
                        "data is a Change. With `Last-Event-ID` (or `after`), every change after that number comes "
                        "once and in order, then the live ones; without, the live ones only (list the cases first "
                        "and follow from their last_event_id). An event `reset` says the number can no longer be "
                        "continued from (older than the feed keeps): list the cases again. Comments keep an idle "
                        "stream alive every 15 s."
                    ),
                    "parameters": [
                        {"name": "Last-Event-ID", "in": "header", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
                        {"name": "after", "in": "query", "schema": {"type": "string", "pattern": "^[0-9]+$"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "a stream of events",
                            "content": {"text/event-stream": {"schema": {"type": "string"}}},
                        },
                        "400": _error("Last-Event-ID is not a number"),
                        **_AUTH,
                    },
                }
            },
            "/api/v1/cases/{case_id}/acknowledge": {
                "post": {
                    "summary": "Acknowledge a case (someone is on it; it no longer escalates)",
                    "operationId": "acknowledge",
                    "parameters": [case_id, idempotency],
                    "responses": accepted,
                }
            },
            "/api/v1/cases/{case_id}/close": {
                "post": {
                    "summary": "Close a case with its outcome",
                    "operationId": "close",
                    "parameters": [case_id, idempotency],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Close")}},
                    },
                    "responses": accepted,
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "security": [],
                    "responses": {"200": {"description": "OpenAPI 3.1"}},
                }
            },
        },
        "components": {
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the client's token from `feblam gateway client-token`; the gateway keeps its "
                    "SHA-256 only. Behind a TLS proxy, a client certificate's subject may stand instead.",
                }
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
                "Me": {
                    "type": "object",
                    "properties": {
                        "client": {"type": "string"},
                        "desk": {"type": "string"},
                        "kind": {"type": "string", "enum": ["dispatch", "zone", "partner"]},
                    },
                },
                "Case": {
                    "type": "object",
                    "description": "a vehicle's case at the desk (DESIGN 12): state, deadline, who acknowledged, the "
                    "trail of sightings, the entries it is for, the other desks' open cases of the vehicle",
                    "required": ["case_id", "desk", "state", "opened_at", "at"],
                    "properties": {
                        "case_id": {"type": "string"},
                        "desk": {"type": "string"},
                        "state": {
                            "type": "string",
                            "enum": ["new", "acknowledged", "escalated", "reopened", "closed", "expired"],
                        },
                        "opened_at": {"type": "string", "format": "date-time"},
                        "at": {"type": "string", "format": "date-time"},
                        "deadline": {"type": ["string", "null"], "format": "date-time"},
                        "user": {"type": ["string", "null"]},
                        "outcome": {"type": ["string", "null"]},
                        "reason": {"type": ["string", "null"]},
                        "acknowledged_by": {"type": ["string", "null"]},
                        "seen": {"type": "integer"},
                        "trail": {"type": "array", "items": {"type": "object"}},
                        "entries": {"type": "array", "items": {"type": "array", "items": {"type": "string"}}},
                        "also_open": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Card": {
                    "type": "object",
                    "required": ["case_id", "case", "hit"],
                    "properties": {
                        "case_id": {"type": "string"},
                        "case": _ref("Case"),
                        "hit": {
                            "type": "object",
                            "description": "the case's newest hit as the desk may see it (DESIGN 6; only its matches)",
                        },
                    },
                },
                "CasePage": {
                    "type": "object",
                    "required": ["desk", "cases", "next_cursor", "last_event_id"],
                    "properties": {
                        "desk": {"type": "string"},
                        "cases": {"type": "array", "items": _ref("Card")},
                        "next_cursor": {"type": ["string", "null"]},
                        "last_event_id": {"type": "integer", "description": "follow the stream after this number"},
                    },
                },
                "Change": {
                    "type": "object",
                    "description": "one change of a case: its number, the audit event and the case as it now stands",
                    "required": ["seq", "desk", "case_id", "event", "case", "hit"],
                    "properties": {
                        "seq": {"type": "integer"},
                        "desk": {"type": "string"},
                        "case_id": {"type": "string"},
                        "event": {
                            "type": "object",
                            "description": "the event on the events topic (event_id, state, user, at, outcome, ...)",
                        },
                        "case": _ref("Case"),
                        "hit": {"type": "object"},
                    },
                },
                "Close": {
                    "type": "object",
                    "required": ["outcome"],
                    "additionalProperties": False,
                    "properties": {
                        "outcome": {"type": "string", "description": "one of [gateway] outcomes"},
                        "reason": {
                            "type": "string",
                            "maxLength": MAX_REASON,
                            "description": "needed with false_read and not_found",
                        },
                    },
                },
                "Accepted": {
                    "type": "object",
                    "properties": {
                        "status": {"const": "accepted"},
                        "case_id": {"type": "string"},
                        "action": {"type": "string"},
                    },
                },
            },
        },
    }


def markdown(doc: dict[str, Any] | None = None) -> str:
    """The document as the reference in ``docs/api.md``."""
    doc = doc or document()
    out = [
        f"# {doc['info']['title']} (v{doc['info']['version']})",
        "",
        "Generated from the OpenAPI document the gateway serves at `/api/v1/openapi.json` "
        "(`feblam gateway openapi --markdown > docs/api.md`). How to use it: `docs/operations.md`, "
        '"Systems and partners"; a client to copy: `examples/dispatch_client.py`.',
        "",
        doc["info"]["description"],
        "",
        "Authentication: `Authorization: Bearer <token>` on every request but the document itself. "
        + doc["components"]["securitySchemes"]["bearer"]["description"],
        "",
    ]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            out += [f"## `{method.upper()} {path}`", "", op["summary"] + ".", ""]
            if "description" in op:
                out += [op["description"], ""]
            params = op.get("parameters", [])
            if params:
                out += ["| parameter | in | required | schema | meaning |", "|---|---|---|---|---|"]
                for p in params:
                    schema = p["schema"]
                    kind = schema.get("enum") and " \\| ".join(schema["enum"]) or schema.get("type", "")
                    out.append(
                        f"| `{p['name']}` | {p['in']} | {'yes' if p.get('required') else 'no'} | {kind} | "
                        f"{p.get('description', '')} |"
                    )
                out.append("")
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"].rpartition("/")[2]
                out += [f"Body: `{ref}` (below).", ""]
            out += ["| status | meaning |", "|---|---|"]
            out += [f"| {code} | {r['description']} |" for code, r in op["responses"].items()]
            out.append("")
    out += ["## Schemas", ""]
    for name, schema in doc["components"]["schemas"].items():
        out += [f"### {name}", ""]
        if "description" in schema:
            out += [schema["description"], ""]
        props = schema.get("properties", {})
        if props:
            required = set(schema.get("required", []))
            out += ["| field | type | required | meaning |", "|---|---|---|---|"]
            for field, p in props.items():
                kind = p.get("$ref", "").rpartition("/")[2] or p.get("type", p.get("const", ""))
                if isinstance(kind, list):
                    kind = " or ".join(kind)
                out.append(
                    f"| `{field}` | {kind} | {'yes' if field in required else 'no'} | {p.get('description', '')} |"
                )
            out.append("")
    return "\n".join(out)
