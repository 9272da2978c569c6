"""Programs that run inside a session's sandbox, as the session.

Host code never operates on session-writable state itself (docs/security.md, "The host
boundary"): it runs one of these modules inside the sandbox and parses what comes back.
Modules here import only the standard library, each other and `workbench.agent.patch`
(itself standard library only), because they run under `python -I -S -B` with nothing but
this package on the path (see `launch`).
"""
