"""The quality additions: transition evidence, session side features, and their consistency across scoring paths."""
import numpy as np
import pytest
import torch

from models.cooccurrence import transition_table
from models.encoding import WHOLE_HISTORY
from models.network import ModelConfig, SessionSignalsModel, recent_products
from models.session_features import GAP_SECONDS, N_SHAPE, N_SIDE, session_shape_features, side_features


def _cfg(**kw) -> ModelConfig:
    return ModelConfig(n_products=20, n_categories=5, n_brands=5, n_event_types=6, n_price_buckets=10,
                       n_gap_buckets=22, **{"repeat": False, **kw})  # the plain scores (tests/test_repeat.py: the mixture)


def _batch(B: int = 3, L: int = 7) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = {k: torch.randint(2, 5, (B, L), generator=g)
         for k in ("product", "category", "brand", "event_type", "price_bucket", "gap_bucket")}
    x["product"] = torch.randint(2, 20, (B, L), generator=g)
    x["new_session"] = torch.tensor([[2, 1, 1, 2, 1, 1, 1]] * B)
    for name in WHOLE_HISTORY:  # the shopper's history before the window: none
        x[name] = torch.zeros(B, L, dtype=torch.long)
    for v in x.values():
        v[2, 5:] = 0  # right padding
    return x


def test_transition_table_keeps_top_counts_per_row():
    src = torch.tensor([2, 2, 2, 3, 3, 4])
    dst = torch.tensor([3, 3, 5, 4, 2, 2])
    ids, cnt = transition_table(src, dst, 8, 1)
    assert ids[2, 0] == 3 and cnt[2, 0] == 2  # 2 -> 3 twice beats 2 -> 5 once
    assert cnt[5].sum() == 0 and ids[5, 0] == 0  # no successors: PAD with count 0


def test_side_features_restart_at_session_and_are_causal():
    x = _batch()
    f = side_features(x)
    assert f.shape == (3, 7, N_SIDE)
    assert torch.isclose(f[0, 3, 0], torch.log1p(torch.tensor(1.0)))  # new session: one event so far
    cut = {k: v[:, :4] for k, v in x.items()}
    assert torch.allclose(side_features(cut), f[:, :4])  # later events change nothing earlier
    assert f[2, 5:].abs().sum() == 0  # padding


def test_session_shape_counts_distinct_products_minutes_and_price_range():
    """One session of four events: products 5, 6, 5, 7 in categories 3, 3, 4, 3, prices 4, 9, -, 6."""
    x = {"product": torch.tensor([[5, 6, 5, 7, 0]]), "category": torch.tensor([[3, 3, 4, 3, 0]]),
         "brand": torch.tensor([[2, 2, 2, 2, 0]]), "event_type": torch.tensor([[2, 2, 2, 2, 0]]),
         "price_bucket": torch.tensor([[4, 9, 1, 6, 0]]), "gap_bucket": torch.tensor([[1, 6, 6, 8, 0]]),
         "new_session": torch.tensor([[2, 1, 1, 1, 0]])}
    f = session_shape_features(x)
    assert f.shape == (1, 5, N_SHAPE)
    minutes, products, categories, spread, repeats = f[0].unbind(-1)
    assert torch.allclose(products[:4], torch.log1p(torch.tensor([1.0, 2, 2, 3])))  # 5 again adds nothing
    assert torch.allclose(categories[:4], torch.log1p(torch.tensor([1.0, 1, 2, 2])))
    assert torch.allclose(repeats[:4], torch.log1p(torch.tensor([1.0, 1, 2, 1])))
    assert torch.allclose(spread[:4], torch.tensor([0.0, 5, 5, 5]) / 8)  # the missing price (bucket 1) is skipped
    expected = torch.cumsum(torch.stack([torch.tensor(0.0), GAP_SECONDS[6], GAP_SECONDS[6], GAP_SECONDS[8]]), 0) / 60
    assert torch.allclose(minutes[:4], torch.log1p(expected))  # the session's first gap is not in the session
    assert f[0, 4].abs().sum() == 0  # padding


def test_session_shape_restarts_at_each_session_and_is_causal():
    x = _batch()
    f = session_shape_features(x)
    assert torch.allclose(f[:, 3, :3], torch.tensor([0.0, 0.6931, 0.6931]).expand(3, 3), atol=1e-4)  # new session
    cut = {k: v[:, :4] for k, v in x.items()}
    assert torch.allclose(session_shape_features(cut), f[:, :4])  # later events change nothing earlier
    assert f[2, 5:].abs().sum() == 0


def test_history_features_read_the_whole_history_not_the_window():
    """Two users; counts and times restart at each user and read only earlier events, over every event given."""
    from models.encoding import history_features

    first = np.array([1, 0, 0, 0, 1, 0], dtype=bool)
    starts = np.array([1, 0, 1, 0, 1, 1], dtype=bool)
    bought = np.array([0, 1, 0, 1, 1, 0], dtype=bool)
    hours = np.array([10, 11, 20, 30.5, 40, 45])
    c = history_features(first, starts, bought, hours * 3600)
    assert c["prior_events"].tolist() == [0, 1, 2, 3, 0, 1]
    assert c["prior_purchases"].tolist() == [0, 0, 1, 1, 0, 1]  # the second user's purchase is not the first's
    assert c["prior_sessions"].tolist() == [0, 1, 1, 2, 0, 1]
    assert c["hours_as_customer"].tolist() == [0, 1, 10, 20, 0, 5]
    # since the purchase at hour 11 (not the one at the event itself); the second user's from its own purchase
    assert c["hours_since_purchase"].tolist() == [0, 0, 9, 19, 0, 5]


@pytest.mark.parametrize("option, feature, value", [("history_counts", "prior_purchases", 40),
                                                    ("history_times", "hours_as_customer", 900)])
def test_history_features_change_the_state_only_when_on(option: str, feature: str, value: int):
    """40 earlier purchases, or 900 hours as a customer, move the state of a model that reads them, and only then."""
    x = _batch()
    more = {**x, feature: torch.full_like(x["product"], value)}
    torch.manual_seed(0)
    on = SessionSignalsModel(_cfg(**{option: True})).eval()
    torch.manual_seed(0)
    off = SessionSignalsModel(_cfg(**{option: False})).eval()
    assert not torch.allclose(on.encode(x)[:2], on.encode(more)[:2])
    assert torch.allclose(off.encode(x), off.encode(more))


def test_the_wide_churn_inputs_reach_the_churn_head_and_leave_the_state_alone():
    """model.churn_wide: the history counts and times at the asked position go to the churn head only."""
    x = _batch()
    recent = {**x, "hours_since_purchase": torch.full_like(x["product"], 5)}
    torch.manual_seed(0)
    m = SessionSignalsModel(_cfg(churn_wide=True, history_counts=False)).eval()
    rows, pos = torch.tensor([0, 1]), torch.tensor([3, 6])
    h = m.encode(x)
    assert torch.allclose(h, m.encode(recent))  # the shared state does not read them
    gap = torch.zeros(2)
    with torch.no_grad():
        torch.nn.init.normal_(m.churn_head[0].weight)  # a trained head reads them; a fresh one might barely
        before = m.churn_logit(h[rows, pos], gap, m.churn_inputs(x, rows, pos))
        after = m.churn_logit(h[rows, pos], gap, m.churn_inputs(recent, rows, pos))
    assert not torch.allclose(before, after)
    assert m.churn_inputs(x, rows, pos).shape == (2, 5) and SessionSignalsModel(_cfg()).churn_inputs(x, rows, pos) is None


def test_score_products_matches_product_logits_with_evidence():
    m = SessionSignalsModel(_cfg(side_features=True, cooc_neighbours=4))
    src, dst = torch.randint(2, 20, (200,)), torch.randint(2, 20, (200,))
    m.set_transitions(transition_table(src, dst, 20, 4), transition_table(dst, src, 20, 4))
    x = _batch()
    flat = m.encode(x).flatten(0, 1)  # (B*L, D)
    hist = recent_products(x["product"], m.cfg.history).flatten(0, 1)  # (B*L, K)
    logits = m.product_logits(flat, hist)
    ids = torch.randint(2, 20, (flat.shape[0], 5))
    exact = m.score_products(m.product_query_vectors(flat), ids, hist)
    assert torch.allclose(exact, logits.gather(1, ids), atol=1e-5)


def test_leave_one_out_only_lowers_the_target():
    m = SessionSignalsModel(_cfg(cooc_neighbours=4))
    src, dst = torch.tensor([2, 2, 3]), torch.tensor([3, 3, 4])
    m.set_transitions(transition_table(src, dst, 20, 4), transition_table(dst, src, 20, 4))
    h = torch.randn(1, m.cfg.d_model)
    hist = torch.tensor([[2, 0, 0, 0, 0, 0, 0, 0]])
    full = m.product_logits(h, hist)
    loo = m.product_logits(h, hist, loo_target=torch.tensor([3]))
    diff = (full - loo)[0, 2:]
    assert diff[1] > 0 and diff.abs().sum() == diff[1]  # product 3 (column 1 after PAD/UNK) alone


def test_parameter_count_with_the_new_parts():
    from training.memory_check import count_parameters

    c = _cfg(side_features=True, cooc_neighbours=4, session_shape=True, history_counts=True, history_times=True,
             churn_wide=True)
    assert count_parameters(c) == sum(p.numel() for p in SessionSignalsModel(c).parameters())


def test_a_bundle_saved_before_the_new_parts_loads_with_them_off(tmp_path):
    """Bundles saved before side features and transition evidence existed have neither in their config
    or weights; loading fills the fields in as off (models.network.LEGACY_ARCHITECTURE) and loads strictly."""
    import json

    from models.bundle import CONFIG, load_bundle, save_bundle
    from models.encoding import EventEncoder
    from tests.factories import random_events

    events = random_events(n_users=5, days=5)
    encoder = EventEncoder.fit(events)
    old = SessionSignalsModel(ModelConfig(**encoder.sizes(), side_features=False, cooc_neighbours=0))
    assert not any(n.startswith(("side.", "cooc_")) for n in old.state_dict())
    path = save_bundle(tmp_path / "old", old, encoder, {})
    saved = json.loads((path / CONFIG).read_text())
    for key in ("side_features", "cooc_neighbours"):
        saved.pop(key)  # as an older version wrote it
    (path / CONFIG).write_text(json.dumps(saved))
    model, _, _ = load_bundle(path)
    assert model.cfg.side_features is False and model.cfg.cooc_neighbours == 0
