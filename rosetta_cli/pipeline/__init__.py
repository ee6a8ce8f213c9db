"""The pipeline's one table of stages (table.py), the variants the demo and claims compare
(variants.py) and examples/reproduce.sh generated from both (reproduce.py)."""
