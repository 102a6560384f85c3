"""flightsync.server: `flightsync serve`, the HTTP side of pushed events (README, "Webhook
server"). A leaf beside ``cli``: it calls the engine exactly as a command does, and nothing in
the package imports it."""

from __future__ import annotations

from flightsync.server._run import serve

__all__ = ["serve"]
