"""Next-product baselines ranked against the whole catalogue: popularity and V-SKNN.

Both return, for each query row, the rank of the product of that row's next event (`labels.next_index`)
among all encoder product ids, computed by `models.ranking.pessimistic_rank` so ties count against the
baseline exactly as they count against the model. PAD and UNK score -inf and are never ranked above a
product.

Query rows are the caller's: the same prediction points as the model's evaluation, with a next event in
the same session whose product is known to the encoder (not UNK). Rows whose next product is UNK cannot
be ranked against the catalogue; the caller drops them (for the model and every baseline alike), and
both functions assert it.

Both baselines learn from the training window only (events / sessions before `dates.val_start`), so
they are meant for VAL and TEST query rows.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

from models.encoding import EventEncoder
from models.ranking import pessimistic_rank
from models.vocab import N_RESERVED
from training.baselines._common import moment_us, ts_us
from training.labels import TEST, Labels

DENSE_BUDGET = 10_000_000  # elements of one dense (queries x catalogue) score block
PAIR_BUDGET = 20_000_000  # (query item, candidate session) pairs of one V-SKNN chunk


def next_query_rows(labels: Labels, encoder: EventEncoder, split: int = TEST) -> np.ndarray:
    """Rows with a next-product label in `split` whose next product the encoder knows (sorted)."""
    nxt = labels.next_index
    rows = np.flatnonzero((labels.next_split == split) & (nxt >= 0))
    target = encoder.products.encode(labels.events["product_id"].to_numpy()[nxt[rows]])
    return rows[target >= N_RESERVED]


def _targets(labels: Labels, encoder: EventEncoder, query_rows: np.ndarray) -> np.ndarray:
    nxt = labels.next_index[query_rows]
    assert np.all(nxt >= 0), "query rows must have a next event in the same session (labels.next_index >= 0)"
    target = encoder.products.encode(labels.events["product_id"].to_numpy()[nxt])
    assert np.all(target >= N_RESERVED), (
        "query rows whose next product is PAD/UNK (unseen in training) must be dropped by the caller, "
        "for the model and every baseline alike (see next_query_rows)"
    )
    return target


def _train_mask(labels: Labels) -> np.ndarray:
    return ts_us(labels.events["ts"]) < moment_us(labels.dates.val_start)


def _rank_blocks(scores_of, targets: np.ndarray, n_products: int) -> np.ndarray:
    """Ranks of `targets` in dense blocks; `scores_of(a, b)` gives a (b - a, P) float64 tensor, PAD/UNK -inf."""
    ranks = np.empty(len(targets), dtype=np.int64)
    step = max(1, DENSE_BUDGET // max(n_products, 1))
    for a in range(0, len(targets), step):
        b = min(a + step, len(targets))
        ranks[a:b] = pessimistic_rank(scores_of(a, b), torch.as_tensor(targets[a:b])).numpy()
    return ranks


def _dense_scores(scores: sp.csr_matrix) -> torch.Tensor:
    dense = torch.from_numpy(scores.toarray().astype(np.float64, copy=False))
    dense[:, :N_RESERVED] = -torch.inf
    return dense


def popularity_scores(labels: Labels, encoder: EventEncoder) -> np.ndarray:
    """(P,) number of training-window events (ts < val_start) of each product id; PAD and UNK -inf."""
    prod = encoder.products.encode(labels.events["product_id"].to_numpy()[_train_mask(labels)])
    counts = np.bincount(prod, minlength=len(encoder.products)).astype(np.float64)
    counts[:N_RESERVED] = -np.inf
    return counts


def popularity_ranks(labels: Labels, encoder: EventEncoder, query_rows: np.ndarray) -> np.ndarray:
    """(Q,) int64 rank (1 = best) of each query row's next product under training-window popularity."""
    query_rows = np.asarray(query_rows, dtype=np.int64)
    targets = _targets(labels, encoder, query_rows)
    scores = popularity_scores(labels, encoder)
    row = torch.from_numpy(scores).unsqueeze(0)  # PAD and UNK already -inf; expanded, never copied
    return _rank_blocks(lambda a, b: row.expand(b - a, -1), targets, len(scores))


class _SessionIndex:
    """Training-window sessions as a binary (sessions x products) matrix, most recent session first.

    A session belongs to the training window when its last event is before `val_start`; recency is the
    time of that last event (ties: first-seen session first). `by_item` keeps, for each product, only the
    `keep` most recent sessions holding it: enough to find any query's `keep - 1` most recent neighbours
    sharing an item, as argued in `vsknn_ranks`.
    """

    def __init__(self, labels: Labels, prod: np.ndarray, sess: np.ndarray, ts: np.ndarray, n_products: int,
                 keep: int):
        n_sess = int(sess.max()) + 1 if len(sess) else 0
        last = np.full(n_sess, np.iinfo(np.int64).min)
        np.maximum.at(last, sess, ts)
        train = np.flatnonzero(last < moment_us(labels.dates.val_start))
        order = train[np.lexsort((train, -last[train]))]
        self.rank_of = np.full(n_sess, -1, dtype=np.int64)  # session code -> row in `items` (-1: not a neighbour)
        self.rank_of[order] = np.arange(len(order))
        self.n = len(order)
        rank = self.rank_of[sess]
        m = (rank >= 0) & (prod >= N_RESERVED)
        pairs = np.unique(rank[m] * n_products + prod[m])  # distinct (session, item), by session then item
        r, it = pairs // n_products, pairs % n_products
        ones = np.ones(len(pairs))
        self.items = sp.csr_matrix((ones, (r, it)), shape=(self.n, n_products))
        self.size = np.bincount(r, minlength=self.n).astype(np.float64)  # distinct items per session
        by_item = np.lexsort((r, it))
        it_s, r_s = it[by_item], r[by_item]
        group_start = np.r_[0, np.flatnonzero(it_s[1:] != it_s[:-1]) + 1] if len(it_s) else np.zeros(0, np.int64)
        pos = np.arange(len(it_s)) - np.repeat(group_start, np.diff(np.r_[group_start, len(it_s)]))
        k = pos < keep
        self.by_item = sp.csr_matrix((ones[:k.sum()], (it_s[k], r_s[k])), shape=(n_products, self.n))


def _within_group_position(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... inside each run of equal consecutive values of `groups`."""
    if len(groups) == 0:
        return np.zeros(0, dtype=np.int64)
    start = np.r_[0, np.flatnonzero(groups[1:] != groups[:-1]) + 1]
    return np.arange(len(groups)) - np.repeat(start, np.diff(np.r_[start, len(groups)]))


def vsknn_ranks(labels: Labels, encoder: EventEncoder, query_rows: np.ndarray, neighbours: int = 100,
                sample_sessions: int = 2000, chunk_size: int = 1000) -> np.ndarray:
    """(Q,) int64 rank (1 = best) of each query row's next product under V-SKNN.

    V-SKNN (Ludewig & Jannach 2018): the current session up to and including the query row is a vector
    over products, an item at position i of L weighted i / L (the most recent 1; a repeated item keeps its
    latest weight). Candidates are the `sample_sessions` most recent training-window sessions sharing an
    item with it (the query's own session excluded); similarity is cosine between the weighted vector and
    the candidate's binary item set; the `neighbours` most similar candidates (ties: the more recent) vote
    for their items with their similarity. Products no neighbour holds score 0 and tie among themselves.

    Exactness of the per-item truncation: let s be one of the K most recent non-own sessions sharing an
    item with the query, and j an item they share. Every session holding j that is more recent than s
    shares an item with the query, so at most K - 1 non-own sessions and the own one are more recent: s is
    among the K + 1 most recent sessions holding j. Keeping the K + 1 most recent sessions per item thus
    finds every candidate, with its exact dot product.

    Queries run in chunks of at most `chunk_size` rows (fewer when their sessions are long), so memory
    stays bounded for any number of queries.
    """
    query_rows = np.asarray(query_rows, dtype=np.int64)
    targets = _targets(labels, encoder, query_rows)
    knn = _VSKNN(labels, encoder, neighbours, sample_sessions)
    ranks = np.empty(len(query_rows), dtype=np.int64)
    for a, b, scores in knn.chunks(query_rows, chunk_size):
        ranks[a:b] = _rank_blocks(lambda i, j: _dense_scores(scores[i:j]), targets[a:b], knn.n_products)
    return ranks


def vsknn_scores(labels: Labels, encoder: EventEncoder, query_rows: np.ndarray, neighbours: int = 100,
                 sample_sessions: int = 2000, chunk_size: int = 1000) -> sp.csr_matrix:
    """(Q, P) sparse V-SKNN item scores of each query row (0 = no neighbour holds the item); see `vsknn_ranks`.

    For inspection and tests: the ranks never materialise all scores at once.
    """
    query_rows = np.asarray(query_rows, dtype=np.int64)
    knn = _VSKNN(labels, encoder, neighbours, sample_sessions)
    blocks = [scores for _, _, scores in knn.chunks(query_rows, chunk_size)]
    return sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix((0, knn.n_products))


class _VSKNN:
    """The session index plus each event's place in its session, ready to score chunks of query rows."""

    def __init__(self, labels: Labels, encoder: EventEncoder, neighbours: int, sample_sessions: int):
        if neighbours < 1 or sample_sessions < 1:
            raise ValueError("V-SKNN needs neighbours >= 1 and sample_sessions >= 1")
        ev = labels.events
        self.neighbours, self.sample_sessions = neighbours, sample_sessions
        self.n_products = len(encoder.products)
        self.prod = encoder.products.encode(ev["product_id"].to_numpy())
        self.sess = pd.factorize(ev["session_id"])[0].astype(np.int64)
        self.index = _SessionIndex(labels, self.prod, self.sess, ts_us(ev["ts"]), self.n_products,
                                   keep=sample_sessions + 1)
        # Rows of each session in time order (rows are sorted by user then time; a stable sort keeps it).
        sess = self.sess
        self.by_session = np.argsort(sess, kind="stable")
        self.offset = np.r_[0, np.cumsum(np.bincount(sess))][:-1] if len(sess) else np.zeros(0, np.int64)
        self.position = np.empty(len(sess), dtype=np.int64)
        self.position[self.by_session] = np.arange(len(sess)) - self.offset[sess[self.by_session]]

    def chunks(self, query_rows: np.ndarray, chunk_size: int):
        """Yield (a, b, (b - a, P) sparse scores of query_rows[a:b]) over bounded-memory chunks."""
        lengths = self.position[query_rows] + 1
        max_prefix = max(1, PAIR_BUDGET // (self.sample_sessions + 1))
        a = 0
        while a < len(query_rows):
            # Largest chunk within chunk_size queries and max_prefix session events (at least one query).
            cum = np.cumsum(lengths[a:a + chunk_size])
            b = a + max(1, int(np.searchsorted(cum, max_prefix, side="right")))
            yield a, b, _vsknn_scores(self.index, self.prod, self.sess, self.by_session, self.offset,
                                      self.position, query_rows[a:b], self.n_products, self.neighbours,
                                      self.sample_sessions)
            a = b


def _vsknn_scores(index: _SessionIndex, prod: np.ndarray, sess: np.ndarray, by_session: np.ndarray,
                  offset: np.ndarray, position: np.ndarray, rows: np.ndarray, n_products: int,
                  neighbours: int, sample_sessions: int) -> sp.csr_matrix:
    """(len(rows), P) sparse item scores for one chunk of query rows."""
    nq = len(rows)
    if index.n == 0:
        return sp.csr_matrix((nq, n_products))
    # The session prefix of each query, flattened: (query, position, product).
    length = position[rows] + 1
    q = np.repeat(np.arange(nq), length)
    pos = np.arange(len(q)) - np.repeat(np.cumsum(length) - length, length)
    item = prod[by_session[offset[sess[rows]][q] + pos]]
    weight = (pos + 1) / length[q]
    known = item >= N_RESERVED
    q, item, weight = q[known], item[known], weight[known]
    # Keep each (query, item)'s latest occurrence: the largest weight.
    key = q * n_products + item
    _, last = np.unique(key[::-1], return_index=True)
    last = len(key) - 1 - last
    W = sp.csr_matrix((weight[last], (q[last], item[last])), shape=(nq, n_products))
    w_norm = np.sqrt(np.asarray(W.multiply(W).sum(axis=1)).ravel())

    # Exact dot products with every candidate session (columns = recency rank, most recent first).
    C = (W @ index.by_item).tocsr()
    C.sort_indices()
    cq = np.repeat(np.arange(nq), np.diff(C.indptr))
    cs, dot = C.indices.astype(np.int64), C.data
    own = index.rank_of[sess[rows]]
    not_own = cs != own[cq]
    cq, cs, dot = cq[not_own], cs[not_own], dot[not_own]
    recent = _within_group_position(cq) < sample_sessions
    cq, cs, dot = cq[recent], cs[recent], dot[recent]
    sim = dot / (w_norm[cq] * np.sqrt(index.size[cs]))
    # The `neighbours` most similar; equal similarity goes to the more recent session (smaller rank).
    order = np.lexsort((cs, -sim, cq))
    cq, cs, sim = cq[order], cs[order], sim[order]
    top = _within_group_position(cq) < neighbours
    N = sp.csr_matrix((sim[top], (cq[top], cs[top])), shape=(nq, index.n))
    return (N @ index.items).tocsr()
