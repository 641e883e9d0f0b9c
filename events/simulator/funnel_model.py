"""The session funnel as a Markov chain: its transition probabilities and, solved exactly, the chance
that a session still contains a purchase from any state on.

The state after an event is its stage, the cart size k (0..K) and, after a view, the viewed product
(through its price acceptance g and its category slot). With s = propensity on the session's day,
a = chance to leave after an event, go = 1 - a:

    after a view (VIEW) or a repeated view of the same product (DETAIL) of product p:
        leave             a
        cart p            go * cart_rate * s * g          (only while k < K)
        buy p now         go * buy_now_rate * s * g
        check out         go * checkout_rate_from_view * s (only while k > 0)
        explore           X = go - the three above, split into
                          detail view of p    X * d       (not after DETAIL)
                          compare in p's category X * c   (c: the customer's compare share)
                          browse              X * (1 - d - c)   (after DETAIL: c and 1-d-c renormalised)
    after a cart or remove_from_cart event (CART_CHANGED), k items in the cart:
        leave a; check out go * checkout_rate_from_cart * s; remove a random item
        go * remove_rate_from_cart * (1 - s); browse the rest.   (k = 0: leave or browse)
    check out: one purchase event per cart item, in cart order, seconds apart (CHECKOUT);
    after the last purchase or a buy-now (AFTER_PURCHASE): browse with continue_after_purchase, else leave.
    A session starts with a browse view and an empty cart; carts do not outlive sessions.

Browse picks a slot by the customer's weights, then a product by q(. | slot); compare keeps the slot.
Because the chance of acting on a view is linear in g, the value of a view is a quadratic polynomial in
g, so its mean over q(. | slot) needs only E[g] and E[g^2] per slot; what is left is a (K+1)-sized
linear system per session. The oracles read these values, so they are exact, not estimated.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from events.simulator.config import FunnelConfig

# Stages: the state after an event.
VIEW, DETAIL, CART_CHANGED, CHECKOUT, AFTER_PURCHASE = range(5)
# Actions: what the next event is (or leaving).
LEAVE, CART, BUY_NOW, START_CHECKOUT, DETAIL_VIEW, COMPARE, BROWSE, REMOVE, NEXT_IN_CHECKOUT = range(9)
N_ACTIONS = 9


@dataclass
class SessionValues:
    """Purchase chances of one session's (customer, day), for every cart size k = 0..K."""

    after_cart_change: np.ndarray   # (n, K+2) W(k); W(K+1) = 0 pads the cart term at k = K
    browse: np.ndarray              # (n, K+1) mean value of a browse view
    slot: np.ndarray                # (n, S, K+1) mean value of a view of a product from that slot


def action_probabilities(stage: np.ndarray, cart_size: np.ndarray, acceptance: np.ndarray,
                         propensity: np.ndarray, abandon: np.ndarray, compare_share: np.ndarray,
                         config: FunnelConfig) -> np.ndarray:
    """(n, N_ACTIONS) probabilities of the next action from each state. `acceptance` is g of the current
    product (ignored outside VIEW and DETAIL)."""
    n = len(stage)
    go = 1.0 - abandon
    probs = np.zeros((n, N_ACTIONS))
    probs[:, LEAVE] = abandon

    viewing = (stage == VIEW) | (stage == DETAIL)
    cart = go * config.cart_rate * propensity * acceptance * (cart_size < config.max_cart_items)
    buy = go * config.buy_now_rate * propensity * acceptance
    checkout = go * config.checkout_rate_from_view * propensity * (cart_size > 0)
    explore = go - cart - buy - checkout
    detail_share = np.where(stage == DETAIL, 0.0, config.detail_share)
    rest = np.where(stage == DETAIL, 1.0 - config.detail_share, 1.0)   # renormalise after a detail view
    browse_share = 1.0 - config.detail_share - compare_share
    probs[:, CART] = np.where(viewing, cart, 0.0)
    probs[:, BUY_NOW] = np.where(viewing, buy, 0.0)
    probs[:, START_CHECKOUT] = np.where(viewing, checkout, 0.0)
    probs[:, DETAIL_VIEW] = np.where(viewing, explore * detail_share, 0.0)
    probs[:, COMPARE] = np.where(viewing, explore * compare_share / rest, 0.0)
    probs[:, BROWSE] = np.where(viewing, explore * browse_share / rest, 0.0)

    changed = stage == CART_CHANGED
    has_items = cart_size > 0
    checkout_after = go * config.checkout_rate_from_cart * propensity * has_items
    remove = go * config.remove_rate_from_cart * (1.0 - propensity) * has_items
    probs[changed, START_CHECKOUT] = checkout_after[changed]
    probs[changed, REMOVE] = remove[changed]
    probs[changed, BROWSE] = (go - checkout_after - remove)[changed]

    in_checkout = stage == CHECKOUT
    probs[in_checkout] = 0.0
    probs[in_checkout, NEXT_IN_CHECKOUT] = 1.0

    after = stage == AFTER_PURCHASE
    probs[after, LEAVE] = 1.0 - config.continue_after_purchase
    probs[after, BROWSE] = config.continue_after_purchase
    return probs


def _view_terms(k: np.ndarray, propensity: np.ndarray, go: np.ndarray,
                config: FunnelConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Coefficients of the view step at cart size k: cart = c1 g, buy = b1 g, checkout chance, and
    explore X = x0 - x1 g."""
    can_cart = (k < config.max_cart_items).astype(np.float64)
    c1 = go * config.cart_rate * propensity * can_cart
    b1 = go * config.buy_now_rate * propensity
    checkout = go * config.checkout_rate_from_view * propensity * (k > 0)
    x0 = go - checkout
    x1 = c1 + b1
    return c1, b1, checkout, x0, x1


def solve_values(moments: np.ndarray, slot_weight: np.ndarray, propensity: np.ndarray, abandon: np.ndarray,
                 compare_share: np.ndarray, config: FunnelConfig) -> SessionValues:
    """Exact values for n sessions. moments: (n, S, 2) E[g], E[g^2] per slot; slot_weight: (n, S)."""
    n, slots = slot_weight.shape
    k_max = config.max_cart_items
    k = np.arange(k_max + 1)[None, None, :]                         # (1, 1, K+1)
    s = propensity[:, None, None]
    go = (1.0 - abandon)[:, None, None]
    d = config.detail_share
    c = compare_share[:, None, None]
    b = 1.0 - d - c
    m1, m2 = moments[..., 0:1], moments[..., 1:2]                  # (n, S, 1)

    c1, b1, checkout, x0, x1 = _view_terms(k, s, go, config)
    mean_x = x0 - x1 * m1
    mean_x2 = x0 ** 2 - 2 * x0 * x1 * m1 + x1 ** 2 * m2
    mean_gx = x0 * m1 - x1 * m2
    # Mean over q(. | slot) of the view value  a(g) (1 + d X) + M_slot (c X + d c' X^2) + M_browse (b X + d b' X^2),
    # with a(g) = c1 g W(k+1) + b1 g + checkout:
    per_cart_next = c1 * (m1 + d * mean_gx)                         # times W(k+1)
    constant = b1 * m1 + checkout + d * (b1 * mean_gx + checkout * mean_x)
    self_loop = c * mean_x + d * (c / (1 - d)) * mean_x2            # times M_slot(k)
    to_browse = b * mean_x + d * (b / (1 - d)) * mean_x2            # times M_browse(k)
    keep = 1.0 - self_loop                                          # M_slot = (... ) / keep

    w = slot_weight[:, :, None]
    cart_coef = (w * per_cart_next / keep).sum(axis=1)              # (n, K+1)
    const_coef = (w * constant / keep).sum(axis=1)
    browse_coef = (w * to_browse / keep).sum(axis=1)
    # M_browse(k) = P_k W(k+1) + Q_k
    p_k = cart_coef / (1.0 - browse_coef)
    q_k = const_coef / (1.0 - browse_coef)

    go1 = 1.0 - abandon[:, None]
    s1 = propensity[:, None]
    checkout_after = go1 * config.checkout_rate_from_cart * s1
    remove = go1 * config.remove_rate_from_cart * (1.0 - s1)
    browse_after = go1 - checkout_after - remove
    # Tridiagonal system in W(0..K):  row 0: W0 = go (P0 W1 + Q0);
    # row k: W_k = checkout + remove W_{k-1} + browse (P_k W_{k+1} + Q_k).
    size = k_max + 1
    system = np.zeros((n, size, size))
    rhs = np.zeros((n, size))
    idx = np.arange(size)
    system[:, idx, idx] = 1.0
    system[:, 0, 1] = -go1[:, 0] * p_k[:, 0]
    rhs[:, 0] = go1[:, 0] * q_k[:, 0]
    for row in range(1, size):
        system[:, row, row - 1] = -remove[:, 0]
        if row < k_max:
            system[:, row, row + 1] = -browse_after[:, 0] * p_k[:, row]
        rhs[:, row] = checkout_after[:, 0] + browse_after[:, 0] * q_k[:, row]
    w_values = np.linalg.solve(system, rhs[..., None])[..., 0]
    after_cart_change = np.concatenate([w_values, np.zeros((n, 1))], axis=1)
    browse = p_k * after_cart_change[:, 1:] + q_k
    slot = (per_cart_next * after_cart_change[:, None, 1:] + constant + to_browse * browse[:, None, :]) / keep
    return SessionValues(after_cart_change=after_cart_change, browse=browse, slot=slot)


def purchase_chance(values: SessionValues, row: np.ndarray, stage: np.ndarray, cart_size: np.ndarray,
                    acceptance: np.ndarray, slot: np.ndarray, propensity: np.ndarray, abandon: np.ndarray,
                    compare_share: np.ndarray, config: FunnelConfig) -> np.ndarray:
    """Chance that a purchase event still follows in the session, from each state. `row` picks each
    state's session in `values`; `slot` is the current product's slot (VIEW and DETAIL only)."""
    k = cart_size
    w_next = values.after_cart_change[row, np.minimum(k + 1, config.max_cart_items + 1)]
    browse = values.browse[row, k]
    same_slot = values.slot[row, np.maximum(slot, 0), k]
    go = 1.0 - abandon
    c1, b1, checkout, x0, x1 = _view_terms(k, propensity, go, config)
    g = acceptance
    act = c1 * g * w_next + b1 * g + checkout
    explore = x0 - x1 * g
    d = config.detail_share
    c = compare_share
    b = 1.0 - d - c
    detail_value = act + explore * (c * same_slot + b * browse) / (1.0 - d)
    view_value = act + explore * (d * detail_value + c * same_slot + b * browse)

    result = np.select(
        [stage == VIEW, stage == DETAIL, stage == CART_CHANGED, stage == CHECKOUT],
        [view_value, detail_value, values.after_cart_change[row, k], np.ones_like(g)],
        default=config.continue_after_purchase * browse,
    )
    return result
