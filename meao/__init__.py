"""meao: ETSI MEC application orchestrator (MEAO) and MEC platform manager (MEPM-V)."""

from pathlib import Path

# our own OpenAPI files (Mm1, granting, ops, Mp1, Mm5): what the apps serve and what checks read
OPENAPI_DIR = Path(__file__).resolve().parents[1] / "openapi"
