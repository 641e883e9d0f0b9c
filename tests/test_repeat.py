"""The repeat/explore mixture (model.repeat, models/repeat.py): a probability over the whole catalogue
whose repeat half ranks the shopper's recent products by how often and how recently they were seen."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from models.encoding import FEATURES
from models.losses import full_softmax_loss, sampled_softmax_loss
from models.network import ModelConfig, SessionSignalsModel

P = 30


def _model(**kw) -> SessionSignalsModel:
    torch.manual_seed(0)
    return SessionSignalsModel(ModelConfig(n_products=P, n_categories=5, n_brands=5, n_event_types=6,
                                           n_price_buckets=10, n_gap_buckets=22, d_model=16, history=4, **kw))


def _set_gate(model: SessionSignalsModel, bias: float) -> None:
    """Gate fixed at sigmoid(bias) whatever the state; the pointer uniform over valid positions."""
    with torch.no_grad():
        model.repeat.gate.weight.zero_()
        model.repeat.gate.bias.fill_(bias)
        model.repeat.query.weight.zero_()
        model.repeat.query.bias.zero_()
        model.repeat.step_bias.zero_()


HISTORY = torch.tensor([[5, 7, 5, 0],     # product 5 twice, 7 once, then padding
                        [9, 1, 0, 0],     # UNK is nothing to repeat
                        [1, 0, 0, 0]])    # nothing to repeat at all


def test_scores_are_log_probabilities_over_the_catalogue() -> None:
    model = _model(repeat=True)
    h = torch.randn(3, 16)
    with torch.no_grad():
        scores = model.product_logits(h, HISTORY)  # (3, P)
    assert (scores[:, :2] == float("-inf")).all()  # PAD and UNK never recommended
    torch.testing.assert_close(torch.logsumexp(scores, dim=1), torch.zeros(3), atol=1e-5, rtol=0)


def test_the_repeat_half_counts_like_s_pop_and_the_explore_half_is_the_plain_softmax() -> None:
    model = _model(repeat=True)
    plain = _model(repeat=False)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("repeat.")})
    h = torch.randn(3, 16)
    with torch.no_grad():
        _set_gate(model, 30.0)  # p_repeat ~ 1
        repeat = model.product_logits(h, HISTORY).exp()
        _set_gate(model, -30.0)  # p_repeat ~ 0
        explore = model.product_logits(h, HISTORY)
        reference = torch.log_softmax(plain.product_logits(h, HISTORY), dim=1)
    # seen twice of three valid positions: 2/3; once: 1/3; nothing else
    assert abs(repeat[0, 5] - 2 / 3) < 1e-4 and abs(repeat[0, 7] - 1 / 3) < 1e-4
    assert repeat[0, [i for i in range(2, P) if i not in (5, 7)]].sum() < 1e-4
    assert abs(repeat[1, 9] - 1.0) < 1e-4  # UNK shares nothing
    # a row with nothing to repeat keeps the explore distribution, whatever the gate says
    torch.testing.assert_close(repeat[2].log()[2:], reference[2, 2:], atol=1e-4, rtol=0)
    torch.testing.assert_close(explore[:, 2:], reference[:, 2:], atol=1e-4, rtol=0)


def test_gradients_stay_finite_with_padding_and_empty_histories() -> None:
    model = _model(repeat=True)
    h = torch.randn(3, 16, requires_grad=True)
    loss = full_softmax_loss(model.product_logits(h, HISTORY), torch.tensor([5, 9, 12]))
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None] + [h.grad]
    assert torch.isfinite(loss) and all(torch.isfinite(g).all() for g in grads)
    assert model.repeat.gate.weight.grad.abs().sum() > 0 and model.repeat.step_bias.grad.abs().sum() > 0


def test_the_gate_learns_when_shoppers_come_back() -> None:
    """Half the rows repeat one of their last 4 products, half go somewhere new, and the state says which
    (its first coordinate): the gate learns to open on the first kind and close on the second."""
    g = torch.Generator().manual_seed(1)

    def batch(n: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        hist = torch.randint(2, P, (n, 4), generator=g)  # (n, K)
        comes_back = torch.rand(n, generator=g) < 0.5
        again = hist.gather(1, torch.randint(0, 4, (n, 1), generator=g)).squeeze(1)
        new = torch.randint(2, P, (n,), generator=g)
        h = torch.randn(n, 16, generator=g)
        h[:, 0] = torch.where(comes_back, 3.0, -3.0)
        return h, hist, torch.where(comes_back, again, new), comes_back

    model = _model(repeat=True)
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(100):
        h, hist, target, _ = batch()
        opt.zero_grad()
        full_softmax_loss(model.product_logits(h, hist), target).backward()
        opt.step()
    h, _, _, comes_back = batch(512)
    with torch.no_grad():
        p_repeat = torch.sigmoid(model.repeat.gate(h).squeeze(1))
    assert p_repeat[comes_back].mean() > 0.8 and p_repeat[~comes_back].mean() < 0.2


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_training_step_with_the_mixture_reads_nothing_back_from_the_device(loss: str) -> None:
    from training.config import TrainConfig
    from training.module import SignalsModule

    model_cfg = _model(repeat=True).cfg.to_dict()
    module = SignalsModule(model_cfg, vars(TrainConfig(next_loss=loss, n_negatives=8))).to("meta")
    B, L = 2, 6
    batch = {k: torch.randint(2, 5, (B, L), device="meta") for k in
             (*FEATURES, "intent", "next_product", "next_category", "next_brand")}
    batch |= {"intent_index": torch.arange(4, device="meta"), "next_index": torch.arange(5, device="meta"),
              "churn_pos": torch.zeros(0, dtype=torch.long, device="meta")}
    out = module.train_loss(batch)
    out["loss"].backward()
    assert module.model.repeat.gate.weight.grad is not None


def test_the_sampled_path_equals_the_full_mixture_when_it_samples_the_whole_catalogue() -> None:
    """Every product drawn once under a uniform Q: the sampled explore estimate is exact, and the
    mixture's log-probability of each target is what the full path gives it."""
    model = _model(repeat=True)
    h = torch.randn(3, 16)
    target = torch.tensor([5, 9, 12])  # a repeat seen twice, a repeat seen once, a new product
    with torch.no_grad():
        full = model.product_logits(h, HISTORY).gather(1, target.unsqueeze(1)).squeeze(1)
        q = model.product_query_vectors(h)
        catalogue = torch.arange(2, P)
        log_q = torch.full((P,), -torch.log(torch.tensor(float(len(catalogue)))))
        exact = model.score_products(q, torch.cat([target.unsqueeze(1), HISTORY], 1), HISTORY)
        nll = sampled_softmax_loss(exact[:, 0], model.score_shared(q, catalogue), catalogue, target, log_q,
                                   exact[:, 1:], HISTORY, reduction="none")
        sampled = model.repeat_log_prob(h, HISTORY, -nll, target)
    torch.testing.assert_close(sampled, full, atol=1e-5, rtol=0)


def test_parameter_count_with_the_mixture() -> None:
    from training.memory_check import count_parameters

    model = _model(repeat=True, side_features=True)
    assert count_parameters(model.cfg) == sum(p.numel() for p in model.parameters())


def test_bundle_round_trip_and_an_older_bundle_loads_with_the_mixture_off(tmp_path) -> None:
    from models.bundle import CONFIG, load_bundle, save_bundle
    from models.encoding import EventEncoder
    from models.predictor import SignalPredictor
    from tests.factories import random_events

    events = random_events(n_users=5, days=5).sort_values(["user_id", "ts"]).reset_index(drop=True)
    encoder = EventEncoder.fit(events)
    meta = {"intent_base_rate": 0.1, "churn_base_rate": 0.3,
            "popularity_log_prob": [-1e9, -1e9] + [-3.0] * (len(encoder.products) - 2),
            "category_prior": [0.0] * len(encoder.categories), "brand_prior": [0.0] * len(encoder.brands)}
    torch.manual_seed(0)
    model = SessionSignalsModel(ModelConfig(**encoder.sizes(), d_model=16, max_len=12, repeat=True)).eval()
    with torch.no_grad():
        model.repeat.step_bias.copy_(torch.linspace(1.0, -1.0, model.cfg.history))  # non-zero: the round trip covers it
    user = events[events["user_id"] == events["user_id"].iloc[0]]
    now = [user["ts"].max() + pd.Timedelta(days=1)]
    path = save_bundle(tmp_path / "new", model, encoder, meta)
    a = SignalPredictor(model, encoder, meta).score([user], now)
    b = SignalPredictor.from_bundle(path).score([user], now)
    torch.testing.assert_close(torch.from_numpy(a.products), torch.from_numpy(b.products), atol=0, rtol=0)
    # the served products row is a distribution over the catalogue
    assert abs(torch.logsumexp(torch.from_numpy(a.products[0]), 0).item()) < 1e-4

    old = SessionSignalsModel(ModelConfig(**encoder.sizes(), d_model=16, max_len=12, repeat=False))
    path = save_bundle(tmp_path / "old", old, encoder, meta)
    saved = json.loads((path / CONFIG).read_text())
    saved.pop("repeat")  # as a version before the mixture wrote it
    (path / CONFIG).write_text(json.dumps(saved))
    loaded, _, _ = load_bundle(path)  # strict: no repeat.* weights expected
    assert loaded.cfg.repeat is False and loaded.repeat is None

