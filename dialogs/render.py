"""Rendering content texts: one sandboxed Jinja2 environment, strict about undefined names."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

# The names a content text may use. The engine supplies all of them on every render.
TEMPLATE_NAMES = frozenset({"salutation", "facts", "case", "step", "category"})

# Sandboxed because supervisors edit the templates; plain text out, so no HTML escaping:
# a customer's "<b>" or "{{ }}" reaches templates only as a value and is never evaluated.
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=4096)
def _compiled(source: str):
    return _env.from_string(source)


def render(source: str, values: dict[str, Any]) -> str:
    """Renders a content text with the given values."""
    return _compiled(source).render(**values).strip()


def template_problems(source: str, fact_ids: set[str] | None) -> list[str]:
    """Lists what is wrong with a template: syntax, unknown names, unknown facts.facts_id."""
    try:
        tree = _env.parse(source)
    except TemplateSyntaxError as exc:
        return [f"broken template (line {exc.lineno} of the text): {exc.message}"]
    problems = [
        f"template uses unknown name '{name}' (known: {', '.join(sorted(TEMPLATE_NAMES))})"
        for name in sorted(meta.find_undeclared_variables(tree) - TEMPLATE_NAMES)
    ]
    if fact_ids is not None:
        for node in tree.find_all(nodes.Getattr):
            if isinstance(node.node, nodes.Name) and node.node.name == "facts" and node.attr not in fact_ids:
                problems.append(f"template uses facts.{node.attr}, which this category does not collect")
    return problems
