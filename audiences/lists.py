"""The lists by purpose in `signals score`'s customers file: `--lists complementary=5,trending=5` asks every
customer's request for those lists, answered by the endpoint's engine (one answer everywhere), and writes
each as a column `list_<name>` (product ids, best first) plus `list_notes` (why a list is short or empty).

None are asked by default: each list costs scoring time (people_like_you compares every customer with the
bundle's index) and the files stay what they were for callers that do not want them.
"""
from __future__ import annotations

import pyarrow as pa

from events.errors import UserFacingError
from serving.api_types import MAX_LIST_K, Lists, ListsRequest

LIST_NAMES = tuple(Lists.model_fields)
NOTES_COLUMN = "list_notes"
READ_OLDER_VIEWS = {"trending", "recently_viewed", "similar"}
"""Lists whose answer reads views before the model's window and the latest session (audiences/timelines.py)."""


def parse_lists(spec: str | None) -> dict[str, int]:
    """'complementary=5,trending=5' -> {'complementary': 5, 'trending': 5}; None or '' -> {}."""
    asked: dict[str, int] = {}
    for item in filter(None, (part.strip() for part in (spec or "").split(","))):
        name, sep, k = item.partition("=")
        if name not in LIST_NAMES:
            raise UserFacingError(f"--lists: unknown list {name!r} in {item!r}; lists: {', '.join(LIST_NAMES)}")
        if not sep or not k.strip().isdigit() or not 1 <= int(k) <= MAX_LIST_K:
            raise UserFacingError(f"--lists: {item!r} needs a length from 1 to {MAX_LIST_K}, as in {name}=5")
        if name in asked:
            raise UserFacingError(f"--lists: {name!r} is named twice")
        asked[name] = int(k)
    return asked


def reads_every_event(asked: dict[str, int]) -> bool:
    return bool(READ_OLDER_VIEWS & set(asked))


def lists_request(asked: dict[str, int]) -> ListsRequest | None:
    return ListsRequest(**asked) if asked else None


def column(name: str) -> str:
    return f"list_{name}"


def list_fields(asked: dict[str, int]) -> list[pa.Field]:
    """The customers file's extra columns for the asked lists (none without lists)."""
    if not asked:
        return []
    return [pa.field(column(name), pa.list_(pa.string())) for name in asked] + [
        pa.field(NOTES_COLUMN, pa.list_(pa.string()))]


def list_values(signals, asked: dict[str, int]) -> dict[str, list[str]]:
    """One customer's answer (`ShopperSignals`) -> {column: product ids} for the asked lists, and the notes."""
    if not asked:
        return {}
    lists = signals.lists
    values = {column(name): [item["product_id"] for item in (getattr(lists, name) or [])] for name in asked}
    return values | {NOTES_COLUMN: list(signals.notes)}
