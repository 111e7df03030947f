"""Runtime configuration, read from ``MEAO_*`` environment variables.

With nothing set, meao runs with zero setup: an SQLite file and package store under ``./var`` and an
in-process Celery worker on the ``memory://`` broker.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meao.outbound import ALLOW, ALLOW_NOTIFY, ALLOW_PACKAGES, parse_allowance

GIB = 1024**3
MIB = 1024**2
MAX_PAGE_SIZE = 1000  # the most items one page of a list may hold (MEAO_PAGE_SIZE is checked against it)


def _number(name: str, default: float, kind: type = int, env: dict[str, str] | None = None) -> Any:
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError as exc:  # an operator typo must say which variable is wrong
        what = "an integer" if kind is int else "a number"
        raise SystemExit(f"meao: {name}={raw!r} is not {what}; fix or unset it") from exc


def _int(name: str, default: int, env: dict[str, str] | None = None) -> int:
    return _number(name, default, int, env)


def _float(name: str, default: float, env: dict[str, str] | None = None) -> float:
    return _number(name, default, float, env)


AUTH_MODES = ("local", "jwt", "none")


@dataclass(frozen=True)
class AuthSettings:
    """Who may call the APIs (``MEAO_AUTH*``); see README "Authentication, authorisation and TLS"."""

    mode: str = "local"  # local: meao's own /oauth2/token | jwt: an external OAuth2 server | none: open
    issuer: str = ""  # jwt: the ``iss`` tokens must carry; local: what meao puts there (default "meao")
    audience: str = ""  # the ``aud`` tokens must carry (local default "meao")
    jwks_url: str = ""  # jwt: where the issuer publishes its signing keys
    token_url: str = ""  # jwt: the issuer's token endpoint, shown in Swagger UI
    signing_key_file: Path | None = None  # local: HMAC key; default <data_dir>/auth-signing.key, made once
    token_ttl_s: int = 3600
    # local: how long a process trusts what it read of a token's client (MEAO_AUTH_CLIENT_CACHE_S); a
    # deleted client's tokens, or a narrowed client's scopes, stop working within this many seconds
    client_cache_s: float = 5.0
    tenant_claim: str = "tenant"
    tenant_isolation: bool = False  # a token's tenant sees only its tenant's resources
    # jwt: a token without the tenant claim sees across tenants only with this scope (else 403)
    operator_scope: str = "meao:operator"
    # jwt: a token naming an unknown key id fetches the JWKS again at most once per this many seconds
    jwks_refetch_s: float = 30.0
    # local: the token endpoint's token buckets, per client id and per source address, before any scrypt
    token_burst: int = 10  # attempts a client id (or an address) may make at once
    token_rate: float = 1.0  # attempts per second the bucket refills with
    open_operations: tuple[str, ...] = ()  # "GET /ops/v1/metrics" or "/ops/v1/metrics": no token needed


@dataclass(frozen=True)
class TlsSettings:
    """HTTPS for ``meao serve`` (``MEAO_TLS_*``); a client CA turns on mutual TLS."""

    certfile: Path | None = None
    keyfile: Path | None = None
    client_ca: Path | None = None
    keyfile_password: str | None = None  # MEAO_TLS_KEYFILE_PASSWORD only, never a command-line option


@dataclass(frozen=True)
class BrokerTlsSettings:
    """TLS to a ``rediss://`` broker (``MEAO_BROKER_CA_FILE``, ``MEAO_BROKER_CERTFILE``/``KEYFILE``).

    The server's certificate is always verified, against ``ca_file`` or else the system's trusted CAs;
    a client certificate is sent only when both of its files are set.
    """

    ca_file: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None


@dataclass(frozen=True)
class JobSettings:
    """How long jobs may stay silent before the reaper acts (``MEAO_*_S``)."""

    job_stale_s: float = 600.0  # an onboarding whose worker vanished is re-run after this
    op_stale_s: float = 30.0  # a lifecycle job whose heartbeat is older goes PROCESSING → FAILED_TEMP
    reap_interval_s: float = 30.0
    heartbeat_s: float = 2.0  # how often a worker stamps the occurrence it runs
    boot_timeout_s: float = 300.0  # how long a server may take to go ACTIVE
    resend_after_s: float = 60.0  # a sent job no worker claimed is sent again after this (then doubling)
    dispatch_interval_s: float = 1.0  # how often each process's dispatcher looks for jobs to send
    fail_wait_s: float = 120.0  # how long POST …/fail waits for its rollback job before answering 409
    # The embedded worker (meao serve without a broker) decides its grants in the MEAO's process, no HTTP
    # hop to itself; true: it POSTs them to the granting API too, as a separate worker always does
    grant_over_http: bool = False
    # Tests only: a directory of fault-injection triggers (meao.faults); unset in production, and inert
    fault_dir: Path | None = None


@dataclass(frozen=True)
class VimSettings:
    """The VIM adapter: which driver, how it polls, how long capacity readings are reused."""

    driver: str = "openstack"  # openstack | fake (in memory, for tests and demos without a cloud)
    poll_s: float = 1.0  # the longest round of a wait's adaptive poll (a tenth of the wait's age, at least poll_min_s)
    poll_min_s: float = 0.05  # the first rounds of a wait's poll
    capacity_cache_s: float = 5.0
    # One uploader per (cloud, image checksum): how long the others wait for it, and how long its claim
    # lives without a heartbeat before another caller takes the upload over (a crashed worker's claim).
    image_wait_s: float = 1800.0
    image_lease_s: float = 60.0


VIM_DRIVERS = ("openstack", "fake")


@dataclass(frozen=True)
class OutboundSettings:
    """The non-public destinations meao may reach for callers (``meao.outbound``): CIDRs and host names.

    Empty by default: package fetches and notifications go to public addresses only.
    """

    allow: tuple[str, ...] = ()  # MEAO_OUTBOUND_ALLOW: package fetches and notifications
    allow_packages: tuple[str, ...] = ()  # MEAO_OUTBOUND_ALLOW_PACKAGES: appPkgPath fetches too
    allow_notify: tuple[str, ...] = ()  # MEAO_OUTBOUND_ALLOW_NOTIFY: callbackUri and tokenEndpoint too


@dataclass(frozen=True)
class MepSettings:
    """The MEC platform (MEP): where it realises DNS rules, how long its Mp1 tokens live."""

    dns_api_url: str | None = None  # PowerDNS HTTP API (MEAO_MEP_DNS_API_URL); None: DNS rules unrealised
    dns_api_key_file: Path | None = None  # MEAO_MEP_DNS_API_KEY_FILE
    dns_ns: str = "ns.mep.invalid."  # the NS/SOA name of the zones the MEP serves (MEAO_MEP_DNS_NS)
    token_ttl_s: int = 3600  # Mp1 access tokens (MEAO_MEP_TOKEN_TTL_S)
    notify_timeout_s: float = 5.0  # one POST of an Mp1 notification to an app


@dataclass(frozen=True)
class ConsoleSettings:
    """The browser console (``/console/``, ``GET /ops/v1/console``; ``MEAO_CONSOLE_*``)."""

    refresh_s: float = 2.0  # the snapshot is computed at most once per this many seconds per process and view
    # jwt: the console signs operators in at the issuer (authorization code + PKCE) as this public client
    oidc_client_id: str = ""
    oidc_authorization_url: str = ""  # else discovered from the issuer's openid-configuration
    oidc_token_url: str = ""
    oidc_scope: str = "openid ops:read app_lcm:read app_pkgm:read"


@dataclass(frozen=True)
class Settings:
    """Everything meao reads from its environment, resolved once."""

    data_dir: Path
    database_url: str
    broker_url: str  # "" means: embedded memory:// broker with an in-process worker
    public_url: str
    pkg_file_root: Path | None  # file:// appPkgPath URIs are allowed only below this directory
    max_package_bytes: int = 4 * GIB
    max_unpacked_bytes: int = 16 * GIB
    max_compression_ratio: int = 200
    max_archive_members: int = 10_000
    max_manifest_bytes: int = 1 * MIB
    fetch_timeout_s: int = 30  # the longest wait for one read from appPkgPath
    fetch_deadline_s: float = 3600.0  # the whole fetch of appPkgPath; a source that trickles is cut here
    notify_max_attempts: int = 8
    notify_timeout_s: float = 5.0
    notify_backoff_base_s: float = 1.0
    notify_backoff_max_s: float = 300.0
    # Delivery isolation (meao.notify.delivery): POST threads per process, how many of them one subscription
    # may hold, and after how many consecutive failures its circuit opens (then it waits, backing off).
    notify_parallel: int = 4
    notify_per_subscription: int = 2
    notify_circuit_failures: int = 5
    catalogue_queue: str = "meao.catalogue"
    trusted_ca_file: Path | None = None  # CA bundle that package signatures must chain to
    require_signed: bool = False  # refuse packages without a valid SOL004 signature
    auth: AuthSettings = field(default_factory=AuthSettings)
    tls: TlsSettings = field(default_factory=TlsSettings)
    broker_tls: BrokerTlsSettings = field(default_factory=BrokerTlsSettings)
    # The hash where a Redis broker keeps the messages this process's workers hold unacknowledged (with
    # "<key>_index" and "<key>_mutex"); a PoP's own (unacked.mecpm.pop1) lets its ACL user touch no other
    # PoP's waiting jobs (MEAO_BROKER_UNACKED_KEY)
    broker_unacked_key: str = "unacked"
    # a worker also runs the dispatcher, the deliverer and the reaper; false at a PoP with narrow rights,
    # whose control plane runs them (MEAO_WORKER_BACKGROUND)
    worker_background: bool = True
    jobs: JobSettings = field(default_factory=JobSettings)
    vim: VimSettings = field(default_factory=VimSettings)
    mep: MepSettings = field(default_factory=MepSettings)
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)
    mec_hosts_file: Path | None = None  # YAML inventory of MEC hosts loaded at start
    host_selection: str = "request"  # request: prefer the fitting hosts of selectedMECHostInfo | meao: ignore them
    worker_metrics_port: int | None = None
    worker_metrics_host: str = "127.0.0.1"
    # check every answer against the OpenAPI files (MEAO_VALIDATE_RESPONSES): the tests do, production need not
    validate_responses: bool = False
    page_size: int = 100  # items per page of every list (MEAO_PAGE_SIZE, 1..MAX_PAGE_SIZE): meao chooses it
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def embedded_broker(self) -> bool:
        """True when no broker is configured and jobs run in-process."""
        return self.broker_url in ("", "memory://")

    @property
    def package_store(self) -> Path:
        """Directory holding one sub-directory per application package."""
        return self.data_dir / "packages"


def load_settings(**overrides: str) -> Settings:
    """Read settings from the environment; ``overrides`` win (used by the CLI options)."""
    env = {**os.environ, **{k: v for k, v in overrides.items() if v is not None}}
    data_dir = Path(env.get("MEAO_DATA_DIR") or "var").resolve()
    db_url = env.get("MEAO_DATABASE_URL") or f"sqlite:///{data_dir / 'meao.db'}"
    file_root = env.get("MEAO_PKG_FILE_ROOT")
    return Settings(
        data_dir=data_dir,
        database_url=db_url,
        broker_url=env.get("MEAO_BROKER_URL", ""),
        public_url=(env.get("MEAO_PUBLIC_URL") or "http://127.0.0.1:8080").rstrip("/"),
        pkg_file_root=Path(file_root).resolve() if file_root else None,
        max_package_bytes=_int("MEAO_MAX_PACKAGE_BYTES", 4 * GIB, env),
        max_unpacked_bytes=_int("MEAO_MAX_UNPACKED_BYTES", 16 * GIB, env),
        max_compression_ratio=_int("MEAO_MAX_COMPRESSION_RATIO", 200, env),
        max_archive_members=_int("MEAO_MAX_ARCHIVE_MEMBERS", 10_000, env),
        fetch_deadline_s=_float("MEAO_FETCH_DEADLINE_S", 3600.0, env),
        notify_max_attempts=_int("MEAO_NOTIFY_MAX_ATTEMPTS", 8, env),
        notify_backoff_base_s=_float("MEAO_NOTIFY_BACKOFF_BASE_S", 1.0, env),
        notify_timeout_s=_float("MEAO_NOTIFY_TIMEOUT_S", 5.0, env),
        notify_parallel=_at_least_one("MEAO_NOTIFY_PARALLEL", 4, env),
        notify_per_subscription=_at_least_one("MEAO_NOTIFY_PER_SUBSCRIPTION", 2, env),
        notify_circuit_failures=_at_least_one("MEAO_NOTIFY_CIRCUIT_FAILURES", 5, env),
        trusted_ca_file=Path(env["MEAO_TRUSTED_CA_FILE"]).resolve() if env.get("MEAO_TRUSTED_CA_FILE") else None,
        require_signed=env.get("MEAO_REQUIRE_SIGNED_PACKAGES", "").lower() in ("1", "true", "yes"),
        auth=_auth_settings(env),
        tls=TlsSettings(certfile=_path(env, "MEAO_TLS_CERTFILE"), keyfile=_path(env, "MEAO_TLS_KEYFILE"),
                        client_ca=_path(env, "MEAO_TLS_CLIENT_CA"),
                        keyfile_password=env.get("MEAO_TLS_KEYFILE_PASSWORD") or None),
        broker_tls=BrokerTlsSettings(ca_file=_path(env, "MEAO_BROKER_CA_FILE"),
                                     certfile=_path(env, "MEAO_BROKER_CERTFILE"),
                                     keyfile=_path(env, "MEAO_BROKER_KEYFILE")),
        broker_unacked_key=env.get("MEAO_BROKER_UNACKED_KEY") or "unacked",
        worker_background=(env.get("MEAO_WORKER_BACKGROUND") or "true").lower() in ("1", "true", "yes"),
        jobs=JobSettings(job_stale_s=_float("MEAO_JOB_STALE_S", 600.0, env),
                         op_stale_s=_float("MEAO_OP_STALE_S", 30.0, env),
                         reap_interval_s=_float("MEAO_REAP_INTERVAL_S", 30.0, env),
                         heartbeat_s=_float("MEAO_HEARTBEAT_S", 2.0, env),
                         boot_timeout_s=_float("MEAO_BOOT_TIMEOUT_S", 300.0, env),
                         resend_after_s=_float("MEAO_JOB_RESEND_AFTER_S", 60.0, env),
                         dispatch_interval_s=_float("MEAO_JOB_DISPATCH_INTERVAL_S", 1.0, env),
                         fail_wait_s=_float("MEAO_FAIL_WAIT_S", 120.0, env),
                         grant_over_http=(env.get("MEAO_GRANT_OVER_HTTP") or "").lower() in ("1", "true", "yes"),
                         fault_dir=_path(env, "MEAO_TEST_FAULT_DIR")),
        vim=_vim_settings(env),
        mep=MepSettings(dns_api_url=(env.get("MEAO_MEP_DNS_API_URL") or "").rstrip("/") or None,
                        dns_api_key_file=_path(env, "MEAO_MEP_DNS_API_KEY_FILE"),
                        dns_ns=env.get("MEAO_MEP_DNS_NS") or "ns.mep.invalid.",
                        token_ttl_s=_int("MEAO_MEP_TOKEN_TTL_S", 3600, env)),
        outbound=_outbound_settings(env),
        console=ConsoleSettings(
            refresh_s=_float("MEAO_CONSOLE_REFRESH_S", 2.0, env),
            oidc_client_id=env.get("MEAO_CONSOLE_OIDC_CLIENT_ID") or "",
            oidc_authorization_url=env.get("MEAO_CONSOLE_OIDC_AUTHORIZATION_URL") or "",
            oidc_token_url=env.get("MEAO_CONSOLE_OIDC_TOKEN_URL") or "",
            oidc_scope=env.get("MEAO_CONSOLE_OIDC_SCOPE") or "openid ops:read app_lcm:read app_pkgm:read"),
        mec_hosts_file=_path(env, "MEAO_MEC_HOSTS_FILE"),
        host_selection=(env.get("MEAO_HOST_SELECTION") or "request").lower(),
        worker_metrics_port=_int("MEAO_WORKER_METRICS_PORT", 0, env) or None,
        worker_metrics_host=env.get("MEAO_WORKER_METRICS_HOST") or "127.0.0.1",
        validate_responses=(env.get("MEAO_VALIDATE_RESPONSES") or "false").lower() in ("1", "true", "yes"),
        page_size=_page_size(env),
    )


def _at_least_one(name: str, default: int, env: dict[str, str]) -> int:
    value = _int(name, default, env)
    if value < 1:
        raise SystemExit(f"meao: {name}={value} must be 1 or more; fix or unset it")
    return value


def _page_size(env: dict[str, str]) -> int:
    size = _int("MEAO_PAGE_SIZE", 100, env)
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise SystemExit(f"meao: MEAO_PAGE_SIZE={size} is outside 1..{MAX_PAGE_SIZE}; fix or unset it")
    return size


def log_environment() -> tuple[str, str]:
    """(level, format) of the logs, from ``MEAO_LOG_LEVEL``/``MEAO_LOG_FORMAT`` alone.

    Every ``meao`` command sets up logging first, client commands included: reading only these two
    keeps a server setting that is wrong from stopping ``meao package list``.
    """
    return os.environ.get("MEAO_LOG_LEVEL") or "INFO", (os.environ.get("MEAO_LOG_FORMAT") or "text").lower()


def serve_public_url(host: str, port: int, https: bool) -> str:
    """``MEAO_PUBLIC_URL``, or the address ``meao serve`` listens on when it is not set."""
    return os.environ.get("MEAO_PUBLIC_URL") or f"{'https' if https else 'http'}://{host}:{port}"


def tosca_types_dir() -> Path:
    """Where the TOSCA type files that AppDs import are (``MEAO_TOSCA_TYPES_DIR``; default descriptors/types)."""
    configured = os.environ.get("MEAO_TOSCA_TYPES_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[1] / "descriptors" / "types"


def _vim_settings(env: dict[str, str]) -> VimSettings:
    driver = (env.get("MEAO_VIM_DRIVER") or "openstack").strip().lower()
    if driver not in VIM_DRIVERS:
        raise SystemExit(f"meao: MEAO_VIM_DRIVER={driver!r} is not one of {', '.join(VIM_DRIVERS)}")
    return VimSettings(driver=driver, poll_s=_float("MEAO_VIM_POLL_S", 1.0, env),
                       poll_min_s=_float("MEAO_VIM_POLL_MIN_S", 0.05, env),
                       capacity_cache_s=_float("MEAO_CAPACITY_CACHE_S", 5.0, env),
                       image_wait_s=_float("MEAO_IMAGE_UPLOAD_WAIT_S", 1800.0, env),
                       image_lease_s=_float("MEAO_IMAGE_UPLOAD_LEASE_S", 60.0, env))


def _outbound_settings(env: dict[str, str]) -> OutboundSettings:
    try:
        return OutboundSettings(*(parse_allowance(env.get(name) or "", name)
                                  for name in (ALLOW, ALLOW_PACKAGES, ALLOW_NOTIFY)))
    except ValueError as exc:  # a typo would otherwise surface as every fetch refused
        raise SystemExit(f"meao: {exc}; fix or unset it") from exc


def _path(env: dict[str, str], name: str) -> Path | None:
    return Path(env[name]).expanduser().resolve() if env.get(name) else None


def _auth_settings(env: dict[str, str]) -> AuthSettings:
    mode = (env.get("MEAO_AUTH") or "local").strip().lower()
    if mode not in AUTH_MODES:
        raise SystemExit(f"meao: MEAO_AUTH={mode!r} is not one of {', '.join(AUTH_MODES)}")
    opened = tuple(item.strip() for item in (env.get("MEAO_AUTH_OPEN_OPERATIONS") or "").split(",")
                   if item.strip())
    return AuthSettings(
        mode=mode, issuer=env.get("MEAO_AUTH_ISSUER", ""), audience=env.get("MEAO_AUTH_AUDIENCE", ""),
        jwks_url=env.get("MEAO_AUTH_JWKS_URL", ""), token_url=env.get("MEAO_AUTH_TOKEN_URL", ""),
        signing_key_file=_path(env, "MEAO_AUTH_SIGNING_KEY_FILE"),
        token_ttl_s=_int("MEAO_AUTH_TOKEN_TTL_S", 3600, env),
        client_cache_s=_float("MEAO_AUTH_CLIENT_CACHE_S", 5.0, env),
        tenant_claim=env.get("MEAO_AUTH_TENANT_CLAIM") or "tenant",
        tenant_isolation=env.get("MEAO_TENANT_ISOLATION", "").lower() in ("1", "true", "yes"),
        operator_scope=env.get("MEAO_AUTH_OPERATOR_SCOPE") or "meao:operator",
        jwks_refetch_s=_float("MEAO_AUTH_JWKS_REFETCH_S", 30.0, env),
        token_burst=_int("MEAO_AUTH_TOKEN_BURST", 10, env),
        token_rate=_float("MEAO_AUTH_TOKEN_RATE", 1.0, env),
        open_operations=opened)


_settings: Settings | None = None


def get_settings() -> Settings:
    """The process-wide settings (loaded on first use)."""
    global _settings
    if _settings is None:
        _settings = load_settings()
    return _settings


def set_settings(settings: Settings) -> None:
    """Replace the process-wide settings (CLI start-up, tests)."""
    global _settings
    _settings = settings


# ------------------------------------------------------------------------ the OSS client's environment
@dataclass(frozen=True)
class ClientEnvironment:
    """What the OSS client and CLI (``meao.oss``) take from the environment, read in this one place.

    The client credentials come from :func:`client_credential_environ`.
    """

    config_home: Path  # $XDG_CONFIG_HOME, else ~/.config: where meao/client.yaml lives
    endpoint: str | None = None  # MEAO_ENDPOINT
    profile: str | None = None  # MEAO_PROFILE: a profile of client.yaml
    debug: bool = False  # MEAO_DEBUG: let an internal CLI error show its traceback

    @classmethod
    def from_environ(cls) -> ClientEnvironment:
        """Read the variables now; an empty one counts as unset."""
        return cls(config_home=Path(os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")),
                   endpoint=os.environ.get("MEAO_ENDPOINT") or None,
                   profile=os.environ.get("MEAO_PROFILE") or None,
                   debug=bool(os.environ.get("MEAO_DEBUG")))


def client_credential_environ() -> dict[str, str]:
    """The variables ``meao.auth.client_credentials`` picks a client's credentials from, as set.

    Apart from :class:`ClientEnvironment` on purpose: a worker asking for a grant token must not need a
    home directory.
    """
    return {name: os.environ[name] for name in CLIENT_CREDENTIAL_VARIABLES if name in os.environ}


CLIENT_CREDENTIAL_VARIABLES = ("MEAO_CLIENT_ID", "MEAO_CLIENT_SECRET", "MEAO_CLIENT_CREDENTIALS_FILE",
                               "MEAO_CLIENT_SCOPE", "MEAO_TOKEN_URL", "MEAO_DATA_DIR")
