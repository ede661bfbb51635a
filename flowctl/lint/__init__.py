"""Lint: every diagnostic code (``codes``), the semantic rules over the model
(``rules``), a run over many files with workers and the result cache
(``run``, ``cache``), and the reporters (``reporters``: text, JSON, GitHub,
SARIF)."""
