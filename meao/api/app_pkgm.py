"""Handlers of Mm1 application package management (MEC 010-2 clause 7.3): parse, call, render."""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Response, request

from meao.api import query, views
from meao.api.security import request_tenant
from meao.catalogue import packages
from meao.db.session import session_scope
from meao.notify import subscriptions
from meao.problems import NotAcceptable, RangeNotSatisfiable

SPEC = "mm1-app-pkgm.yaml"
JSON = {"Content-Type": "application/json"}
DEFAULT_EXCLUDED = ("checksum", "softwareImages", "additionalArtifacts")


def _base() -> str:
    return request.host_url.rstrip("/")


def _list(onboarded_only: bool) -> tuple[list[dict[str, Any]], int, dict[str, str]]:
    tree = query.attribute_tree(SPEC, "AppPkgInfo")
    params = {k: request.args.get(k) for k in ("filter", "all_fields", "fields", "exclude_fields",
                                                 "exclude_default")}
    terms = query.parse_filter(params["filter"], tree) if params["filter"] else []
    base = _base()
    items = [views.pkg_info(p, base) for p in packages.list_packages(onboarded_only, request_tenant())]
    items = [i for i in items if query.matches(i, terms)]
    return query.select_fields(items, params, tree, DEFAULT_EXCLUDED), 200, JSON


def list_packages(**_: Any):
    """GET /app_packages."""
    return _list(False)


def list_onboarded_packages(**_: Any):
    """GET /onboarded_app_packages."""
    return _list(True)


def create_package(body: dict[str, Any]):
    """POST /app_packages → 201 AppPkgInfo + Location; onboarding continues as a job."""
    pkg = packages.create_package(body, request_tenant())
    info = views.pkg_info(pkg, _base())
    return info, 201, {**JSON, "Location": info["_links"]["self"]["href"]}


def get_package(appPkgId: str):
    """GET /app_packages/{appPkgId}."""
    return views.pkg_info(packages.get_package(pkg_id=appPkgId, tenant=request_tenant()), _base()), 200, JSON


def get_onboarded_package(appDId: str):
    """GET /onboarded_app_packages/{appDId}."""
    return views.pkg_info(packages.get_package(appd_id=appDId, tenant=request_tenant()), _base()), 200, JSON


def _patch(pkg_id: str | None, appd_id: str | None, body: dict[str, Any]):
    packages.change_operational_state(pkg_id, appd_id, body["operationalState"], request_tenant())
    return {"operationalState": body["operationalState"]}, 200, JSON


def patch_package(appPkgId: str, body: dict[str, Any]):
    """PATCH /app_packages/{appPkgId} (AppPkgInfoModifications)."""
    return _patch(appPkgId, None, body)


def patch_onboarded_package(appDId: str, body: dict[str, Any]):
    """PATCH /onboarded_app_packages/{appDId}."""
    return _patch(None, appDId, body)


def delete_package(appPkgId: str):
    """DELETE /app_packages/{appPkgId} → 204."""
    packages.delete_package(appPkgId, None, request_tenant())
    return None, 204


def delete_onboarded_package(appDId: str):
    """DELETE /onboarded_app_packages/{appDId} → 204."""
    packages.delete_package(None, appDId, request_tenant())
    return None, 204


def _accepts(mime: str) -> bool:
    accept = request.accept_mimetypes
    return not accept.provided or accept[mime] > 0 or (accept.best == "*/*" and accept["*/*"] > 0)


def _appd(pkg_id: str | None, appd_id: str | None):
    pkg = packages.get_package(pkg_id=pkg_id, appd_id=appd_id, tenant=request_tenant())
    packages.require_onboarded(pkg)
    root = packages.content_dir(pkg.id)
    files: list[str] = list(pkg.appd_files or [pkg.appd_entry])
    want_text, want_zip = _accepts("text/plain"), _accepts("application/zip")
    if want_text and (len(files) == 1 or not want_zip):
        if len(files) > 1 and not want_zip:
            raise NotAcceptable(f"the AppD of package {pkg.id} spans {len(files)} files ({', '.join(files)}); "
                                "ask for application/zip to get them all")
        return Response((root / files[0]).read_bytes(), 200, content_type="text/plain; charset=utf-8")
    if not want_zip:
        raise NotAcceptable("the AppD is available as text/plain (single file) or application/zip; "
                            "send an Accept header with one of them")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in files:
            zf.write(root / name, name)
    return Response(buf.getvalue(), 200, content_type="application/zip")


def get_appd(appPkgId: str, **_: Any):
    """GET /app_packages/{appPkgId}/appd."""
    return _appd(appPkgId, None)


def get_onboarded_appd(appDId: str, **_: Any):
    """GET /onboarded_app_packages/{appDId}/appd."""
    return _appd(None, appDId)


def _file_range(path: Path, start: int, end: int) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(start)
        left = end - start + 1
        while left > 0:
            chunk = fh.read(min(left, 1024 * 1024))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk


def _content(pkg_id: str | None, appd_id: str | None):
    pkg = packages.get_package(pkg_id=pkg_id, appd_id=appd_id, tenant=request_tenant())
    packages.require_onboarded(pkg)
    path = packages.archive_path(pkg.id)
    size = path.stat().st_size
    headers = {"Accept-Ranges": "bytes", "Content-Type": "application/zip"}
    spec = request.headers.get("Range")
    if not spec:
        return Response(_file_range(path, 0, size - 1), 200, headers={**headers, "Content-Length": str(size)})
    m = re.fullmatch(r"\s*bytes=(\d*)-(\d*)\s*", spec)
    if not m or (m.group(1) == "" and m.group(2) == ""):
        raise _unsatisfiable(f"Range {spec!r} is not a single 'bytes=start-end' range", size)
    if m.group(1) == "":
        start, end = max(size - int(m.group(2)), 0), size - 1
    else:
        start = int(m.group(1))
        end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
    if start >= size or start > end:
        raise _unsatisfiable(f"Range {spec!r} lies outside the {size}-byte package", size)
    headers.update({"Content-Range": f"bytes {start}-{end}/{size}", "Content-Length": str(end - start + 1)})
    return Response(_file_range(path, start, end), 206, headers=headers)


def _unsatisfiable(detail: str, size: int) -> RangeNotSatisfiable:
    exc = RangeNotSatisfiable(detail)
    exc.headers = {"Content-Range": f"bytes */{size}"}  # type: ignore[attr-defined]
    return exc


def get_package_content(appPkgId: str, **_: Any):
    """GET /app_packages/{appPkgId}/package_content (Range → 206/416)."""
    return _content(appPkgId, None)


def get_onboarded_package_content(appDId: str, **_: Any):
    """GET /onboarded_app_packages/{appDId}/package_content."""
    return _content(None, appDId)


def put_package_content(appPkgId: str, **_: Any):
    """PUT /app_packages/{appPkgId}/package_content → 202; processing continues as a job."""
    packages.upload_content(appPkgId, None, request.stream, request_tenant())
    return None, 202


def put_onboarded_package_content(appDId: str, **_: Any):
    """PUT /onboarded_app_packages/{appDId}/package_content → 202."""
    packages.upload_content(None, appDId, request.stream, request_tenant())
    return None, 202


def list_subscriptions(subscription_type: str | None = None, **_: Any):
    """GET /subscriptions → AppPkgSubscriptionLinkList."""
    with session_scope() as session:
        subs = subscriptions.list_subscriptions(session, "app_pkgm", subscription_type, request_tenant())
        return views.pkg_subscription_link_list(subs, _base()), 200, JSON


def create_subscription(body: dict[str, Any]):
    """POST /subscriptions → 201 AppPkgSubscriptionInfo + Location."""
    with session_scope() as session:
        sub = subscriptions.create_pkg_subscription(session, body["callbackUri"], body["subscriptionType"],
                                                    body.get("appPkgFilter"), body.get("authentication"),
                                                    request_tenant())
        info = views.pkg_subscription_info(sub, _base())
    return info, 201, {**JSON, "Location": info["_links"]["self"]["href"]}


def get_subscription(subscriptionId: str):
    """GET /subscriptions/{subscriptionId}."""
    with session_scope() as session:
        sub = subscriptions.get_subscription(session, "app_pkgm", subscriptionId, request_tenant())
        return views.pkg_subscription_info(sub, _base()), 200, JSON


def delete_subscription(subscriptionId: str):
    """DELETE /subscriptions/{subscriptionId} → 204."""
    with session_scope() as session:
        subscriptions.delete_subscription(session, "app_pkgm", subscriptionId, request_tenant())
    return None, 204
