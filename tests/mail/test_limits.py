"""Templates under limits: the issue's bombs are stopped within the budget, ordinary ones pass."""

from __future__ import annotations

import pytest

from prefsvc.errors import InvalidFields
from prefsvc.mail.limits import Limits, TemplateTooCostly, environments
from prefsvc.mail.rendering import compile_variant

NESTED_LOOPS = (
    "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
    "{% endfor %}{% endfor %}{% endfor %}"
)
BOMBS = {
    "string multiplication": "{{ 'a' * 300000000 }}",
    "three nested loops": NESTED_LOOPS,
    "nested loops that print": NESTED_LOOPS.replace("{% endfor %}", "x{% endfor %}", 1),
    "loops over a long string": (
        "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}"
    ),
    "a filter's width": "{{ 'x'|center(300000000) }}",
    "a method's width": "{{ 'x'.ljust(300000000) }}",
    "printf width": "{{ '%300000000s' % 1 }}",
    "format width": "{{ '{:>300000000}'.format(1) }}",
    "replace": "{{ 'xx'|replace('', 'y' * 900000) }}",
    "concatenation": "{% set a = 'x' * 900000 %}{% set b = a ~ a %}{{ b|length }}",
    "a list of lists": "{{ [[0] * 1000000] * 1000000 }}",
    "join": "{{ ([('x' * 900000)] * 3)|join }}",
    "powers": "{{ 9 ** 999999999 }}",
    "exponential macros": (
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}"
    ),
    "a list that grows": "{% set l = [1] %}{% for i in range(60) %}{{ l.extend(l) }}{% endfor %}",
}
QUICK = Limits(seconds=0.2, max_bytes=1_000_000)


@pytest.mark.parametrize("source", BOMBS.values(), ids=BOMBS.keys())
def test_a_template_bomb_is_stopped_within_the_budget(source):
    html, _ = environments(QUICK)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - a limit or the sandbox refuses it
        html.from_string(source).render()
    assert type(caught.value).__name__ in {"TemplateTooCostly", "SecurityError"}


def test_output_past_the_size_limit_is_refused():
    html, _ = environments(Limits(seconds=5, max_bytes=10_000))
    with pytest.raises(TemplateTooCostly, match="10,000 bytes"):
        html.from_string("{% for i in range(20000) %}ab{% endfor %}").render()
    assert len(html.from_string("{% for i in range(4000) %}ab{% endfor %}").render()) == 8000


def test_the_size_limit_counts_bytes_not_characters():
    _, text = environments(Limits(seconds=5, max_bytes=10_000))
    with pytest.raises(TemplateTooCostly):
        text.from_string("{% for i in range(4000) %}€{% endfor %}").render()


def test_ordinary_templates_render_as_before():
    html, text = environments(Limits())
    source = (
        "{% for x in items %}{{ loop.index }}/{{ loop.length }} {{ x|upper }}"
        "{% if not loop.last %}, {% endif %}{% endfor %} {{ items|join('-') }}"
        " {{ '%s=%d' % ('n', 3) }} {{ 'a' ~ 'b' }} {{ '{} {}'.format('x', 'y') }}"
        " {{ 'abc'.replace('b', 'B') }} {{ range(3)|list }} {{ 2 ** 10 }}"
    )
    assert html.from_string(source).render(items=["a", "b"]) == (
        "1/2 A, 2/2 B a-b n=3 ab x y aBc [0, 1, 2] 1024"
    )
    assert text.from_string("{{ '<b>' }}").render() == "<b>"
    assert html.from_string("{{ '<b>' }}").render() == "&lt;b&gt;"


def test_compiling_refuses_the_bomb_naming_its_field():
    with pytest.raises(InvalidFields) as caught:
        compile_variant(
            subject="{{ 'a' * 300000000 }}",
            html=f"<p>{NESTED_LOOPS}</p>",
            text="fine",
            language="nl",
            topic_name="News",
            bounds=QUICK,
        )
    assert set(caught.value.fields) == {"subject", "html"}
    assert "1,000,000 bytes" in caught.value.fields["subject"][0]
    assert "more than 0.2 s" in caught.value.fields["html"][0]
