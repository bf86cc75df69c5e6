"""E-mail templates: the sandbox, strict variables, autoescaping in HTML only, one-line subjects."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from bloodbank.domain import email_templates as rules
from bloodbank.domain.email_templates import EmailTemplate, MissingVariables, RenderFailed
from bloodbank.errors import BadUserInput

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


def make(**values: Any) -> EmailTemplate:
    fields = {"name": "Appeal", "subject": "Hello {{ first_name }}", **values}
    if "html" not in values and "text" not in values:
        fields["text"] = "Dear {{ first_name }}"
    return rules.new_template("tpl-1", rules.validate_new(fields), NOW, "staff-1")


def problem(exc: pytest.ExceptionInfo[BadUserInput]) -> str:
    return " | ".join(f"{p.field}: {p.message}" for p in exc.value.problems)


def test_variables_are_every_name_the_three_parts_look_up() -> None:
    template = make(
        subject="{{ first_name }}, {{ site }} needs you",
        html="<p>{% for ch in first_name %}{{ ch }}{% endfor %} <a href='{{ unsubscribe_url }}'>x</a></p>",
        text="{% set greeting = 'Hi' %}{{ greeting }} {{ last_name|upper }}",
    )
    assert template.variables == {"first_name", "site", "unsubscribe_url", "last_name"}
    assert template.audience_variables == {"first_name", "site", "last_name"}
    assert rules.missing_variables(template, ["first_name", "site"]) == {"last_name"}
    assert rules.missing_variables(template, ("first_name", "site", "last_name")) == frozenset()


def test_html_is_escaped_and_subject_and_text_are_not() -> None:
    template = make(subject="For {{ name }}", html="<p>Hi {{ name }}</p>", text="Hi {{ name }}")
    out = rules.render(template, {"name": "<b>Tom & Jerry</b>"})
    assert out.html == "<p>Hi &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;</p>"
    assert out.text == "Hi <b>Tom & Jerry</b>"
    assert out.subject == "For <b>Tom & Jerry</b>"


def test_a_missing_variable_is_an_error_naming_it_never_a_blank() -> None:
    template = make(text="Dear {{ first_name }} {{ last_name }}")
    with pytest.raises(MissingVariables) as caught:
        rules.render(template, {"first_name": "Ada"})
    assert caught.value.names == ("last_name",)
    assert "last_name" in caught.value.message
    assert caught.value.extensions()["code"] == "BAD_USER_INPUT"


def test_strict_undefined_also_catches_attributes_of_values() -> None:
    template = make(text="{{ first_name.nickname }}")
    with pytest.raises(RenderFailed, match="not there"):
        rules.render(template, {"first_name": "Ada"})


@pytest.mark.parametrize(
    ("source", "says"),
    [
        ("{{ first_name.__class__ }}", "attributes starting with '_'"),
        ("{% include 'other.html' %}", "include is not allowed"),
        ("{% import 'macros' as m %}", "import is not allowed"),
        ("{% extends 'base' %}", "extends is not allowed"),
        ("line one\n{{ first_name ", "line 2"),
        ("{% for x in y %}", "line 1"),
    ],
)
def test_templates_that_reach_outside_or_do_not_compile_are_refused_with_the_line(
    source: str, says: str
) -> None:
    with pytest.raises(BadUserInput) as caught:
        make(html=source)
    assert says in problem(caught)
    assert "input.html" in problem(caught)


def test_the_sandbox_refuses_internals_reached_at_render_time() -> None:
    template = make(text="{{ first_name|attr('__class__') }}")
    with pytest.raises(RenderFailed, match="may not"):
        rules.render(template, {"first_name": "Ada"})
    template = make(
        text="{{ first_name['__class__'] }}"
    )  # a subscript, not an attribute: the sandbox says no
    with pytest.raises(RenderFailed, match="may not"):
        rules.render(template, {"first_name": "Ada"})


def test_no_globals_and_no_huge_values() -> None:
    template = make(text="{{ range(3) }}")
    assert "range" in template.variables  # not a function here: a variable like any other
    huge = make(text="{{ first_name * 100000000 }}")
    with pytest.raises(RenderFailed, match="may not"):
        rules.render(huge, {"first_name": "Ada"})
    assert rules.render(make(text="{{ first_name * 3 }}"), {"first_name": "ab"}).text == "ababab"


def test_the_rendered_subject_is_one_line_header_injection_is_refused() -> None:
    template = make(subject="Hello {{ first_name }}")
    with pytest.raises(RenderFailed, match="line break"):
        rules.render(template, {"first_name": "Ada\r\nBcc: victim@example.org"})
    with pytest.raises(BadUserInput) as caught:
        make(subject="Hello\nBcc: x@example.org")
    assert "one line" in problem(caught)


def test_input_limits_every_problem_at_once() -> None:
    with pytest.raises(BadUserInput) as caught:
        rules.validate_new({"name": "", "subject": "x" * 999})
    text = problem(caught)
    assert "input.name" in text
    assert "input.subject: must be at most 998" in text
    assert "input.html: give an HTML part, a text part, or both" in text
    with pytest.raises(BadUserInput, match="256 KiB"):
        rules.validate_new({"name": "n", "subject": "s", "html": "é" * (128 * 1024 + 1)})  # bytes, not chars
    with pytest.raises(BadUserInput, match="128 KiB"):
        rules.validate_new({"name": "n", "subject": "s", "text": "x" * (128 * 1024 + 1)})
    assert rules.validate_new({"name": "n", "subject": "s", "html": "x" * (256 * 1024)}).html


def test_preview_fills_a_placeholder_unsubscribe_link() -> None:
    template = make(html="<a href='{{ unsubscribe_url }}'>Unsubscribe</a> {{ email }}")
    out = rules.preview(template, {"first_name": "Ada", "email": "ada@example.org"})
    assert rules.PREVIEW_UNSUBSCRIBE_URL in (out.html or "")
    assert out.text is None
    with pytest.raises(MissingVariables) as caught:
        rules.preview(template, {})
    assert caught.value.names == ("email", "first_name")
