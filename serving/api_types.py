"""The JSON contract of the endpoint: requests, responses, their limits, descriptions and examples.

Validation happens here, before any model code runs: a malformed request gets a 400 whose message
names the field (see serving/http_guard.py), and the limits keep one request from monopolising the
server. Unknown products, categories, brands, event types and users are valid: the model serves them
through its UNK id. Booleans and numbers do not stand in for each other: pydantic's lax mode would read
`true` as the price 1.0 or as k=1, and 1 as a flag (`NotABoolean`, `strict=True`).
"""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

MAX_EVENTS = 1000
"""Events per shopper; only the latest `window` (50 by default) reach the model, the rest inform filters."""
MAX_SHOPPERS = 256
MAX_K = 100
MAX_AFFINITIES = 50
MAX_FILTER_VALUES = 1000
MAX_ID_LENGTH = 256
MAX_LIST_K = 20
"""Products per list by purpose (platforms show 3-5 per flavour)."""
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2262, 1, 1, tzinfo=UTC)  # pandas' nanosecond range: offline code can score the same events

Segment = Literal["high_intent", "cart_abandoner", "browse_abandoner", "at_risk", "dormant", "persuadable"]

EXAMPLE_EVENTS = [
    {"ts": "2026-03-02T18:01:05Z", "event_type": "view", "product_id": "1005115",
     "category": "electronics.smartphone", "brand": "apple", "price": 949.0, "session_id": "s-81"},
    {"ts": "2026-03-02T18:03:40Z", "event_type": "view", "product_id": "1004856",
     "category": "electronics.smartphone", "brand": "samsung", "price": 128.4, "session_id": "s-81"},
    {"ts": "2026-03-02T18:04:12Z", "event_type": "cart", "product_id": "1004856",
     "category": "electronics.smartphone", "brand": "samsung", "price": 128.4, "session_id": "s-81"},
]
EXAMPLE_REQUEST = {
    "user_id": "u-5121", "as_of": "2026-03-02T19:00:00Z", "events": EXAMPLE_EVENTS, "k": 5,
    "filters": {"exclude_purchased": True, "exclude_in_cart": True},
    "lists": {"complementary": 3, "similar": 3, "trending": 3, "recently_viewed": 3},
}


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


NotABoolean = BeforeValidator(_not_a_boolean)


def as_utc(value: datetime, field: str) -> datetime:
    """Naive timestamps are UTC (as in the canonical event table); every instant lies in a sane range."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    elif value.utcoffset():  # most clients send UTC already: converting it would only cost time
        value = value.astimezone(UTC)
    if not EARLIEST <= value < LATEST:
        raise ValueError(f"{field} must lie between {EARLIEST.date()} and {LATEST.date()}")
    return value


class Event(BaseModel):
    """One canonical event. Extra fields are ignored, so a CDP can send its events as they are."""

    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    ts: datetime = Field(description="When it happened: ISO 8601 (naive = UTC) or Unix seconds.",
                         examples=["2026-03-02T18:01:05Z"])
    event_type: str = Field(min_length=1, max_length=64, examples=["view"],
                            description="view, cart, remove_from_cart, purchase, or a source's own type.")
    product_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, examples=["1005115"])
    category: str | None = Field(None, max_length=MAX_ID_LENGTH, examples=["electronics.smartphone"])
    brand: str | None = Field(None, max_length=MAX_ID_LENGTH, examples=["apple"])
    price: Annotated[float | None, NotABoolean] = Field(None, ge=0, allow_inf_nan=False, description="Unit price; null if unknown.")
    session_id: str | None = Field(
        None, max_length=MAX_ID_LENGTH,
        description="Session of the event. Where it is missing (here or on the previous event), a session "
                    "ends after the loaders' 30 minutes of inactivity.")

    @field_validator("ts")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return as_utc(value, "ts")


class Filters(BaseModel):
    """Restrictions on the recommended products (not on intent, churn or the affinities)."""

    model_config = ConfigDict(extra="forbid")

    exclude_purchased: bool = Field(False, strict=True, description="Drop products this shopper bought (in `events`).")
    exclude_in_cart: bool = Field(False, strict=True, description="Drop products still in the cart: added and neither removed nor bought since.")
    categories: list[str] | None = Field(None, max_length=MAX_FILTER_VALUES,
                                         description="Only products of these categories (as in the model's catalogue).")
    brands: list[str] | None = Field(None, max_length=MAX_FILTER_VALUES, description="Only products of these brands.")
    min_price: Annotated[float | None, NotABoolean] = Field(None, ge=0, allow_inf_nan=False)
    max_price: Annotated[float | None, NotABoolean] = Field(None, ge=0, allow_inf_nan=False)
    unknown_price: Literal["exclude", "include"] = Field(
        "exclude",
        description="The model carries no prices: a product's price is the latest one seen in this request's "
                    "events. With a price range, `exclude` drops products whose price is unknown (the range "
                    "is never violated), `include` keeps them (only known prices are checked).")

    @model_validator(mode="after")
    def _range(self) -> "Filters":
        if self.min_price is not None and self.max_price is not None and self.min_price > self.max_price:
            raise ValueError("min_price must not exceed max_price")
        return self

    @property
    def has_price_range(self) -> bool:
        return self.min_price is not None or self.max_price is not None


ListK = Annotated[int, NotABoolean, Field(ge=1, le=MAX_LIST_K)] | None


class ListsRequest(BaseModel):
    """Which lists by purpose to answer, and how many products each (1..20); a list not named is not
    computed. Every list honours `filters`; an unknown list name is a 400 naming it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"complementary": 5, "trending": 5}})

    next: ListK = Field(None, description="The model's next-product ranking (collaborative, sequence-aware): "
                                          "the same ranking as `products`.")
    complementary: ListK = Field(None, description="Bought together with what is in the cart (or, with an empty "
                                                   "cart, what was bought last): cart add-ons.")
    similar: ListK = Field(None, description="Close to the products just viewed: learned product vectors, same "
                                             "category, brand and price band (\"more like this\").")
    trending: ListK = Field(None, description="Most bought (or viewed) of the last days in the shopper's current "
                                              "category and top brand, from the served trends table.")
    people_like_you: ListK = Field(None, description="Bought recently by the customers whose learned representations "
                                                     "are nearest to the shopper's (lookalike).")
    recently_viewed: ListK = Field(None, description="The shopper's own viewed products, most recent first, "
                                                     "de-duplicated, purchased ones out.")


class ShopperRequest(BaseModel):
    """One shopper's recent events and what to return. Events may come in any order."""

    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True,
                              json_schema_extra={"example": EXAMPLE_REQUEST})

    events: list[Event] = Field(max_length=MAX_EVENTS,
                                description="Recent events, any order; [] for an unknown shopper (popularity and base rates).")
    user_id: str | None = Field(None, max_length=MAX_ID_LENGTH, description="Echoed back; never needed to score.")
    as_of: datetime | None = Field(None, description="The moment churn is asked for; default: now.")
    k: Annotated[int, NotABoolean] = Field(10, ge=1, le=MAX_K, description="Number of products.")
    k_categories: Annotated[int, NotABoolean] = Field(5, ge=1, le=MAX_AFFINITIES)
    k_brands: Annotated[int, NotABoolean] = Field(5, ge=1, le=MAX_AFFINITIES)
    filters: Filters = Field(default_factory=Filters)
    lists: ListsRequest | None = Field(None, description="Lists by purpose to answer in `lists`; none by default.")

    @field_validator("as_of")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return None if value is None else as_utc(value, "as_of")


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"example": {"shoppers": [EXAMPLE_REQUEST]}})

    shoppers: list[ShopperRequest] = Field(min_length=1, max_length=MAX_SHOPPERS)


# Items of the answer's lists are TypedDicts: the engine builds thousands of them per second, and a
# plain dict costs a fraction of a model instance (the schema and serialisation are the same).
class ProductScore(TypedDict):
    product_id: str
    score: Annotated[float, Field(description="Probability that this is the shopper's next product.")]
    category: str | None
    brand: str | None


class Affinity(TypedDict):
    name: str
    score: Annotated[float, Field(description="Probability that the next event falls in it.")]


class ListItem(TypedDict):
    product_id: str
    score: Annotated[float | None, Field(description="The list's own evidence: next: probability; complementary: "
                                                     "summed co-purchase similarity; similar: vector similarity plus "
                                                     "category, brand and price-band matches; trending: purchases "
                                                     "(or views) in the table's window; people_like_you: summed "
                                                     "cosine of the nearest customers who bought it; "
                                                     "recently_viewed: null.")]
    category: str | None
    brand: str | None


EXAMPLE_ITEM = {"product_id": "1004870", "score": 0.41, "category": "electronics.smartphone", "brand": "samsung"}


class Lists(BaseModel):
    """The lists asked for, best first, each after the request's filters (may be shorter than asked, or
    empty: `notes` says why); lists not asked for are null."""

    model_config = ConfigDict(json_schema_extra={"example": {
        "complementary": [EXAMPLE_ITEM], "trending": [{**EXAMPLE_ITEM, "score": 57.0}],
        "people_like_you": [{**EXAMPLE_ITEM, "score": 3.7}], "recently_viewed": [{**EXAMPLE_ITEM, "score": None}]}})

    next: list[ListItem] | None = None
    complementary: list[ListItem] | None = None
    similar: list[ListItem] | None = None
    trending: list[ListItem] | None = None
    people_like_you: list[ListItem] | None = None
    recently_viewed: list[ListItem] | None = None


class TrendsIdentity(BaseModel):
    as_of: datetime = Field(description="The trends table's moment: it counts the `days` before it.")
    days: float
    by: Literal["purchases", "views"]


class ModelIdentity(BaseModel):
    name: str = Field(examples=["session-signals"])
    version: str | None = Field(description="Registry version; null for a bundle served from a folder.", examples=["3"])
    run_id: str | None = Field(description="MLflow run that trained it.")


class HistorySummary(BaseModel):
    events_received: int
    events_used: int = Field(description="Latest events fed to the model (its window).")
    unknown_products: int = Field(description="Of those, products the model never saw (served through UNK).")


class ExperimentArm(BaseModel):
    """Where an experiment put this shopper (only when the server runs one: `signals serve --experiment`)."""

    name: str = Field(description="The experiment.", examples=["champion-vs-challenger"])
    arm: str = Field(description="The arm that answered.", examples=["challenger"])
    assigned: bool = Field(description="false: no user_id, so the control arm answered outside the experiment "
                                       "(not logged, not in the readout; counted in /metrics).")
    holdout: bool = Field(description="true: held out, no model answered: the signals are null or empty and the "
                                      "caller should act on nothing (the holdout measures what happens then).")
    request_id: str | None = Field(description="This exposure's id in the assignment log; null when not assigned.")


class ShopperSignals(BaseModel):
    user_id: str | None
    as_of: datetime
    # null only for a holdout shopper of an experiment (experiment.holdout)
    purchase_intent: float | None = Field(description="Probability that the current session ends in a purchase.")
    churn_risk: float | None = Field(description="Probability of no purchase within the model's churn horizon after as_of.")
    uplift: float | None = Field(None, description="Expected change in the probability that the current session ends "
                                 "in a purchase if a message is sent now (negative: it puts the shopper off); null when "
                                 "the model has no uplift head (`signals uplift`) or the history is empty.")
    products: list[ProductScore] = Field(description="Top-k products after filters, best first (may be fewer than k).")
    categories: list[Affinity]
    brands: list[Affinity]
    segments: list[Segment] = Field(description="Audiences this shopper belongs to now; rules in serving/segments.yaml.")
    history: HistorySummary
    model: ModelIdentity | None = Field(description="The model that answered; null for a holdout shopper.")
    experiment: ExperimentArm | None = Field(None, description="The experiment's assignment, when one runs.")
    lists: Lists | None = Field(None, description="The lists by purpose the request asked for (`lists`).")
    notes: list[str] = Field(default_factory=list,
                             description="Why a list asked for is empty or short, e.g. the filters exclude every candidate.")
    trends: TrendsIdentity | None = Field(None, description="The trends table that answered `trending`.")


class BatchSignals(BaseModel):
    results: list[ShopperSignals] = Field(description="One per shopper, in request order.")
