"""`rosetta claims`: the paper's three claims measured over seeds with equal budgets (run.py), verdict rules
(verdict.py), collection of each seed's numbers (collect.py), and claims.json / claims.md / index.html (report.py)."""
