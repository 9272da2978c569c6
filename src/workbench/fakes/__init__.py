"""Test and demo doubles: the scripted OpenAI-compatible model server (`model_server`).

Used by the tests, the benchmarks and `workbench demo` (through `workbench.demo`); never
imported by `workbench.agent`, `workbench.core`, `workbench.daemon` or
`workbench.session_side` (an import-linter contract in pyproject.toml checks it).
"""
