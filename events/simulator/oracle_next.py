"""Next-product oracle: the k most likely products of the next event of the session, exactly.

The next product is drawn from a mixture (funnel.NextMixture): point masses on the current product,
the first cart item, the next item of a checkout and (uniformly) the cart items, plus q(. | slot of the
current product) for a compare view and the browse distribution sum_s w_s q(. | s). Outside the point
masses, a product of the current slot scores (w_compare + w_browse w_slot) q and any other product
w_browse w_s q, so within each slot scores rank like q: the top k of the mixture therefore lies among
the browse top k, the current slot's top k, the current product and the cart items, and scoring just
those candidates is exact.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from events.simulator.customers import Customers
from events.simulator.funnel import (
    ON_BROWSE, ON_CHECKOUT_ITEM, ON_COMPARE, ON_CURRENT, ON_FIRST_CART_ITEM, ON_REMOVED_ITEM, NextMixture,
)

ROWS_PER_CHUNK = 20_000


@dataclass
class TopProducts:
    offsets: np.ndarray    # (n + 1,) list boundaries into the two arrays below
    product: np.ndarray    # catalogue indices, most likely first
    probability: np.ndarray


def top_next_products(mixture: NextMixture, user: np.ndarray, customers: Customers, k: int) -> TopProducts:
    """`user`: the block-local customer of each mixture row."""
    products, probabilities, lengths = [], [], []
    for lo in range(0, len(user), ROWS_PER_CHUNK):
        rows = slice(lo, lo + ROWS_PER_CHUNK)
        product, probability, length = _top_chunk(mixture, rows, user[rows], customers, k)
        products.append(product)
        probabilities.append(probability)
        lengths.append(length)
    length = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    return TopProducts(
        offsets=np.concatenate([[0], np.cumsum(length)]).astype(np.int32),
        product=np.concatenate(products) if products else np.zeros(0, dtype=np.int64),
        probability=np.concatenate(probabilities) if probabilities else np.zeros(0),
    )


def _top_chunk(mixture: NextMixture, rows: slice, user: np.ndarray, customers: Customers,
               k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    choices = customers.choices
    weights = mixture.weights[rows]
    current = mixture.current[rows]
    current_slot = mixture.current_slot[rows]
    cart = mixture.cart[rows]
    cart_size = mixture.cart_size[rows]
    n = len(user)

    same_slot_top = np.where(current_slot[:, None] >= 0,
                             choices.slot_top[user, np.maximum(current_slot, 0)], -1)
    candidates = np.concatenate([choices.browse_top[user], same_slot_top, current[:, None], cart], axis=1)
    # Each product once per row: sort, then blank repeats.
    candidates.sort(axis=1)
    repeat = np.zeros_like(candidates, dtype=bool)
    repeat[:, 1:] = candidates[:, 1:] == candidates[:, :-1]
    valid = (candidates >= 0) & ~repeat
    safe = np.maximum(candidates, 0)

    q = choices.probability[safe]
    slot = choices.slot[safe]
    slot_weight = np.take_along_axis(customers.slot_weight[user], slot.astype(np.int64), axis=1)
    score = weights[:, ON_BROWSE, None] * slot_weight * q
    score += weights[:, ON_COMPARE, None] * q * (slot == current_slot[:, None])
    score += weights[:, ON_CURRENT, None] * (candidates == current[:, None])
    score += weights[:, ON_FIRST_CART_ITEM, None] * (candidates == cart[:, :1])
    checkout_item = np.take_along_axis(cart, np.minimum(mixture.checkout_position[rows], cart.shape[1] - 1)[:, None],
                                       axis=1)
    score += weights[:, ON_CHECKOUT_ITEM, None] * (candidates == checkout_item)
    for column in range(cart.shape[1]):
        in_cart = (candidates == cart[:, column:column + 1]) & (column < cart_size)[:, None]
        score += weights[:, ON_REMOVED_ITEM, None] * in_cart / np.maximum(cart_size, 1)[:, None]
    score = np.where(valid & (score > 0), score, -1.0)

    best = np.argpartition(-score, k - 1, axis=1)[:, :k] if k < score.shape[1] else \
        np.broadcast_to(np.arange(score.shape[1]), score.shape)
    order = np.take_along_axis(best, np.argsort(-np.take_along_axis(score, best, axis=1), axis=1, kind="stable"),
                               axis=1)
    best_score = np.take_along_axis(score, order, axis=1)
    keep = best_score > 0
    product = choices.product[np.take_along_axis(safe, order, axis=1)]
    return product[keep], best_score[keep], keep.sum(axis=1).reshape(n)
