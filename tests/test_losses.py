"""The sampled softmax is the full softmax when it samples the whole catalogue once, and cheaper otherwise."""
import torch

from models.losses import drawn_among, first_occurrence, full_softmax_loss, sample_negatives, sampled_softmax_loss
from models.network import recent_products
from tests.test_model import make_model, window


def test_sampled_softmax_over_the_whole_catalogue_equals_the_full_softmax() -> None:
    """Every product drawn once under a uniform Q (S q = 1): no correction, nothing double counted,
    the recency bonus of recent products included exactly as in the full softmax."""
    torch.manual_seed(0)
    model, encoder, events = make_model("gru")
    x = window(encoder, events, 20)
    P = model.cfg.n_products
    with torch.no_grad():
        model.history_weight.copy_(torch.linspace(2.0, 0.2, model.cfg.history))
        h = model.encode(x)[0, :-1]  # (L-1, D): positions with a next event in the window
        history = recent_products(x["product"], model.cfg.history)[0, :-1]  # (L-1, K), repeats and PAD included
        target = x["product"][0, 1:]  # (L-1,)
        full = full_softmax_loss(model.product_logits(h, history), target)
        q = model.product_query_vectors(h)
        catalogue = torch.arange(2, P)  # PAD and UNK are never candidates
        log_q = torch.full((P,), -torch.log(torch.tensor(float(len(catalogue)))))
        exact = model.score_products(q, torch.cat([target.unsqueeze(1), history], 1), history)
        sampled = sampled_softmax_loss(exact[:, 0], model.score_shared(q, catalogue), catalogue, target, log_q,
                                       exact[:, 1:], history)
    assert (history[:, 1:] == history[:, :1]).any()  # the window repeats products: duplicates are exercised
    torch.testing.assert_close(sampled, full)


def test_drawn_among_marks_every_copy_of_a_drawn_product() -> None:
    negatives = torch.tensor([5, 3, 5, 9, 3, 5])
    ids = torch.tensor([[5, 0], [3, 7], [8, 8]])
    expected = torch.stack([negatives == 5, negatives == 3, torch.zeros(6, dtype=torch.bool)])
    assert torch.equal(drawn_among(ids, negatives, 10), expected)


def test_first_occurrence_keeps_one_copy_per_row() -> None:
    ids = torch.tensor([[4, 4, 2, 4], [1, 2, 3, 2]])
    assert first_occurrence(ids).tolist() == [[True, False, True, False], [True, True, True, False]]


def test_negatives_follow_the_proposal() -> None:
    log_q = torch.log(torch.tensor([0.0, 0.0, 0.7, 0.2, 0.1]).clamp_min(1e-30))
    draws = sample_negatives(log_q, 20_000, torch.Generator().manual_seed(0))
    share = torch.bincount(draws, minlength=5).float() / len(draws)
    assert share[:2].sum() == 0
    torch.testing.assert_close(share[2:], torch.tensor([0.7, 0.2, 0.1]), atol=0.02, rtol=0)
