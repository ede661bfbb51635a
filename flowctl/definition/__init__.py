"""The definition language: hardened YAML loading (``loader``), the JSON Schema
check with positions (``schema``), building the model (``build``), the
condition language (``conditions``), durations (``durations``), and finding
definition files on disk (``files``). Pure: no store, no engine."""
