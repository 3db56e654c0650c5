"""The OpenAPI document of the streaming routes, which ``StreamRoutes`` serves ahead of
FastAPI's router (so FastAPI does not see them): the seed's request model, the refusals
with their error body, the SSE events, and the resume parameters."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field

__all__ = ["DeepSearchBody", "document_stream_routes"]

JSON = "application/json"


class StreamModeObject(BaseModel):
    mode: str = "general"
    token: int | None = Field(default=None, ge=1)
    time: float | None = Field(default=None, gt=0)


class Budget(BaseModel):
    """What one search may spend; each limit at most the server's own."""

    max_search_calls: int | None = Field(default=None, ge=1, description="engine calls")
    max_llm_tokens: int | None = Field(
        default=None, ge=1, description="model tokens, prompt and completion"
    )
    deadline_s: float | None = Field(
        default=None, gt=0, le=86400, description="seconds of searching before the answer"
    )


class DeepSearchBody(BaseModel):
    """The seed's request model (documentation only: the core checks every request)."""

    query: str = Field(min_length=1, max_length=4096)
    request_id: str | None = Field(default=None, description="also accepted as requestId")
    max_loop: int = Field(default=3, ge=1, le=10, description="also accepted as maxLoop")
    stream: bool = True
    stream_mode: str | StreamModeObject = Field(
        default="all", description='"all", "intermediate", "final"; also streamMode'
    )
    search_engines: list[str] = Field(default_factory=list, description="also searchEngines")
    locale: str | None = Field(
        default=None,
        description='"en" or "zh" (region suffixes accepted): this search\'s status lines; '
        "default: the server's --locale",
    )
    budget: Budget | None = Field(
        default=None,
        description="a spent budget stops the searching; the answer is written from what "
        "was found, with a warning naming it. Default and ceiling: the server's "
        "--max-search-calls, --max-llm-tokens, --search-deadline",
    )


_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
            },
        }
    },
}
# One event of the stream: `data` is a message envelope as JSON, "heartbeat" or "[DONE]".
_SSE_EVENT_SCHEMA = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "string"}, "id": {"type": "string"}},
}
_REFUSALS = {
    "400": "not JSON",
    "401": "no valid API key (with --api-key)",
    "413": "body over --max-body-bytes",
    "415": "not application/json",
    "422": "a field out of range, named in `field`",
    "503": "over --max-streams (Retry-After) or shutting down",
}


def _inlined(schema: Any, defs: dict[str, Any]) -> Any:
    """``schema`` with its ``#/$defs/...`` references replaced by what they name: the
    operation's schema is embedded in the OpenAPI document, where they do not resolve."""
    if isinstance(schema, dict):
        ref = schema.get("$ref", "")
        if ref.startswith("#/$defs/"):
            return _inlined(defs[ref.removeprefix("#/$defs/")], defs)
        return {k: _inlined(v, defs) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inlined(v, defs) for v in schema]
    return schema


def _request_body_doc() -> dict[str, Any]:
    body = DeepSearchBody.model_json_schema()
    body = _inlined(body, body.pop("$defs", {}))
    refusals = {
        status: {"description": why, "content": {JSON: {"schema": _ERROR_SCHEMA}}}
        for status, why in _REFUSALS.items()
    }
    return {
        "requestBody": {
            "required": True,
            "content": {JSON: {"schema": body}},
        },
        "responses": {
            "200": {
                "description": "SSE stream, or the final result as JSON with stream: false",
                "content": {"text/event-stream": {"schema": _SSE_EVENT_SCHEMA}, JSON: {}},
            },
            **refusals,
        },
    }


_LAST_EVENT_ID_HEADER = {
    "name": "Last-Event-ID",
    "in": "header",
    "required": False,
    "description": "resume the stream of this request_id after this event id",
    "schema": {"type": "integer", "minimum": 0},
}
_LAST_EVENT_ID_QUERY = {
    "name": "last_event_id",
    "in": "query",
    "required": False,
    "description": "as Last-Event-ID, for clients that cannot set headers",
    "schema": {"type": "integer", "minimum": 0},
}


def _resume_doc() -> dict[str, Any]:
    return {"parameters": [_LAST_EVENT_ID_HEADER, _LAST_EVENT_ID_QUERY]}


def _query_doc() -> dict[str, Any]:
    """GET /deepsearch: the POST body's fields as query parameters (for EventSource)."""
    schema = DeepSearchBody.model_json_schema()
    params: list[dict[str, Any]] = []
    for name, prop in schema["properties"].items():
        if name == "stream_mode":
            prop = {"type": "string", "description": "a mode name or a JSON object"}
        elif name == "search_engines":
            prop = {"type": "string", "description": "comma-separated engine names"}
        params.append(
            {
                "name": name,
                "in": "query",
                "required": name == "query",
                "schema": {k: v for k, v in prop.items() if k != "title"},
            }
        )
    return {"parameters": [*params, _LAST_EVENT_ID_HEADER, _LAST_EVENT_ID_QUERY]}


def document_stream_routes(app: FastAPI) -> None:
    """Adds the streaming routes, served by ``StreamRoutes`` rather than by FastAPI's
    router, to the OpenAPI schema."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        post = _request_body_doc()
        paths = schema.setdefault("paths", {})
        paths["/deepsearch"] = {
            "get": {
                "summary": "Deepsearch (EventSource)",
                "operationId": "deepsearch_get",
                **_query_doc(),
                "responses": post["responses"],
            },
            "post": {
                "summary": "Deepsearch",
                "operationId": "deepsearch_post",
                **post,
                **_resume_doc(),
            },
        }
        paths["/v1/tool/deepsearch"] = {
            "post": {"summary": "Genie Tool", "operationId": "genie_tool_post", **post}
        }
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
