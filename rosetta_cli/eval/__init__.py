"""Shared evaluation, one definition each: held-out take split, L2 normalisation, ranking metrics.

  split.py        which takes are held out (seeded; rst, contrastive and bench use the same choice)
  metrics.py      L2 normalisation, best-positive position (one tie rule), HR@k, top-k accuracy
  translation.py  held-out cosine and true-exo retrieval of a translator (R@k, median rank)
Pure numpy: no I/O, no torch.
"""
