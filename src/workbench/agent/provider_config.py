"""A provider as the agent uses it: endpoint, key, model, wire API, retry and streaming
settings and prices, built from a `[providers.NAME]` table and the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from workbench.config import ProviderSettings
from workbench.errors import ConfigError

# Sent when no key is configured: local servers (Ollama, vLLM, llama.cpp) ignore it, and the
# SDK would otherwise refuse to build a client.
PLACEHOLDER_KEY = "not-needed"


@dataclass
class ProviderConfig:
    base_url: str | None
    api_key: str | None
    model: str
    wire_api: Literal["chat", "responses"] = "chat"
    headers: dict[str, str] = field(default_factory=dict)
    max_retries: int = 4
    timeout_s: float = 600
    context_window: int = 128_000
    price_in_per_million: float = 0
    price_out_per_million: float = 0
    retry_base_s: float = 1.0  # first backoff delay; doubles each retry
    retry_max_s: float = 60.0  # cap for backoff and for a server's retry-after
    api_key_env: str = "OPENAI_API_KEY"  # only to say which variable to set in errors
    stream: bool | None = None  # None: stream unless the endpoint refuses
    # Where each setting came from ("--wire-api", "WORKBENCH_WIRE_API", "[providers.x].model
    # in ~/.config/...") so that an error names the setting to change.
    sources: dict[str, str] = field(default_factory=dict)


def make_provider_config(
    settings: ProviderSettings, env: Mapping[str, str], sources: Mapping[str, str] | None = None
) -> ProviderConfig:
    """A config for `settings`, the key read from `env[settings.api_key_env]` (never stored)."""
    if not settings.model:
        raise ConfigError(
            'provider has no model; set `model = "..."` in its [providers.NAME] table '
            "(or OPENAI_MODEL for the default provider, or --model)"
        )
    return ProviderConfig(
        base_url=settings.base_url,
        api_key=env.get(settings.api_key_env) or None,
        model=settings.model,
        wire_api=settings.wire_api,
        headers=dict(settings.headers),
        max_retries=settings.max_retries,
        timeout_s=settings.timeout_s,
        context_window=settings.context_window,
        price_in_per_million=settings.price_in_per_million,
        price_out_per_million=settings.price_out_per_million,
        api_key_env=settings.api_key_env,
        stream=settings.stream,
        sources=dict(sources or {}),
    )


def cost_usd(cfg: ProviderConfig, input_tokens: int, output_tokens: int) -> float:
    return (
        input_tokens * cfg.price_in_per_million + output_tokens * cfg.price_out_per_million
    ) / 1_000_000
