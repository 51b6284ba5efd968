"""Rendering content texts: one sandboxed Jinja2 environment, strict about undefined names."""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Mapping, Sequence

from jinja2 import StrictUndefined, TemplateSyntaxError, meta, nodes
from jinja2.sandbox import SandboxedEnvironment

# The names a content text may use. The engine supplies all of them on every render.
TEMPLATE_NAMES = frozenset({"salutation", "facts", "case", "step", "category", "what"})

# Sandboxed because supervisors edit the templates; plain text out, so no HTML escaping:
# a customer's "<b>" or "{{ }}" reaches templates only as a value and is never evaluated.
_env = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@lru_cache(maxsize=4096)
def _compiled(source: str):
    """The compiled template, or None for a text without any template syntax (nor a carriage return, which
    Jinja2 would turn into a newline): such a text renders as itself."""
    if "{" not in source and "\r" not in source:
        return None
    return _env.from_string(source)


class Facts(dict):
    """The facts a text sees: one the customer has not given (skipped, or not asked yet) reads as empty,
    so "{% if facts.insured == '已保价' %}" takes its else branch instead of failing the turn."""

    def __missing__(self, key: str) -> str:
        return ""


def template_values(salutation: str, facts: Mapping[str, Any] | None = None, case_number: str | None = None,
                    step: Mapping[str, Any] | None = None, category: str = "", what: str = "", **case: Any) -> dict[str, Any]:
    """The values a content text is rendered with: one for each name in TEMPLATE_NAMES.
    salutation: 王先生 when the customer said, else empty (the texts then say 您); what: the things a
    text names (电话、运单号)."""
    return {"salutation": salutation, "facts": Facts(facts or {}), "case": {"number": case_number, **case},
            "step": dict(step or {}), "category": category, "what": what}


def render(source: str, values: dict[str, Any]) -> str:
    """Renders a content text with the given values."""
    template = _compiled(source)
    return source.strip() if template is None else template.render(**values).strip()


def template_problems(source: str, facts: Mapping[str, Sequence[str] | None] | None) -> list[str]:
    """Lists what is wrong with a template: syntax, unknown names, unknown facts.<id>, and
    comparisons of a choice fact with a value that is not one of its options.

    facts maps the category's fact ids to their options (None for facts that are not choices);
    None skips the fact checks (shared texts, which serve every category)."""
    try:
        tree = _env.parse(source)
        _env.compile(tree)  # catches what parsing lets through, such as an unknown filter
    except TemplateSyntaxError as exc:  # TemplateAssertionError is one too
        return [f"broken template (line {exc.lineno} of the text): {exc.message}"]
    problems = [
        f"template uses unknown name '{name}' (known: {', '.join(sorted(TEMPLATE_NAMES))})"
        for name in sorted(meta.find_undeclared_variables(tree) - TEMPLATE_NAMES)
    ]
    if facts is None:
        return problems
    for node in tree.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "facts" and node.attr not in facts:
            problems.append(f"template uses facts.{node.attr}, which this category does not collect")
    # A renamed option would otherwise send `{% if facts.x == '旧选项' %}` quietly to its else branch.
    for compare in tree.find_all(nodes.Compare):
        sides = [compare.expr] + [op.expr for op in compare.ops]
        fact_ids = [n.attr for n in sides if isinstance(n, nodes.Getattr) and isinstance(n.node, nodes.Name) and n.node.name == "facts"]
        values = [n.value for n in sides if isinstance(n, nodes.Const) and isinstance(n.value, str)]
        for fact_id in fact_ids:
            options = facts.get(fact_id)
            for value in values:
                if options is not None and value not in options:
                    problems.append(f"template compares facts.{fact_id} with '{value}', which is not one of its options")
    return problems


def unknown_names(source: str, known: frozenset[str]) -> list[str]:
    """The names a template uses that are not among `known` (or why it cannot be read), for content
    files whose texts have names of their own (the staff assistant's, the staff's Telegram texts)."""
    try:
        used = meta.find_undeclared_variables(_env.parse(source))
    except TemplateSyntaxError as exc:
        return [f"(broken template: {exc.message})"]
    return sorted(used - known)
