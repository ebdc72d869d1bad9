"""knockoffnet: FDR-controlled feature selection with neural networks and knockoffs.

Modules are named for the concepts of the method (arXiv 2606.04404):
ingest, knockoffs, path (λ-path training and Z), statistics (One/Multiple Layers
W), filters (knockoff thresholds, q-values), aggregation (VWA, e-values/e-BH),
pruning (Reduce Weight), report.
"""

__version__ = "0.1.0"
