"""The socket protocol's shapes: every method's parameters and result, every pushed event,
and the terminal frame types. Imports nothing of workbench, so the daemon, the clients, the
UI and the test fakes all name one definition (docs/architecture.md, "Protocol").

- `method.py`: `Method[P, R]`, one socket method's name and typed shapes;
- `validate.py`: checks a request's parameters against its `P` (the daemon's boundary);
- `session.py`, `terminal.py`, `agent.py`, `review.py`: the methods by concern;
- `events.py`: what the daemon pushes; `catalog.py`: every method, by name.
"""
