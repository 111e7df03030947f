"""The HTTP session the API proxies share: endpoint, access token, and errors out of HTTP answers.

Requests carry an access token got with the client credentials grant from ``MEAO_CLIENT_ID`` /
``MEAO_CLIENT_SECRET``, ``MEAO_CLIENT_CREDENTIALS_FILE`` or ``<MEAO_DATA_DIR>/admin-credentials.json``
(``meao.auth.client_credentials``); the token is reused until it expires and renewed once on a 401.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import httpx

from meao.auth.client_credentials import CredentialsError, client_auth
from meao.oss.client.endpoint import DEFAULT_TIMEOUT
from meao.oss.client.errors import ClientProblem, ConfigError, EndpointUnreachable


def id_from(location: str) -> str:
    """The last path segment of a resource URI: the id in a Location header or an href."""
    return location.rstrip("/").rsplit("/", 1)[-1]


def _problem_of(resp: httpx.Response) -> dict[str, Any]:
    ctype = resp.headers.get("content-type", "")
    if "json" in ctype:
        try:
            body = resp.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return body
    snippet = " ".join(resp.text.split())[:200] if resp.text else ""
    return {"title": resp.reason_phrase or "Error", "status": resp.status_code,
            "detail": f"unexpected HTTP {resp.status_code} answer ({ctype or 'no content type'}) from "
                      f"{resp.request.url}: {snippet or 'empty body'}; is this endpoint a MEAO?"}


class Session:
    """One connection pool to one MEAO; every failure leaves it as a ``ClientError``."""

    def __init__(self, endpoint: str, timeout: float = DEFAULT_TIMEOUT,
                 transport: httpx.BaseTransport | None = None, auth: httpx.Auth | None | str = "env") -> None:
        """``auth`` "env": a token from the client credentials the environment names (see
        ``meao.auth.client_credentials``), or none without them; None: never a token."""
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout
        if auth == "env":
            try:
                auth = client_auth(self.endpoint)
            except CredentialsError as exc:
                raise ConfigError(str(exc)) from exc
        self.auth = auth if isinstance(auth, httpx.Auth) else None
        self._http = httpx.Client(timeout=httpx.Timeout(timeout), transport=transport, auth=self.auth,
                                  headers={"Accept": "application/json"})

    def close(self) -> None:
        """Release the connection pool."""
        self._http.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send one request to ``endpoint + path``; raise ``ClientProblem`` for 4xx/5xx answers."""
        return self.send(method, self.endpoint + path, **kwargs)

    def next_page(self, resp: httpx.Response) -> httpx.Response | None:
        """The page after ``resp`` (its ``Link: <…>; rel="next"``), or None when ``resp`` is the last.

        The link is followed only to the endpoint's own origin: the access token goes nowhere else.
        """
        url = (resp.links.get("next") or {}).get("url")
        if not url:
            return None
        if httpx.URL(url).join("/") != httpx.URL(self.endpoint).join("/"):
            raise ClientProblem(502, {"title": "Next page elsewhere", "detail": f"the next page of {resp.url} is "
                                      f"at {url}, outside the endpoint {self.endpoint}; the client does not "
                                      "follow it there (is a proxy rewriting the Host header?)"}, str(resp.url))
        return self.send("GET", url)

    def send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request to the absolute ``url``; raise ``ClientProblem`` for 4xx/5xx answers."""
        try:
            resp = self._http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise EndpointUnreachable(url, f"no answer within {self.timeout:g}s ({type(exc).__name__}); "
                                           "the MEAO may be overloaded, or raise --timeout") from exc
        except httpx.UnsupportedProtocol as exc:
            raise EndpointUnreachable(url, "the endpoint must be an http:// or https:// URL") from exc
        except (httpx.TransportError, httpx.InvalidURL) as exc:
            raise EndpointUnreachable(url, str(exc) or type(exc).__name__) from exc
        except CredentialsError as exc:
            raise ClientProblem(exc.status or 401, {"title": "Token request refused", "detail": str(exc)},
                                url) from exc
        if resp.status_code == 401 and self.auth is None:
            problem = _problem_of(resp)
            problem["detail"] = (f"{problem.get('detail') or 'the MEAO wants an access token'}; give the CLI "
                                 "client credentials: MEAO_CLIENT_ID and MEAO_CLIENT_SECRET, or "
                                 "MEAO_CLIENT_CREDENTIALS_FILE (default <MEAO_DATA_DIR>/admin-credentials.json)")
            raise ClientProblem(401, problem, url)
        if resp.status_code >= 400:
            raise ClientProblem(resp.status_code, _problem_of(resp), url)
        return resp


class Proxy:
    """Verb-named calls on one API of the MEAO; ``root`` is the API's path (``/app_pkgm/v1`` …)."""

    root: ClassVar[str] = ""

    def __init__(self, session: Session) -> None:
        self._session = session

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self._session.request(method, self.root + path, **kwargs)

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    def _pages(self, path: str, params: dict[str, str] | None = None) -> Iterator[Any]:
        """GET a paged collection: the JSON body of each of its pages, following the Link headers."""
        resp: httpx.Response | None = self._request("GET", path, params=params)
        while resp is not None:
            yield resp.json()
            resp = self._session.next_page(resp)

    def _list(self, path: str, filter_: str | None = None) -> list[dict[str, Any]]:
        """GET every item of a collection (all its pages), with a MEC 009 filter expression when one is given."""
        return [item for page in self._pages(path, {"filter": filter_} if filter_ else None) for item in page]
