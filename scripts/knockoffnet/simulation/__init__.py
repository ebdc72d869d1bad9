"""Simulation study: cohorts with a known truth through the real pipeline, scored with peers.

The generated frames go through the workflow as ordinary cohorts (``workflow/rules/
simulate.smk``); the study then re-derives every filter's selection on a grid of q from the
pipeline's per-run files and scores it, and the peers, against the truth.

Modules: ``generators`` (the designs), ``peers`` (peer statistics on the same knockoffs),
``scoring`` (FDP, power, means, the acceptance check), ``tables`` (Markdown and CSV),
``plots`` (FDR and power against q).
"""
