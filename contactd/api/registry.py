"""Route registry: each REST operation is declared once, with its body and response models,
permission and error codes; the same declaration installs the route and writes OpenAPI."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from contactd.errors import ErrorCode

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    response_list: bool = False
    status: int = 200
    permission: str | None = None
    auth: bool = True
    errors: tuple[ErrorCode, ...] = ()
    query: dict[str, str] = field(default_factory=dict)
    example: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)  # request header → description


class Api:
    def __init__(self) -> None:
        self.operations: list[Operation] = []

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        tag: str,
        body: type[BaseModel] | None = None,
        response: type[BaseModel] | None = None,
        response_list: bool = False,
        status: int = 200,
        permission: str | None = None,
        auth: bool = True,
        errors: tuple[ErrorCode, ...] = (),
        query: dict[str, str] | None = None,
        example: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method,
                    path,
                    handler,
                    summary,
                    tag,
                    body,
                    response,
                    response_list,
                    status,
                    permission,
                    auth,
                    errors,
                    query or {},
                    example,
                    headers or {},
                )
            )
            return handler

        return register

    def install(self, app: web.Application) -> None:
        for op in self.operations:
            app.router.add_route(op.method, op.path, op.handler)


api = Api()
