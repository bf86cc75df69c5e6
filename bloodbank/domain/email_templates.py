"""E-mail templates: a subject, an HTML part and a text part with personalization variables.

Pure rules, no I/O. Templates are written by staff but filled with values that come from uploaded
files and donor records, so they run in Jinja2's immutable sandbox (no access to Python internals,
no mutation of values), with no loader (``include``, ``import`` and ``extends`` cannot reach
anything), no globals (``range``, ``lipsum``, ... are not there to be abused), ``StrictUndefined``
(a missing value is an error, never a blank "Dear ,") and autoescaping on the HTML part only (the
subject and the text part are not HTML, so escaping would show ``&amp;`` to the reader).

``variables`` is every name the three parts look up: the audience must provide each of them, which
``missing_variables`` checks when a campaign is launched, not half-way through a send.
``email`` (the recipient's address) and ``unsubscribe_url`` are reserved: every send provides them
(per recipient); a preview uses the address given in its data and a placeholder link.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bloodbank.domain import text as text_rules
from bloodbank.errors import BadUserInput, FieldProblem

UNSUBSCRIBE_URL = "unsubscribe_url"
EMAIL = "email"
# Every send provides these, whatever the audience: the recipient's address and own unsubscribe link.
RESERVED_VARIABLES = frozenset({EMAIL, UNSUBSCRIBE_URL})
PREVIEW_UNSUBSCRIBE_URL = "https://unsubscribe.example.invalid/preview-only"

MAX_NAME_LENGTH = 100
MAX_SUBJECT_LENGTH = 998  # RFC 5322's line limit: the subject is one header line
MAX_HTML_BYTES = 256 * 1024
MAX_TEXT_BYTES = 128 * 1024  # with the HTML part, the item stays under DynamoDB's 400 KB
MAX_REPEAT = 100_000  # ``'x' * n`` in a template may not make more than this many characters
MAX_RENDERED_BYTES = 1024 * 1024  # SES refuses messages over 10 MB; no sane template gets near this


@dataclass(frozen=True, slots=True)
class EmailTemplate:
    id: str
    name: str
    subject: str
    html: str | None
    text: str | None
    variables: frozenset[str]  # every variable the three parts use, ``unsubscribe_url`` included
    created_at: datetime
    created_by: str

    @property
    def audience_variables(self) -> frozenset[str]:
        """The variables an audience must provide: all but the reserved ones every send provides."""
        return self.variables - RESERVED_VARIABLES


@dataclass(frozen=True, slots=True)
class TemplateDraft:
    """A validated ``createEmailTemplate`` input: every part compiles and stays within its limits."""

    name: str
    subject: str
    html: str | None
    text: str | None
    variables: frozenset[str]


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    """What one recipient receives."""

    subject: str
    html: str | None
    text: str | None


class MissingVariables(BadUserInput):
    """Values for some variables the template uses were not given; ``names`` lists them."""

    error_type = "MissingTemplateVariables"

    def __init__(self, names: Collection[str]) -> None:
        self.names = tuple(sorted(names))
        super().__init__(
            f"The template uses variables with no value given: {', '.join(self.names)}",
            [FieldProblem(f"data.{name}", "is used by the template but has no value") for name in self.names],
        )


class RenderFailed(BadUserInput):
    """The template could not be rendered with these values (the sandbox refused something, or
    the result is not a valid e-mail, e.g. a subject with a line break)."""

    error_type = "TemplateRenderError"


# --- the sandbox ------------------------------------------------------------------------------------
def _sandbox(autoescape: bool) -> Any:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class Sandbox(ImmutableSandboxedEnvironment):
        """Also bounds ``*`` and ``**``, the sandbox's one way left to make a huge value."""

        intercepted_binops = frozenset({"*", "**"})

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**":
                if not (isinstance(right, int) and abs(right) <= 64):
                    raise _security_error("exponents above 64 are not allowed in templates")
            elif isinstance(left, str | list | tuple) or isinstance(right, str | list | tuple):
                count = right if isinstance(left, str | list | tuple) else left
                size = len(left if isinstance(left, str | list | tuple) else right)
                if isinstance(count, int) and count * size > MAX_REPEAT:
                    raise _security_error(f"a repeated value may not exceed {MAX_REPEAT} characters")
            return super().call_binop(context, operator, left, right)

    env = Sandbox(undefined=StrictUndefined, autoescape=autoescape, loader=None, keep_trailing_newline=True)
    env.globals.clear()
    return env


def _security_error(message: str) -> Exception:
    from jinja2.exceptions import SecurityError

    return SecurityError(message)


@functools.cache
def _environment(html: bool) -> Any:
    return _sandbox(autoescape=html)


_FORBIDDEN_TAGS = ("Include", "Import", "FromImport", "Extends")


def _parse(field: str, source: str, html: bool) -> tuple[Any, frozenset[str]]:
    """The template's AST and the variables it looks up; BadUserInput naming the line otherwise."""
    from jinja2 import meta, nodes
    from jinja2.exceptions import TemplateSyntaxError

    env = _environment(html)
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise BadUserInput.of([FieldProblem(field, f"line {exc.lineno}: {exc.message}")]) from None
    for node in ast.find_all(tuple(getattr(nodes, name) for name in _FORBIDDEN_TAGS)):
        tag = type(node).__name__.lower().replace("fromimport", "from ... import")
        raise BadUserInput.of([FieldProblem(field, f"line {node.lineno}: {tag} is not allowed in templates")])
    for node in ast.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            problem = f"line {node.lineno}: attributes starting with '_' are not allowed"
            raise BadUserInput.of([FieldProblem(field, problem)])
    return ast, frozenset(meta.find_undeclared_variables(ast))


@functools.lru_cache(maxsize=64)
def _compiled(source: str, html: bool) -> Any:
    """Compiled once per process and part: a campaign renders the same template for everyone."""
    ast, _ = _parse("template", source, html)
    return _environment(html).from_string(ast)


# --- validation -------------------------------------------------------------------------------------
def _size_problem(field: str, value: str, limit: int) -> FieldProblem | None:
    if len(value.encode("utf-8", "surrogatepass")) > limit:
        return FieldProblem(field, f"must be at most {limit // 1024} KiB (UTF-8)")
    return None


def validate_new(values: Mapping[str, Any]) -> TemplateDraft:
    """Check a ``createEmailTemplate`` input: every problem at once, as BadUserInput."""
    problems: list[FieldProblem] = []
    name = " ".join(str(values.get("name") or "").split())
    if not name or len(name) > MAX_NAME_LENGTH or text_rules.has_control(name):
        problems.append(FieldProblem("input.name", f"must be 1-{MAX_NAME_LENGTH} printable characters"))
    subject = str(values.get("subject") or "")
    if not subject.strip():
        problems.append(FieldProblem("input.subject", "must not be empty"))
    elif "\r" in subject or "\n" in subject:
        problems.append(FieldProblem("input.subject", "must be one line (no line breaks)"))
    elif len(subject) > MAX_SUBJECT_LENGTH:
        problems.append(FieldProblem("input.subject", f"must be at most {MAX_SUBJECT_LENGTH} characters"))
    html = values.get("html") or None
    body = values.get("text") or None
    if html is None and body is None:
        problems.append(FieldProblem("input.html", "give an HTML part, a text part, or both"))
    for field, value, limit in (("input.html", html, MAX_HTML_BYTES), ("input.text", body, MAX_TEXT_BYTES)):
        if value is not None and (problem := _size_problem(field, value, limit)):
            problems.append(problem)
    if problems:
        raise BadUserInput.of(problems)
    variables: set[str] = set()
    for field, source, is_html in (("input.subject", subject, False), ("input.html", html, True)):
        if source is not None:
            variables |= _parse(field, source, is_html)[1]
    if body is not None:
        variables |= _parse("input.text", body, False)[1]
    return TemplateDraft(name, subject, html, body, frozenset(variables))


def new_template(template_id: str, draft: TemplateDraft, at: datetime, by: str) -> EmailTemplate:
    return EmailTemplate(
        template_id, draft.name, draft.subject, draft.html, draft.text, draft.variables, at, by
    )


# --- rendering --------------------------------------------------------------------------------------
def missing_variables(template: EmailTemplate, available: Collection[str]) -> frozenset[str]:
    """The variables the template uses that neither ``available`` nor every send provides.

    A campaign launch refuses a template with any: better than failing recipient by recipient."""
    return frozenset(name for name in template.audience_variables if name not in available)


def render(template: EmailTemplate, values: Mapping[str, str]) -> RenderedEmail:
    """What a recipient with these values receives. MissingVariables names every variable without
    a value (nothing is rendered blank); RenderFailed when the sandbox refuses something or the
    subject would not be one header line."""
    missing = [name for name in template.variables if name not in values]
    if missing:
        raise MissingVariables(missing)
    context = dict(values)
    subject = _render("subject", template.subject, False, context)
    if "\r" in subject or "\n" in subject:
        raise RenderFailed("The rendered subject contains a line break: check the values it uses")
    if len(subject) > MAX_SUBJECT_LENGTH:
        raise RenderFailed(f"The rendered subject is longer than {MAX_SUBJECT_LENGTH} characters")
    html = None if template.html is None else _render("html", template.html, True, context)
    body = None if template.text is None else _render("text", template.text, False, context)
    return RenderedEmail(subject, html, body)


def preview(template: EmailTemplate, data: Mapping[str, str]) -> RenderedEmail:
    """``render`` with a placeholder unsubscribe link (the real one is made per recipient, per send)."""
    return render(template, {**data, UNSUBSCRIBE_URL: PREVIEW_UNSUBSCRIBE_URL})


def _render(part: str, source: str, html: bool, context: dict[str, str]) -> str:
    from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

    try:
        rendered = str(_compiled(source, html).render(context))
    except UndefinedError as exc:  # e.g. an attribute of a value that has none
        raise RenderFailed(f"The {part} part looks up something that is not there: {exc.message}") from None
    except SecurityError as exc:
        raise RenderFailed(f"The {part} part does something templates may not: {exc}") from None
    except (TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise RenderFailed(f"The {part} part could not be rendered: {type(exc).__name__}") from None
    if len(rendered) > MAX_RENDERED_BYTES:
        raise RenderFailed(f"The rendered {part} part is larger than {MAX_RENDERED_BYTES // 1024} KiB")
    return rendered
