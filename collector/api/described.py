"""What each technician API route takes, read from its handler's code, so the OpenAPI document cannot drift.

A handler's JSON body is the model it gives `parse(request, Model)`; its query parameters are the names it (or a
function of its module that it calls) reads with `query.get("name")`, `query["name"]` or `"name" in query`.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp.web_urldispatcher import AbstractRoute
from pydantic import BaseModel

# A path parameter in an aiohttp route's compiled pattern: `(?P<name>regex)` (our routes nest no groups).
PARAMETER = re.compile(r"\(\?P<(\w+)>([^()]*)\)")


@dataclass
class Reads:
    """What a handler reads from a request: its body model and its query parameters."""

    body: type[BaseModel] | None = None
    raw_body: bool = False  # reads a JSON object of its own shape (`json.loads(await request.read())`)
    query: set[str] = field(default_factory=set)


def path_parameters(route: AbstractRoute) -> dict[str, str]:
    """Each path parameter of the route and the regular expression it must match."""
    pattern = route.resource.get_info().get("pattern") if route.resource else None
    return dict(PARAMETER.findall(pattern.pattern)) if pattern is not None else {}


def reads(handler: Callable[..., Any]) -> Reads:
    """What the handler (unwrapped from its guard) and the functions of its module it calls read."""
    found = Reads()
    todo, seen = [inspect.unwrap(handler)], set()
    while todo:
        function = todo.pop()
        if function in seen:
            continue
        seen.add(function)
        names = function.__globals__
        for node in ast.walk(ast.parse(textwrap.dedent(inspect.getsource(function)))):
            found.query |= _query_names(node)
            if isinstance(node, ast.Attribute) and node.attr == "read" and isinstance(node.value, ast.Name) \
                    and node.value.id == "request":
                found.raw_body = True
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
                continue
            called = names.get(node.func.id)
            if node.func.id == "parse" and len(node.args) == 2 and isinstance(node.args[1], ast.Name):
                found.body = names[node.args[1].id]
            elif inspect.isfunction(called) and called.__module__ == function.__module__:
                todo.append(called)
    return found


def _query_names(node: ast.AST) -> set[str]:
    """The query parameter a node reads, if it reads one."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get" \
            and _is_query(node.func.value) and node.args and isinstance(node.args[0], ast.Constant):
        return {str(node.args[0].value)}
    if isinstance(node, ast.Subscript) and _is_query(node.value) and isinstance(node.slice, ast.Constant):
        return {str(node.slice.value)}
    if isinstance(node, ast.Compare) and isinstance(node.left, ast.Constant) \
            and any(isinstance(op, ast.In | ast.NotIn) for op in node.ops) and _is_query(node.comparators[0]):
        return {str(node.left.value)}
    return set()


def _is_query(node: ast.AST) -> bool:
    """True for `request.query` or a name `query` bound to it."""
    return (isinstance(node, ast.Attribute) and node.attr == "query") or \
        (isinstance(node, ast.Name) and node.id == "query")
