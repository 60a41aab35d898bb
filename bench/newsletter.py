"""A ~30 KB newsletter with 42 CSS rules, as in DESIGN.md's measurements."""

from __future__ import annotations


def newsletter_html(target_bytes: int = 30_000) -> str:
    rules = "\n".join(
        f"  .c{i} {{ color: #{(i * 4099) % 0xFFFFFF:06x}; "
        f"padding: {i % 9}px; font-size: {12 + i % 6}px; }}"
        for i in range(42)
    )
    blocks = []
    i = 0
    body = ""
    while len(body) < target_bytes:
        blocks.append(
            f'<div class="c{i % 42}"><h2 class="c{(i + 1) % 42}">'
            f"Opleiding {i}: veilig werken in de haven</h2>"
            f'<p class="c{(i + 2) % 42}">'
            "Deze opleiding behandelt de basisregels voor veilig werken "
            f"op terminals, met praktijkoefeningen en een examen. Plaatsen zijn beperkt; schrijf u "
            f"tijdig in via uw opleidingsverantwoordelijke. Prijs: € {100 + i} excl. btw.</p>"
            f'<p><a class="c{(i + 3) % 42}" href="https://opleidingen.example.org/o/{i}">'
            "Meer info</a></p></div>"
        )
        i += 1
        body = "\n".join(blocks)
    return (
        '<!doctype html><html><head><meta charset="utf-8"><style>\n'
        + rules
        + '\n</style></head><body>\n<p class="c0">Beste {{ contact.first_name }},</p>\n'
        + body
        + "\n</body></html>"
    )
