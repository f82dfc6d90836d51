"""Test events: live wedding updates in one stream, three event types (``event_type``):

- ``price_change``: a vendor changes its price (vendor_id, category, currency, old_price, new_price);
- ``rsvp``: a guest party answers (wedding_id, guest_name, guest_email, response accepted/declined,
  party_size, guest_change: the change in the wedding's confirmed guests, negative when a party that
  had accepted declines later);
- ``payment``: a wedding pays a vendor it booked (wedding_id, vendor_id, amount, currency).

Every event has ``occurred_at`` (event time, ISO 8601 UTC); arrival is in time order give or take
half a minute. A vendor and a wedding deal in one currency. About `bad_share` of the events have
exactly one defect (:data:`BAD_KINDS`), which the wedding_live_* specs' rules dead-letter."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

EVENT_TYPES = ("price_change", "rsvp", "payment")
CURRENCIES = ("USD", "EUR", "GBP")
CATEGORIES = {  # a vendor's starting price range, in its currency
    "venue": (4_000, 25_000),
    "catering": (2_500, 20_000),
    "photography": (1_500, 6_000),
    "florist": (800, 5_000),
    "band": (1_500, 8_000),
    "dj": (600, 2_500),
    "cake": (300, 1_500),
    "attire": (800, 4_500),
    "planner": (1_500, 10_000),
    "officiant": (200, 800),
}
BAD_KINDS = (
    "non_positive_amount",  # a payment of 0 or less
    "unknown_type",  # an event type no spec knows (gift_registry, tasting_booked, seating_update)
    "missing_wedding_id",  # an RSVP or a payment without wedding_id
    "non_positive_price",  # a price change to 0 or less
    "missing_time",  # no occurred_at, or one that is not a time
)
_UNKNOWN_TYPES = ("gift_registry", "tasting_booked", "seating_update")
_FIRST = ("ava", "ben", "chloe", "dev", "elena", "finn", "grace", "hugo", "isla", "jon", "kai", "lena")
_LAST = ("adams", "baker", "chen", "diaz", "evans", "fischer", "garcia", "hughes", "ito", "jones", "khan")
_SHARES = (0.1, 0.25, 0.3, 0.5)  # deposits and instalments, as a share of the vendor's price


@dataclass
class _Vendor:
    vendor_id: str
    category: str
    currency: str
    price: float


@dataclass
class _Wedding:
    wedding_id: str
    currency: str
    vendors: list[_Vendor]
    accepted: list[tuple[str, str, int]] = field(default_factory=list)  # (name, email, party size)


def wedding_events(
    count: int, *, bad_share: float = 0.05, seed: int = 0, weddings: int = 60, vendors: int = 120
) -> Iterator[dict[str, Any]]:
    """`count` events (about 15% price changes, 60% RSVPs, 25% payments); about `bad_share` of them
    have one defect of :data:`BAD_KINDS`. Bad events do not change the generator's vendors and weddings."""
    rng = random.Random(seed)
    categories = sorted(CATEGORIES)
    shop = []
    for i in range(vendors):
        category = categories[i % len(categories)]
        low, high = CATEGORIES[category]
        currency = rng.choices(CURRENCIES, weights=(60, 25, 15))[0]
        shop.append(_Vendor(f"V{i:04d}", category, currency, float(round(rng.uniform(low, high), -1))))
    booked = []
    for j in range(weddings):
        currency = rng.choices(CURRENCIES, weights=(60, 25, 15))[0]
        local = [v for v in shop if v.currency == currency] or shop
        booked.append(_Wedding(f"W{j:04d}", currency, rng.sample(local, min(6, len(local)))))
    start = datetime(2026, 6, 1, 9, tzinfo=UTC)
    for i in range(count):
        moment = start + timedelta(milliseconds=400 * i)
        if rng.random() < 0.2:  # out of order: up to 30 s behind the events that arrived before it
            moment -= timedelta(milliseconds=rng.randrange(30_000))
        bad = rng.choice(BAD_KINDS) if rng.random() < bad_share else None
        kind = _kind_for(rng, bad)
        if kind == "price_change":
            event = _price_change(rng, rng.choice(shop), bad)
        elif kind == "rsvp":
            event = _rsvp(rng, rng.choice(booked), bad)
        else:
            event = _payment(rng, rng.choice(booked), bad)
        event = {"event_type": kind, "occurred_at": _iso(moment), **event}
        if bad == "unknown_type":
            event["event_type"] = rng.choice(_UNKNOWN_TYPES)
        elif bad == "missing_wedding_id":
            event.pop("wedding_id")
        elif bad == "missing_time":
            if rng.random() < 0.5:
                event.pop("occurred_at")
            else:
                event["occurred_at"] = "soon after the ceremony"
        yield event


def _kind_for(rng: random.Random, bad: str | None) -> str:
    if bad == "non_positive_amount":
        return "payment"
    if bad == "non_positive_price":
        return "price_change"
    if bad == "missing_wedding_id":
        return rng.choice(("rsvp", "payment"))
    return rng.choices(EVENT_TYPES, weights=(15, 60, 25))[0]


def _price_change(rng: random.Random, vendor: _Vendor, bad: str | None) -> dict[str, Any]:
    old = vendor.price
    new = float(round(old * rng.uniform(0.9, 1.15), -1))
    if new == old:
        new = old + 10
    if bad == "non_positive_price":
        new = rng.choice((0.0, -new))
    elif bad is None:
        vendor.price = new
    return {
        "vendor_id": vendor.vendor_id,
        "category": vendor.category,
        "currency": vendor.currency,
        "old_price": old,
        "new_price": new,
    }


def _rsvp(rng: random.Random, wedding: _Wedding, bad: str | None) -> dict[str, Any]:
    if wedding.accepted and rng.random() < 0.08:  # a party that accepted changes its mind
        party = wedding.accepted[rng.randrange(len(wedding.accepted))]
        name, email, size = party
        response, change = "declined", -size
        if bad is None:
            wedding.accepted.remove(party)
    else:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        name, email = f"{first.title()} {last.title()}", f"{first}.{last}{rng.randrange(100)}@example.com"
        size = rng.choices((1, 2, 3, 4), weights=(40, 45, 10, 5))[0]
        response = "accepted" if rng.random() < 0.8 else "declined"
        change = size if response == "accepted" else 0
        if bad is None and response == "accepted":
            wedding.accepted.append((name, email, size))
    return {
        "wedding_id": wedding.wedding_id,
        "guest_name": name,
        "guest_email": email,
        "response": response,
        "party_size": size,
        "guest_change": change,
    }


def _payment(rng: random.Random, wedding: _Wedding, bad: str | None) -> dict[str, Any]:
    vendor = rng.choice(wedding.vendors)
    amount = round(vendor.price * rng.choice(_SHARES), 2)
    if bad == "non_positive_amount":
        amount = rng.choice((0.0, -amount))
    return {
        "wedding_id": wedding.wedding_id,
        "vendor_id": vendor.vendor_id,
        "amount": amount,
        "currency": wedding.currency,
    }


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
