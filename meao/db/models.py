"""SQLAlchemy 2 models. Python names here; the ETSI camelCase spelling lives in ``meao.wire``."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import JSON, Boolean, DateTime, ForeignKey, Index, Integer, String, Text, false, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def new_id() -> str:
    """A new resource identifier (UUID4 string)."""
    return str(uuid.uuid4())


def utcnow() -> datetime:
    """Timezone-aware now (UTC)."""
    return datetime.now(UTC)


# Python None is SQL NULL in every JSON column. SQLAlchemy's default stores it as the JSON text 'null',
# which reads back as None but fails ``IS NULL``: the reaper's filters would never see the row.
JSON_OR_NULL = JSON(none_as_null=True)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON_OR_NULL, list[Any]: JSON_OR_NULL,
                                                     datetime: DateTime(timezone=True)}


class AppPackage(Base):
    """An application package resource (MEC 010-2 clause 6.2.3.3 AppPkgInfo)."""

    __tablename__ = "app_package"
    list_order: ClassVar[tuple[str, ...]] = ("created_at", "id")  # meao.db.keyset; indexed (0012)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    # Requested at creation (CreateAppPkg, clause 6.2.3.2)
    app_pkg_name: Mapped[str] = mapped_column(String(255))
    app_pkg_version: Mapped[str] = mapped_column(String(255))
    requested_provider: Mapped[str | None] = mapped_column(String(255))
    checksum_algorithm: Mapped[str] = mapped_column(String(32))
    checksum_hash: Mapped[str] = mapped_column(String(256))
    app_pkg_path: Mapped[str | None] = mapped_column(Text)
    user_defined_data: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)
    # States (enums exactly as the standard)
    onboarding_state: Mapped[str] = mapped_column(String(16), default="CREATED")
    operational_state: Mapped[str] = mapped_column(String(16), default="DISABLED")
    usage_state: Mapped[str] = mapped_column(String(16), default="NOT_IN_USE")
    # Copied from the AppD when onboarded; appd_id is unique per tenant (uq_app_package_tenant_appd_id).
    appd_id: Mapped[str | None] = mapped_column(String(255))
    app_name: Mapped[str | None] = mapped_column(String(255))
    app_provider: Mapped[str | None] = mapped_column(String(255))
    app_software_version: Mapped[str | None] = mapped_column(String(255))
    appd_version: Mapped[str | None] = mapped_column(String(255))
    mec_info: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    software_images: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    additional_artifacts: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    signing_certificate: Mapped[str | None] = mapped_column(Text)
    onboarding_failure: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)
    appd_entry: Mapped[str | None] = mapped_column(Text)
    appd_files: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    appd_model: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)
    package_size: Mapped[int | None] = mapped_column(Integer)
    # The images it has in PoPs' Glance are rows of PackageVimImage (released when it is deleted)
    # Bumped by every onboarding attempt so a stale job can tell it lost the race.
    onboarding_attempt: Mapped[int] = mapped_column(Integer, default=0)
    tenant: Mapped[str | None] = mapped_column(String(128), index=True)  # MEAO_TENANT_ISOLATION: the owner
    # The onboarding job that holds the attempt: when it claimed it, who it is, when it last proved alive
    # (stamped with the database clock). An upload in progress has a heartbeat but no claim.
    job_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    job_worker: Mapped[str | None] = mapped_column(String(255))
    job_heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


# One appDId per tenant; NULL (no tenant) is a tenant of its own, hence the coalesce.
Index("uq_app_package_tenant_appd_id", func.coalesce(AppPackage.tenant, ""), AppPackage.appd_id, unique=True)
Index("ix_app_package_list_order", AppPackage.created_at, AppPackage.id)


class PackageVimImage(Base):
    """An image of a package in one PoP's Glance: released (untagged, deleted by its last user) with the package.

    One row per image, inserted idempotently, so workers noting images on several clouds at once
    never overwrite each other's notes (no read-modify-write of a shared value).
    """

    __tablename__ = "package_vim_image"

    package_id: Mapped[str] = mapped_column(String(36), ForeignKey("app_package.id", ondelete="CASCADE"),
                                            primary_key=True)
    cloud: Mapped[str] = mapped_column(String(255), primary_key=True)  # the clouds.yaml entry
    image_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # the AppD's software image descriptor the image realises (a Grant's vimAssets); None if noted before 0011
    appd_sw_image_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ImageUpload(Base):
    """The claim on uploading one image (by checksum) to one cloud: one uploader at a time, everywhere.

    ``holder`` is the caller working on it (NULL: nobody); it stamps ``heartbeat_at`` with the
    database's clock, and a claim whose stamp is older than the lease may be taken over.
    ``image_id`` is the active image the last holder ended with.
    """

    __tablename__ = "image_upload"

    cloud: Mapped[str] = mapped_column(String(255), primary_key=True)
    checksum: Mapped[str] = mapped_column(String(160), primary_key=True)  # Checksum.key: "sha-256:<hex>"
    holder: Mapped[str | None] = mapped_column(String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    image_id: Mapped[str | None] = mapped_column(String(64))


class Subscription(Base):
    """A notification subscription (clause 6.2.3.4 AppPkgSubscriptionInfo, later LCM ones too)."""

    __tablename__ = "subscription"
    list_order: ClassVar[tuple[str, ...]] = ("created_at", "id")  # meao.db.keyset; indexed (0012)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    api: Mapped[str] = mapped_column(String(32))  # "app_pkgm" | "app_lcm"
    subscription_type: Mapped[str] = mapped_column(String(64))
    callback_uri: Mapped[str] = mapped_column(Text)
    filters: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    # How to authenticate to the callbackUri (SubscriptionAuthentication); holds secrets, never rendered
    authentication: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)
    tenant: Mapped[str | None] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


Index("ix_subscription_list_order", Subscription.api, Subscription.created_at, Subscription.id)


class OutboxMessage(Base):
    """A notification to deliver, written in the same transaction as the state change it reports."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscription_id: Mapped[str] = mapped_column(String(36), index=True)
    callback_uri: Mapped[str] = mapped_column(Text)
    notification_id: Mapped[str] = mapped_column(String(36))
    notification_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON_OR_NULL)
    status: Mapped[str] = mapped_column(String(16), default="PENDING", index=True)  # PENDING|DELIVERED|FAILED
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # while a deliverer POSTs it: the end of its lease (also its next_attempt_at); NULL when nobody holds it.
    # The claim counts these per subscription, so one subscriber never holds more than its share of POSTs.
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


Index("ix_outbox_due", OutboxMessage.status, OutboxMessage.next_attempt_at)


class NotifyCircuit(Base):
    """The circuit breaker of one subscription's deliveries, shared by every deliverer process.

    A row exists only while the subscription's callbackUri keeps failing (timeouts, refused connections,
    HTTP 5xx/429); a delivery it answers deletes it. From ``failures`` consecutive failures on, nothing of
    the subscription is claimed until ``blocked_until``, then one probe at a time (half-open).
    """

    __tablename__ = "notify_circuit"

    subscription_id: Mapped[str] = mapped_column(String(36), primary_key=True)  # no FK: outlives its subscription
    failures: Mapped[int] = mapped_column(Integer, default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class MecHost(Base):
    """A MEC host: an edge PoP location of the MEC system (MEC 003 clause 7.1.4.1), on an OpenStack cloud."""

    __tablename__ = "mec_host"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    cloud: Mapped[str] = mapped_column(String(255))  # the clouds.yaml entry
    region: Mapped[str | None] = mapped_column(String(255))
    availability_zone: Mapped[str | None] = mapped_column(String(255))
    queue: Mapped[str] = mapped_column(String(255))  # Celery queue of the PoP's MEPM-V workers
    location: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)  # countryCode, latitude, longitude
    served_areas: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    latency_ms: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)  # area → latency toward it
    services: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)  # [{serName, version}]
    features: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)  # [{featureName, version}]
    networks: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)  # logical name → OpenStack network
    # where its MEP serves Mm5 and Mp1; None: the MEP that ``meao serve`` runs in process
    mep_url: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class AppInstance(Base):
    """An application instance resource (MEC 010-2 clause 6.2.2.4 AppInstanceInfo)."""

    __tablename__ = "app_instance"
    list_order: ClassVar[tuple[str, ...]] = ("created_at", "id")  # meao.db.keyset; indexed (0012)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str | None] = mapped_column(String(255))
    description: Mapped[str | None] = mapped_column(Text)
    app_pkg_id: Mapped[str] = mapped_column(String(36), index=True)
    appd_id: Mapped[str] = mapped_column(String(255), index=True)
    app_provider: Mapped[str] = mapped_column(String(255))
    app_name: Mapped[str] = mapped_column(String(255))
    app_soft_version: Mapped[str] = mapped_column(String(255))
    appd_version: Mapped[str] = mapped_column(String(255))
    instantiation_state: Mapped[str] = mapped_column(String(32), default="NOT_INSTANTIATED")
    operational_state: Mapped[str | None] = mapped_column(String(16))  # STARTED | STOPPED when INSTANTIATED
    mec_host_id: Mapped[str | None] = mapped_column(String(64))
    # OpenStack ids of what the lifecycle jobs created: server, ports, flavor, images
    resources: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)
    # The operation holding the instance (not COMPLETED/FAILED yet); a second one gets 409.
    current_op_id: Mapped[str | None] = mapped_column(String(36))
    tenant: Mapped[str | None] = mapped_column(String(128), index=True)  # its package's; op occurrences follow it
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


Index("ix_app_instance_list_order", AppInstance.created_at, AppInstance.id)


class AppLcmOpOcc(Base):
    """An application LCM operation occurrence (MEC 010-2 clause 6.2.2.13 AppLcmOpOcc)."""

    __tablename__ = "app_lcm_op_occ"
    list_order: ClassVar[tuple[str, ...]] = ("start_time", "id")  # meao.db.keyset; indexed (0012)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_instance_id: Mapped[str] = mapped_column(String(36), index=True)
    lcm_operation: Mapped[str] = mapped_column(String(16))  # INSTANTIATE | OPERATE | TERMINATE
    operation_state: Mapped[str] = mapped_column(String(16), default="STARTING", index=True)
    state_entered_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    start_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    operation_params: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)
    is_cancel_pending: Mapped[bool] = mapped_column(default=False)
    cancel_mode: Mapped[str | None] = mapped_column(String(16))
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)
    mec_host_id: Mapped[str | None] = mapped_column(String(64))
    queue: Mapped[str | None] = mapped_column(String(255))
    placement: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)  # the explained host selection
    # Execution bookkeeping: which attempt may run, who runs it, is it alive, what it has done
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    current_step: Mapped[str | None] = mapped_column(String(64))
    steps_done: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    # The timeline of every attempt's steps (meao.lcm.steplog): {name, startedAt, endedAt, worker, attempt}
    step_log: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    created: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)  # OpenStack ids this operation created
    # What the current attempt's job does: RUN the operation's steps, or ROLLBACK them (POST …/fail)
    run_kind: Mapped[str] = mapped_column(String(16), default="RUN", server_default="RUN")
    # GRACEFUL stop/terminate: what the MEP reported (app confirmed, timed out, or no subscription)
    graceful: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)


Index("ix_app_lcm_op_occ_list_order", AppLcmOpOcc.start_time, AppLcmOpOcc.id)


class Job(Base):
    """A job to send to a Celery queue: the transactional outbox of the lifecycle and the catalogue.

    Written in the same transaction as the state change that needs it, so a job is never lost between
    a commit and a broker that is down; a dispatcher sends PENDING rows and sends again those that no
    worker claimed in time. ``subject``/``attempt`` name what the job acts on (an operation occurrence or
    a package, and its fencing attempt); a worker's claim of that attempt marks the job CLAIMED.
    """

    __tablename__ = "job"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    task: Mapped[str] = mapped_column(String(128))
    args: Mapped[list[Any]] = mapped_column(JSON_OR_NULL)
    queue: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(36), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="PENDING")  # PENDING | SENT | CLAIMED | DONE
    sends: Mapped[int] = mapped_column(Integer, default=0)
    send_after: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)


Index("ix_job_due", Job.state, Job.send_after)


class Grant(Base):
    """A grant given to a MEPM for an application LCM operation (MEC 010-2 clause 6.2.4.4)."""

    __tablename__ = "grant"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_instance_id: Mapped[str] = mapped_column(String(36), index=True)
    app_lcm_op_occ_id: Mapped[str] = mapped_column(String(36), index=True)
    operation: Mapped[str] = mapped_column(String(16))
    request: Mapped[dict[str, Any]] = mapped_column(JSON_OR_NULL)
    grant: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)  # the Grant body, once decided
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuthClient(Base):
    """An OAuth 2.0 client of meao's own token endpoint (RFC 6749 clause 2), used when MEAO_AUTH=local."""

    __tablename__ = "auth_client"

    client_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(255))  # scrypt, salted: see meao.auth.clients
    scopes: Mapped[list[Any]] = mapped_column(JSON_OR_NULL)
    tenant: Mapped[str | None] = mapped_column(String(128))
    # with MEAO_TENANT_ISOLATION, a client without a tenant sees across tenants only when it is an operator
    operator: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


# ------------------------------------------------------------------------------------- the MEP (Mp1, Mm5)
class MepApp(Base):
    """An application instance as the MEP of its host knows it: registered over Mm5 by the MEPM-V.

    Holds the app's own OAuth 2.0 client (Mp1 credentials), what its AppD authorises (services it may
    consume and produce, required features and transports), its ports at the VIM, what the MEP realised
    of its rules, its readiness (MEC 011 confirm_ready) and an ongoing graceful stop or terminate.
    """

    __tablename__ = "mep_app"

    app_instance_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    host_id: Mapped[str] = mapped_column(String(64), index=True)
    client_id: Mapped[str] = mapped_column(String(128), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(255))  # scrypt, as meao.auth.clients
    registered: Mapped[bool] = mapped_column(default=False)  # False: credentials issued, not registered yet
    app_name: Mapped[str | None] = mapped_column(String(255))
    app_provider: Mapped[str | None] = mapped_column(String(255))
    appd_id: Mapped[str | None] = mapped_column(String(255))
    services_required: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    services_optional: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    services_produced: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    features_required: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)
    ports: Mapped[list[Any] | None] = mapped_column(JSON_OR_NULL)  # VIM port ids of the app's CPs
    realised: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)  # traffic and DNS, as applied
    ready: Mapped[bool] = mapped_column(default=False)  # confirm_ready received
    # graceful stop/terminate: {operationAction, maxGracefulTimeout, deadline, state}
    termination: Mapped[dict[str, Any] | None] = mapped_column(JSON_OR_NULL)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class MepRule(Base):
    """A traffic or DNS rule of an app instance (MEC 011 TrafficRule / DnsRule); ``version`` is its ETag."""

    __tablename__ = "mep_rule"

    app_instance_id: Mapped[str] = mapped_column(String(36), ForeignKey("mep_app.app_instance_id",
                                                                        ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # "traffic" | "dns"
    rule_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    host_id: Mapped[str] = mapped_column(String(64), index=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON_OR_NULL)  # the rule, ETSI JSON, with its state
    version: Mapped[int] = mapped_column(Integer, default=1)


class MepSubscription(Base):
    """An app's Mp1 subscription: AppTerminationNotificationSubscription or
    SerAvailabilityNotificationSubscription (MEC 011 clauses 7.2.6 and 8.2.8)."""

    __tablename__ = "mep_subscription"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    app_instance_id: Mapped[str] = mapped_column(String(36), ForeignKey("mep_app.app_instance_id",
                                                                        ondelete="CASCADE"), index=True)
    host_id: Mapped[str] = mapped_column(String(64), index=True)
    subscription_type: Mapped[str] = mapped_column(String(64))
    callback_reference: Mapped[str] = mapped_column(Text)
    body: Mapped[dict[str, Any]] = mapped_column(JSON_OR_NULL)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MepService(Base):
    """A service in a MEP's registry (MEC 011 ServiceInfo): produced by an app, or by the platform."""

    __tablename__ = "mep_service"

    ser_instance_id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    host_id: Mapped[str] = mapped_column(String(64), index=True)
    # the producing app instance; None for a platform service of the host's inventory
    app_instance_id: Mapped[str | None] = mapped_column(String(36), ForeignKey(
        "mep_app.app_instance_id", ondelete="CASCADE"), index=True)
    ser_name: Mapped[str] = mapped_column(String(255))
    body: Mapped[dict[str, Any]] = mapped_column(JSON_OR_NULL)  # the ServiceInfo, ETSI JSON
    version: Mapped[int] = mapped_column(Integer, default=1)  # the ETag
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


Index("ix_mep_service_host_name", MepService.host_id, MepService.ser_name)
