"""Where the client talks to: an explicit URL or profile, the environment, the config file, or the default.

The precedence (``resolve_endpoint``): an explicit URL > an explicit profile > the ``MEAO_ENDPOINT``
variable > the profile named by ``MEAO_PROFILE`` > ``endpoint`` at the top of
``$XDG_CONFIG_HOME/meao/client.yaml`` (default ``~/.config/meao/client.yaml``) > ``http://127.0.0.1:8080``.
The file::

    endpoint: http://meao.example:8080   # used when no profile is selected
    timeout: 30                          # seconds per HTTP request
    profiles:                            # like the clouds of an OpenStack clouds.yaml
      lab: {endpoint: "http://10.0.0.5:8080", timeout: 60}
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from meao.config import ClientEnvironment
from meao.oss.client.errors import ConfigError

DEFAULT_ENDPOINT = "http://127.0.0.1:8080"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class Endpoint:
    """Where the client talks to, and where that choice came from (for error messages)."""

    url: str
    timeout: float
    source: str


def config_path(env: ClientEnvironment | None = None) -> Path:
    """``$XDG_CONFIG_HOME/meao/client.yaml``, by default ``~/.config/meao/client.yaml``."""
    return (env or ClientEnvironment.from_environ()).config_home / "meao" / "client.yaml"


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping with 'endpoint' and/or 'profiles'")
    return data


def resolve_endpoint(url: str | None = None, profile: str | None = None,
                     timeout: float | None = None) -> Endpoint:
    """Pick the endpoint: explicit ``url`` > explicit ``profile`` > environment > config file > default.

    The config file is read only when the endpoint or the timeout may come from it, so a broken file
    does not stop ``--os-endpoint URL`` or ``MEAO_ENDPOINT`` from working.
    """
    env = ClientEnvironment.from_environ()
    env_url, env_profile = env.endpoint, env.profile
    path = config_path(env)
    name = profile or (None if url or env_url else env_profile)
    config = _read_config(path) if name or not (url or env_url) else {}
    chosen: dict[str, Any] = {}
    if name:
        profiles = config.get("profiles") or {}
        if not isinstance(profiles, dict) or not isinstance(profiles.get(name), dict):
            known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"
            origin = "--os-profile" if profile else "MEAO_PROFILE"
            raise ConfigError(f"profile {name!r} ({origin}) is not defined in {path} (profiles: {known})")
        chosen = profiles[name]
    if url:
        found, source = url, "--os-endpoint"
    elif profile and chosen.get("endpoint"):
        found, source = chosen["endpoint"], f"profile {profile!r} of {path}"
    elif env_url:
        found, source = env_url, "MEAO_ENDPOINT"
    elif chosen.get("endpoint"):
        found, source = chosen["endpoint"], f"profile {name!r} (MEAO_PROFILE) of {path}"
    elif config.get("endpoint"):
        found, source = config["endpoint"], str(path)
    else:
        found, source = DEFAULT_ENDPOINT, "the default (no --os-endpoint, MEAO_ENDPOINT or config file)"
    if timeout is None:
        raw = chosen.get("timeout") or config.get("timeout") or DEFAULT_TIMEOUT
        try:
            timeout = float(raw)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"timeout {raw!r} in {path} is not a number of seconds") from exc
    return Endpoint(url=str(found).rstrip("/"), timeout=timeout, source=source)
