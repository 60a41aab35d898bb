"""Click figures without tracking people: counting redirects per campaign and link.

Off by default (``Campaign.track_clicks``). When a campaign asks for it, each distinct web link
of its HTML becomes ``BASE_URL/c/<token>``, where the signed token names the campaign and the
link's number, and nothing about the recipient: every recipient of the campaign gets the same
link, so a click cannot be traced to a person, and nothing about who clicked is written. The
redirect goes only to a URL stored for that campaign (``link_clicks``): a forged or altered
token gets the same 404 as any bad link, so the route is no open redirect.

The text/plain part keeps its links as they are: a reader who does not want to be counted can
use them.
"""

from __future__ import annotations

import html as html_escaping
import re
from dataclasses import dataclass

from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from prefsvc.errors import InvalidToken
from prefsvc.models import Campaign, LinkClick

CLICK = "prefsvc.click.v1"
# A web link in an href, written literally (no template code): the only links we count.
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'{}<>\s]+)\2""", re.I)


@dataclass(frozen=True)
class Tracking:
    """How a campaign's links are rewritten: each URL to its counting redirect."""

    redirects: dict[str, str]

    def rewrite(self, html: str) -> str:
        """Point every counted link of an HTML template at its redirect."""

        def swap(match: re.Match[str]) -> str:
            url = html_escaping.unescape(match.group(3))
            target = self.redirects.get(url)
            if target is None:
                return match.group(0)
            return f"{match.group(1)}{match.group(2)}{target}{match.group(2)}"

        return _HREF.sub(swap, html)


def links_in(html: str) -> list[str]:
    """Return the distinct web links of an HTML template, in order of appearance."""
    seen: dict[str, None] = {}
    for match in _HREF.finditer(html):
        seen.setdefault(html_escaping.unescape(match.group(3)), None)
    return list(seen)


def campaign_links(campaign: Campaign) -> list[str]:
    """Return the campaign's distinct links over all its variants; a link's number is its index."""
    seen: dict[str, None] = {}
    for variant in sorted(campaign.variants, key=lambda v: v.language.value):
        for url in links_in(variant.html):
            seen.setdefault(url, None)
    return list(seen)


def _serializer(secret_keys: tuple[str, ...]) -> URLSafeSerializer:
    return URLSafeSerializer(list(secret_keys), salt=CLICK)


def token(secret_keys: tuple[str, ...], campaign_id: int, link: int) -> str:
    """Sign a link's redirect token: the campaign and the link's number, no person."""
    return _serializer(secret_keys).dumps([campaign_id, link])


def read_token(secret_keys: tuple[str, ...], value: str) -> tuple[int, int]:
    """Return ``(campaign id, link number)`` of a redirect token, or raise InvalidToken."""
    if not value or len(value) > 200:
        raise InvalidToken()
    try:
        data = _serializer(secret_keys).loads(value)
    except (BadData, ValueError, TypeError, UnicodeError):
        raise InvalidToken() from None
    if (
        not isinstance(data, list)
        or len(data) != 2
        or not all(type(n) is int and 0 <= n < 2**31 for n in data)
    ):
        raise InvalidToken()
    return data[0], data[1]


def tracking(campaign: Campaign, *, base_url: str, secret_keys: tuple[str, ...]) -> Tracking | None:
    """Return how to rewrite the campaign's links, or None when it does not count clicks."""
    if not campaign.track_clicks:
        return None
    return Tracking(
        {
            url: f"{base_url}/c/{token(secret_keys, campaign.id, n)}"
            for n, url in enumerate(campaign_links(campaign))
        }
    )


def record_links(session: Session, campaign: Campaign) -> int:
    """Write the campaign's links with a count of 0 (at fan-out); return how many."""
    if not campaign.track_clicks:
        return 0
    existing = set(
        session.scalars(select(LinkClick.link).where(LinkClick.campaign_id == campaign.id))
    )
    urls = campaign_links(campaign)
    for n, url in enumerate(urls):
        if n not in existing:
            session.add(LinkClick(campaign_id=campaign.id, link=n, url=url, clicks=0))
    session.flush()
    return len(urls)


def follow(session: Session, secret_keys: tuple[str, ...], value: str) -> str:
    """Count one click on a redirect token and return where it leads; InvalidToken if nowhere.

    One ``UPDATE … SET clicks = clicks + 1``: concurrent clicks are all counted.
    """
    campaign_id, link = read_token(secret_keys, value)
    url = session.execute(
        update(LinkClick)
        .where(LinkClick.campaign_id == campaign_id, LinkClick.link == link)
        .values(clicks=LinkClick.clicks + 1)
        .returning(LinkClick.url)
    ).scalar_one_or_none()
    if url is None:
        raise InvalidToken()
    return url


def figures(session: Session, campaign: Campaign) -> dict[str, object] | None:
    """Return the campaign's clicks per link and in total, or None when it does not count."""
    if not campaign.track_clicks:
        return None
    rows = session.execute(
        select(LinkClick.link, LinkClick.url, LinkClick.clicks)
        .where(LinkClick.campaign_id == campaign.id)
        .order_by(LinkClick.link)
    ).all()
    return {
        "total": sum(r.clicks for r in rows),
        "links": [{"link": r.link, "url": r.url, "clicks": r.clicks} for r in rows],
    }
