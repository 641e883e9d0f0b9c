"""The champion rule on metric dictionaries (the registry part runs in the end-to-end training test)."""
from training.tracking import compare


def test_better_on_average_without_a_real_loss_is_promoted() -> None:
    promoted, reason = compare({"intent_pr_auc": 0.5, "next_mrr_at_20": 0.2},
                               {"intent_pr_auc": 0.4, "next_mrr_at_20": 0.2}, "3")
    assert promoted and "v3" in reason


def test_a_drop_of_more_than_one_percent_on_any_primary_metric_blocks_promotion() -> None:
    promoted, _ = compare({"intent_pr_auc": 0.9, "next_mrr_at_20": 0.18},
                          {"intent_pr_auc": 0.4, "next_mrr_at_20": 0.2}, "3")
    assert not promoted


def test_worse_is_not_promoted_and_no_shared_metric_is_not_promoted() -> None:
    assert not compare({"intent_pr_auc": 0.3}, {"intent_pr_auc": 0.4}, "1")[0]
    assert not compare({"intent_pr_auc": 0.3}, {"churn_pr_auc": 0.4}, "1")[0]
