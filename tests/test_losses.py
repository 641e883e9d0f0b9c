"""The sampled softmax is the full softmax when it samples the whole catalogue once, and cheaper otherwise."""
import torch

from models.losses import full_softmax_loss, sample_negatives, sampled_softmax_loss


def test_sampled_softmax_over_the_whole_catalogue_equals_the_full_softmax() -> None:
    torch.manual_seed(0)
    P, D, N = 30, 8, 12
    query, table, bias = torch.randn(N, D), torch.randn(P, D), torch.randn(P)
    target = torch.randint(0, P, (N,))
    log_q = torch.full((P,), -torch.log(torch.tensor(float(P))))  # uniform: the correction cancels
    scores = query @ table.T + bias  # (N, P)
    sampled = sampled_softmax_loss(scores.gather(1, target[:, None]).squeeze(1), scores, target, torch.arange(P), log_q)
    full = full_softmax_loss(scores, target)
    torch.testing.assert_close(sampled, full)


def test_negatives_follow_the_proposal() -> None:
    log_q = torch.log(torch.tensor([0.0, 0.0, 0.7, 0.2, 0.1]).clamp_min(1e-30))
    draws = sample_negatives(log_q, 20_000, torch.Generator().manual_seed(0))
    share = torch.bincount(draws, minlength=5).float() / len(draws)
    assert share[:2].sum() == 0
    torch.testing.assert_close(share[2:], torch.tensor([0.7, 0.2, 0.1]), atol=0.02, rtol=0)
