"""Cross-view classifiers: a linear probe on frozen embeddings, and optional end-to-end fine-tuning.

Both are trained on exo rows and return class scores for ego rows over the *full* class
vocabulary; classes absent from the training rows are scored -inf (never predicted).
"""

from __future__ import annotations

import copy
import warnings

import numpy as np


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int, *,
                 seed: int = 0, c: float = 1.0, max_iter: int = 300, threads: int | None = 1) -> np.ndarray:
    """Multinomial logistic regression (sklearn lbfgs, L2, features standardised on train).

    train_x [n, d], train_y int [n] in [0, n_classes), test_x [m, d] → scores float64 [m, n_classes].
    Deterministic (lbfgs has no randomness; `threads=1` pins BLAS so float sums do not vary).
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    scores = np.full((len(test_x), n_classes), -np.inf)
    classes = np.unique(train_y)
    if len(classes) == 1:  # a constant predictor is the only classifier one class allows
        scores[:, classes[0]] = 0.0
        return scores
    mu, sd = train_x.mean(axis=0), train_x.std(axis=0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    with threadpool_limits(limits=threads), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = LogisticRegression(C=c, max_iter=max_iter, random_state=seed)
        clf.fit((train_x - mu) / sd, train_y)
        d = clf.decision_function((test_x - mu) / sd) if len(test_x) else np.zeros((0, len(classes)))
    if d.ndim == 1:  # binary: one column, the margin of classes_[1]
        d = np.stack([-d / 2, d / 2], axis=1)
    scores[:, clf.classes_] = d
    return scores


def finetune_probe(module, train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, n_classes: int, *,
                   seed: int = 0, epochs: int = 10, lr: float = 1e-4, head_lr: float = 1e-3,
                   batch: int = 256) -> np.ndarray:
    """Fine-tune a copy of the model's torch module plus a new linear head on exo clips.

    module: torch.nn.Module [n, T, D] → [n, d]; train_x [n, T, D], test_x [m, T, D] float32.
    Cross-entropy, Adam, seeded shuffling. Returns scores float64 [m, n_classes] (-inf for
    classes absent from training). The caller's module is left untouched.
    """
    import torch

    torch.manual_seed(seed)
    net = copy.deepcopy(module).float().train()
    classes = np.unique(train_y)
    remap = np.full(n_classes, -1)
    remap[classes] = np.arange(len(classes))
    dev = next(net.parameters(), torch.empty(0)).device  # train where the model lives (CPU or GPU)
    x = torch.from_numpy(np.ascontiguousarray(train_x, dtype=np.float32)).to(dev)
    y = torch.from_numpy(remap[train_y]).to(dev)
    with torch.no_grad():
        d = net(x[:1]).shape[1]
    head = torch.nn.Linear(d, len(classes)).to(dev)
    opt = torch.optim.Adam([{"params": net.parameters(), "lr": lr}, {"params": head.parameters(), "lr": head_lr}])
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(batch):
            idx = idx.to(dev)
            loss = torch.nn.functional.cross_entropy(head(net(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    scores = np.full((len(test_x), n_classes), -np.inf)
    with torch.no_grad():
        xt = torch.from_numpy(np.ascontiguousarray(test_x, dtype=np.float32))
        logits = [head(net(b.to(dev))).cpu() for b in xt.split(batch)]
    scores[:, classes] = torch.cat(logits).double().numpy() if logits else 0.0
    return scores
