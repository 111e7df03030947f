"""Credentials out of what meao prints: log lines, start-up banners, failure details, ProblemDetails.

Operators put passwords in URLs (``MEAO_DATABASE_URL=postgresql://meao:pw@db/meao``,
``MEAO_BROKER_URL=redis://:pw@redis:6379/0``), and API clients put them in the URLs they give meao
(an ``appPkgPath`` of ``https://user:pw@repo/pkg.zip``, a presigned ``...?sig=...`` link, a
``callbackUri`` with userinfo). meao needs them to connect, but nobody reading a log or a failure
detail needs them, so :func:`redact` masks them in any text:

- the password of a URL's userinfo (``scheme://user:password@host``) becomes ``***``; the user name
  stays, it tells the operator which account is meant. Userinfo without a colon is left alone (it is a
  user name, and masking it would hide which account failed);
- the values of query parameters that carry credentials (``password=``, ``token=``, ``sig=``,
  ``X-Amz-Signature=`` ... see ``_SECRET_PARAMS``) become ``***``.

Masking an already masked text changes nothing. The whole-text form is what the log records and
:class:`meao.problems.ProblemError` use, so a URL inside any message (an httpx error naming the URL, a
library's exception text) is caught too, not only the ones meao formats itself.
"""

from __future__ import annotations

import re

MASK = "***"

# scheme://user:password@ — the password runs to the authority's last '@' (an unencoded '@' inside a
# password is invalid, but such URLs are written, and urllib splits them there too); the authority ends
# at '/', '?', '#' or blank.
_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^\s/?#@:]*):(?P<password>[^\s/?#]*)@")
_SECRET_PARAMS = ("password", "passwd", "pwd", "pass", "secret", "client_secret", "token", "access_token",
                  "refresh_token", "id_token", "api_key", "apikey", "api-key", "sig", "signature",
                  "x-amz-signature", "x-amz-credential", "x-amz-security-token", "x-goog-signature",
                  "x-goog-credential")
_QUERY_SECRET = re.compile(r"(?P<head>[?&;](?:" + "|".join(re.escape(p) for p in _SECRET_PARAMS) + r")=)"
                           r"(?P<value>[^&;#\s'\"<>]*)", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every URL password and credential query value replaced by ``***``.

    Cheap on the common case: a text with neither ``@`` nor ``=`` is returned as it is, unscanned.
    """
    if "@" in text:
        text = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@" if m["password"] else m[0], text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: m["head"] + MASK if m["value"] else m[0], text)
    return text


def mask_url(url: str | None) -> str:
    """A URL fit to print: :func:`redact` of it (``""`` for None)."""
    return redact(url or "")
