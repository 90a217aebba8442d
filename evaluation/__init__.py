"""Evaluation of trained models: likelihood (ELBO bound or exact AR perplexity), sample quality under a
judge, MAUVE, and the reports they write. `python -m evaluation {likelihood,quality,mauve} ...`."""
