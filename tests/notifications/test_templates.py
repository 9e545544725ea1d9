"""Every message template renders in every locale and format, and carries only the allowed facts."""

from __future__ import annotations

import pytest

from models.catalog import MESSAGE_TEMPLATES, template_names
from models.outbox import MessageEvent
from models.vocabulary import LOCALES
from notifications.render import MessageContext, render

SAMPLE = MessageContext(
    reference="RJK-7QK2-M9",
    step="Penempatan di rumah aman",
    deadline="2026-12-08 09:00 WITA",
    link="http://127.0.0.1:8765/s/abc.def",
)


def test_there_is_a_template_for_every_event_in_every_locale():
    assert {e.value for e in MessageEvent} <= template_names()
    for locale in LOCALES:
        for event in MessageEvent:
            assert (MESSAGE_TEMPLATES / locale / f"{event.value}.j2").read_text().strip()


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("event", [e.value for e in MessageEvent])
def test_every_template_renders_in_every_format(event, locale):
    message = render(event, locale, SAMPLE)
    assert message.subject.startswith("[RJK-7QK2-M9] ")
    assert "\n" not in message.subject and len(message.subject) < 140
    for body_format in ("text", "markdown", "html"):
        body = message.body(body_format)
        assert "RJK-7QK2-M9" in body and SAMPLE.link in body
        assert "2026-12-08 09:00 WITA" in body
        assert "{{" not in body and "{%" not in body
    assert '<a href="http://127.0.0.1:8765/s/abc.def">' in message.html
    assert "<" not in message.text
    assert ("Dengan hormat" in message.text) == (locale == "id")


@pytest.mark.parametrize("locale", LOCALES)
def test_a_message_without_step_or_deadline_leaves_those_lines_out(locale):
    message = render(
        "referral-completed", locale, MessageContext("RJK-7QK2-M9", None, None, "http://x/s/t")
    )
    assert "None" not in message.text + message.markdown + message.html


def test_values_are_escaped_for_html_and_markdown():
    hostile = MessageContext(
        "RJK-7QK2-M9",
        "<script>x</script> *bold* [a](http://evil)",
        "2026-12-08 09:00 WIB",
        "http://127.0.0.1:8765/s/t",
    )
    message = render("assigned", "en", hostile)
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html
    assert "[a](http://evil)" not in message.markdown and "\\*bold\\*" in message.markdown


def test_a_subject_cannot_carry_a_new_header_line():
    message = render(
        "assigned",
        "id",
        MessageContext("RJK-7QK2-M9", "a\r\nBcc: x@example.org", None, "http://x/s/t"),
    )
    assert "\r" not in message.subject and "\n" not in message.subject


def test_the_sandbox_refuses_to_reach_python_internals(tmp_path):
    from jinja2.exceptions import SecurityError

    from notifications.render import _environment

    template = _environment(False).from_string("{{ link.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(SecurityError):
        template.render(link="x")
