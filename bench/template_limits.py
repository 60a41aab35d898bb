"""Benchmark: what the template limits (``prefsvc.mail.limits``) cost per recipient.

Renders the ~30 KB newsletter (subject, HTML, text) per recipient, and a template with loops,
in Jinja2's plain sandbox ("before") and in the bounded sandbox ("after"), and prints µs per
message for each. Then times the issue's two bombs to show they stop at the budget.

    .venv/bin/python bench/template_limits.py [--repeat 500]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from jinja2.sandbox import SandboxedEnvironment

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.newsletter import newsletter_html  # noqa: E402
from prefsvc.mail.limits import Limits, TemplateTooCostly, environments  # noqa: E402
from prefsvc.mail.rendering import SAMPLE, inline_css, text_from_html  # noqa: E402

SUBJECT = "Nieuw voor {{ contact.first_name }}: onze opleidingen"
LOOPS = (
    "<ul>{% for i in range(60) %}<li class='c{{ i }}'>{{ contact.first_name }} {{ i }}"
    "{% for part in ['a', 'b', 'c'] %}{{ part|upper }}{% endfor %}</li>{% endfor %}</ul>"
)
BOMBS = {
    "{{ 'a' * 300000000 }}": "{{ 'a' * 300000000 }}",
    "3 nested for over range(100000)": (
        "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}"
        "{% endfor %}{% endfor %}{% endfor %}"
    ),
}


def per_call_us(functions: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best µs per call of each function, measured in alternation (the machine is shared)."""
    best = [float("inf")] * len(functions)
    for function in functions:
        function()
    for _ in range(7):
        for i, function in enumerate(functions):
            started = time.perf_counter()
            for _ in range(repeat):
                function()
            best[i] = min(best[i], (time.perf_counter() - started) / repeat)
    return [b * 1e6 for b in best]


def recipient(templates) -> Callable[[], object]:
    context = {"contact": SAMPLE, "unsubscribe_url": "https://x/u", "preferences_url": "x"}
    return lambda: [t.render(context) for t in templates]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=500)
    repeat = parser.parse_args().repeat
    html = inline_css(newsletter_html())
    text = text_from_html(html)
    plain_html, plain_text = (
        SandboxedEnvironment(autoescape=True),
        SandboxedEnvironment(autoescape=False),
    )
    bounded_html, bounded_text = environments(Limits())
    print(f"per recipient (subject + html + text), best of 7 × {repeat}:")
    for name, body in (("30 KB newsletter", html), ("a template with loops", LOOPS)):
        before, after = per_call_us(
            [
                recipient(
                    [
                        plain_text.from_string(SUBJECT),
                        plain_html.from_string(body),
                        plain_text.from_string(text),
                    ]
                ),
                recipient(
                    [
                        bounded_text.from_string(SUBJECT),
                        bounded_html.from_string(body),
                        bounded_text.from_string(text),
                    ]
                ),
            ],
            repeat,
        )
        print(
            f"  {name:24} before {before:8.1f} µs/message   after {after:8.1f} µs/message"
            f"   (+{after - before:.1f} µs)"
        )
    print("bombs, default limits (1 s, 1,000,000 bytes):")
    for name, source in BOMBS.items():
        started = time.perf_counter()
        try:
            bounded_html.from_string(source).render()
            outcome = "rendered?!"
        except TemplateTooCostly as exc:
            outcome = f"stopped: {exc}"
        print(f"  {name:34} {time.perf_counter() - started:6.3f} s  {outcome}")


if __name__ == "__main__":
    main()
