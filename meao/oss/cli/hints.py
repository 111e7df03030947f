"""The advice printed after an error (``hint: …``): what to check or run next."""

from __future__ import annotations

from meao.oss.client import OperationFailed


def hint_for(status: int, group: str) -> str:
    """Generic advice for an HTTP error ``status`` answered to a command of ``meao GROUP``."""
    if status == 404:
        return f"check the identifier; `meao {group} list` shows the existing ones"
    if status == 409:
        return f"the resource is not in a state that allows this; `meao {group} show ID` shows its state"
    if status == 401:
        return ("the MEAO wants a valid access token: set MEAO_CLIENT_ID and MEAO_CLIENT_SECRET, or "
                "MEAO_CLIENT_CREDENTIALS_FILE (`meao auth client create` makes a client)")
    if status == 403:
        return "the client lacks the scope this needs; use a client registered with it"
    if status == 413:
        return "the package exceeds the MEAO's size limit (MEAO_MAX_PACKAGE_BYTES on the server)"
    if status >= 500:
        return "the MEAO failed or is unavailable; retry later, or ask its operators to read the server log"
    return "fix the request as the detail says; `--help` lists the options"


def failure_hint(exc: OperationFailed) -> str:
    """What to do about a followed onboarding or LCM operation that failed."""
    res_id = exc.resource.get("id")
    if "onboardingState" in exc.resource:
        return (f"fix the package, then `meao package upload {res_id} FILE --wait`, or remove it with "
                f"`meao package delete {res_id}`")
    if exc.resource.get("operationState") == "FAILED_TEMP":
        return (f"`meao op retry {res_id} --wait` resumes it; `meao op fail {res_id}` gives up and rolls "
                "back what it created")
    return f"`meao op show {res_id}` shows the operation"


def unreachable_hint(source: str) -> str:
    """What to check when no MEAO answers; ``source`` says where the endpoint came from (or is empty)."""
    return (f"check that `meao serve` runs there and answers{source}; choose another with "
            "--os-endpoint, MEAO_ENDPOINT or ~/.config/meao/client.yaml")
