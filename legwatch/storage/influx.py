"""``InfluxStore``: InfluxDB over the v1 HTTP API, with the standard library only.

Writes are line protocol POSTed to ``/write?precision=ms`` in chunks of 5000 lines; reads are InfluxQL
on ``/query`` with ``epoch=ms``. InfluxDB 1.x serves this natively, 2.x through its compatibility
endpoints (token auth, DBRP mapping per bucket), 3 Core natively.

Errors: unreachable server, timeouts and 5xx raise ``StoreUnavailable`` (retry later); 4xx and
statement errors raise ``StoreError`` carrying the server's message on one line. Credentials travel
only in the ``Authorization`` header (token, or Basic for username/password, never in the URL) and
are scrubbed from every message this module produces.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from legwatch.storage.base import FieldValue, Point, StoreError, StoreUnavailable, check_delete_tags, tags_match
from legwatch.storage.lineprotocol import point_sort_key, to_line, to_ms

__all__ = ["WRITE_CHUNK_LINES", "InfluxStore", "quote_ident", "quote_string"]

log = logging.getLogger(__name__)

WRITE_CHUNK_LINES = 5000
_MAX_MESSAGE = 400
_RETRYABLE_4XX = {408, 429}


def _escape_influxql(text: str, quote: str) -> str:
    return text.replace("\\", "\\\\").replace(quote, "\\" + quote).replace("\n", "\\n")


def quote_ident(name: str) -> str:
    """An InfluxQL double-quoted identifier (measurement, tag or field name)."""
    return '"' + _escape_influxql(name, '"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL single-quoted string literal."""
    return "'" + _escape_influxql(value, "'") + "'"


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 1] + "…"


def _server_error(body: bytes) -> str:
    text = body.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    if isinstance(doc, dict):
        if isinstance(doc.get("error"), str):
            return doc["error"]
        if isinstance(doc.get("message"), str):  # InfluxDB 2.x/3.x error shape
            return doc["message"]
    return text


def _json_documents(body: bytes) -> list[Any]:
    """Parse one JSON document, or the newline-separated stream a chunked ``/query`` returns."""
    text = body.decode("utf-8")
    decoder = json.JSONDecoder()
    docs, pos = [], 0
    while True:
        while pos < len(text) and text[pos].isspace():
            pos += 1
        if pos >= len(text):
            return docs
        doc, pos = decoder.raw_decode(text, pos)
        docs.append(doc)


def _statement_errors(docs: Iterable[Any]) -> list[str]:
    errors = []
    for doc in docs:
        if not isinstance(doc, dict):
            errors.append("unexpected response")
            continue
        if doc.get("error"):
            errors.append(str(doc["error"]))
        errors.extend(str(r["error"]) for r in doc.get("results", ()) if r.get("error"))
    return errors


def _field_value(value: Any) -> FieldValue:
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return float(value)
    return json.dumps(value)


class InfluxStore:
    """A ``Store`` on one InfluxDB database (1.x database, 2.x bucket via DBRP, 3.x database)."""

    def __init__(
        self,
        url: str,
        db: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        retention_policy: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        try:
            valid = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number
            valid = False
        if not valid:
            raise StoreError("InfluxDB URL must look like http://host:8086")
        url_password = urllib.parse.unquote(parts.password or "")
        if parts.username is not None and username is None:
            username = urllib.parse.unquote(parts.username)
            password = url_password
        netloc = parts.netloc.rpartition("@")[2]
        #: The server URL without credentials: safe to show in messages.
        self.url = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self.db = db
        self.retention_policy = retention_policy
        self.timeout = timeout
        self._headers: dict[str, str] = {}
        self._secrets: list[str] = [url_password, password or ""]
        if token:
            self._headers["Authorization"] = f"Token {token}"
            self._secrets += [token]
        elif username is not None:
            basic = base64.b64encode(f"{username}:{password or ''}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {basic}"
            self._secrets += [basic]
        self._secrets += [urllib.parse.quote(s, safe="") for s in self._secrets]
        self._secrets = sorted({s for s in self._secrets if s}, key=len, reverse=True)

    def __repr__(self) -> str:
        return f"InfluxStore(url={self.url!r}, db={self.db!r})"

    def __enter__(self) -> InfluxStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- HTTP -------------------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def _request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> bytes:
        url = self.url + path
        if params:
            url += "?" + urllib.parse.urlencode(params)
        headers = dict(self._headers)
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        where = f"InfluxDB {method} {self.url}{path}"
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as exc:
            try:
                detail = _server_error(exc.read())
            except (OSError, http.client.HTTPException):
                detail = ""
            message = self._scrub(_one_line(f"{where} failed: HTTP {exc.code} {exc.reason}: {detail}"))
            if exc.code >= 500 or exc.code in _RETRYABLE_4XX:
                raise StoreUnavailable(message) from None
            raise StoreError(message) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", None) or exc
            message = self._scrub(_one_line(f"{where} failed: unreachable: {reason}"))
            raise StoreUnavailable(message) from None

    def _query_docs(self, q: str, *, method: str = "GET", chunked: bool = False) -> list[Any]:
        params = {"db": self.db, "q": q, "epoch": "ms"}
        if chunked:
            params.update(chunked="true", chunk_size="10000")
        if method == "GET":
            body = self._request("GET", "/query", params)
        else:
            form = urllib.parse.urlencode(params).encode()
            body = self._request("POST", "/query", None, form, "application/x-www-form-urlencoded")
        try:
            docs = _json_documents(body)
        except ValueError as exc:
            raise StoreError(self._scrub(_one_line(f"InfluxDB /query returned invalid JSON: {exc}"))) from None
        errors = _statement_errors(docs)
        if errors:
            raise StoreError(self._scrub(_one_line(f"InfluxDB query {q!r} failed: {'; '.join(errors)}")))
        return docs

    # -- Store ------------------------------------------------------------------------------------

    def write(self, points: Sequence[Point]) -> None:
        """Write points (all validated first: a bad point writes nothing), 5000 lines per request."""
        lines = [to_line(p) for p in points]
        params = {"db": self.db, "precision": "ms"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        for i in range(0, len(lines), WRITE_CHUNK_LINES):
            body = "\n".join(lines[i : i + WRITE_CHUNK_LINES]).encode("utf-8")
            self._request("POST", "/write", params, body, "text/plain; charset=utf-8")
        log.debug("wrote %d points to %s db %s", len(lines), self.url, self.db)

    def select_statement(
        self,
        measurement: str,
        *,
        start: float | None = None,
        end: float | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """The InfluxQL ``query`` runs."""
        source = quote_ident(measurement)
        if self.retention_policy:
            source = f"{quote_ident(self.db)}.{quote_ident(self.retention_policy)}.{source}"
        conditions = []
        if start is not None:
            conditions.append(f"time >= {to_ms(start)}ms")
        if end is not None:
            conditions.append(f"time < {to_ms(end)}ms")
        # Empty values (= "tag absent") are left to ``query``'s own filtering: InfluxQL matches them
        # only where the measurement has that tag key at all.
        for key, value in sorted((tags or {}).items()):
            if value:
                conditions.append(f"{quote_ident(key)} = {quote_string(value)}")
        where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        return f"SELECT * FROM {source}{where} GROUP BY *"

    def query(
        self,
        measurement: str,
        *,
        start: float | None = None,
        end: float | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> list[Point]:
        """Points of one measurement with start <= time < end whose tags include ``tags``, by time.

        A tag filter with an empty value matches points without that tag. The server filters; the
        series' tags are checked again here, so the result is exact whatever the server's rules.
        """
        wanted = dict(tags or {})
        q = self.select_statement(measurement, start=start, end=end, tags=wanted)
        points = []
        for doc in self._query_docs(q, chunked=True):
            for result in doc.get("results", ()):
                for series in result.get("series", ()):
                    series_tags = {k: v for k, v in (series.get("tags") or {}).items() if v}
                    if tags_match(series_tags, wanted):
                        points.extend(self._series_points(series))
        points.sort(key=point_sort_key)
        return points

    @staticmethod
    def _series_points(series: Mapping[str, Any]) -> list[Point]:
        name = series.get("name", "")
        tags = {k: v for k, v in (series.get("tags") or {}).items() if v}
        columns = list(series.get("columns", ()))
        time_index = columns.index("time")
        points = []
        for row in series.get("values", ()):
            fields = {
                col: _field_value(val)
                for i, (col, val) in enumerate(zip(columns, row, strict=False))
                if i != time_index and val is not None
            }
            if fields:
                points.append(Point(name, dict(tags), fields, row[time_index] / 1000.0))
        return points

    def delete_statement(self, measurement: str, *, start: float, end: float, tags: Mapping[str, str]) -> str:
        """The InfluxQL ``delete`` runs (``DELETE`` takes tags and a time range, InfluxDB 1.x and 3)."""
        wanted = check_delete_tags(tags)
        conditions = [f"{quote_ident(k)} = {quote_string(v)}" for k, v in sorted(wanted.items())]
        conditions += [f"time >= {to_ms(start)}ms", f"time < {to_ms(end)}ms"]
        return f"DELETE FROM {quote_ident(measurement)} WHERE {' AND '.join(conditions)}"

    def delete(
        self,
        measurement: str,
        *,
        start: float,
        end: float,
        tags: Mapping[str, str],
    ) -> None:
        """Remove the points of one measurement with start <= time < end whose tags include ``tags``
        (InfluxQL ``DELETE``, by POST; tested on 1.x. A server that refuses it, as InfluxDB 2.x's
        read-oriented 1.x ``/query`` may, raises ``StoreError`` with its message, nothing deleted)."""
        self._query_docs(self.delete_statement(measurement, start=start, end=end, tags=tags), method="POST")

    def raw_query(self, q: str) -> dict[str, Any]:
        """Run InfluxQL on this database and return the parsed JSON (times as epoch ms).

        SELECT/SHOW go by GET, anything else (CREATE, DROP, SELECT INTO…) by POST. A statement error
        raises ``StoreError``.
        """
        words = q.split()
        read_only = bool(words) and words[0].upper() in ("SELECT", "SHOW") and "INTO" not in q.upper()
        docs = self._query_docs(q, method="GET" if read_only else "POST")
        if len(docs) != 1 or not isinstance(docs[0], dict):
            raise StoreError("InfluxDB /query returned an unexpected response")
        return docs[0]

    def ensure_database(self) -> None:
        """``CREATE DATABASE`` (InfluxDB 1.x); a refusal (2.x bucket, 3.x database) is ignored."""
        form = urllib.parse.urlencode({"q": f"CREATE DATABASE {quote_ident(self.db)}"}).encode()
        try:
            body = self._request("POST", "/query", None, form, "application/x-www-form-urlencoded")
            errors = _statement_errors(_json_documents(body))
        except StoreUnavailable:
            raise
        except (StoreError, ValueError) as exc:
            errors = [str(exc)]
        if errors:
            log.debug("CREATE DATABASE refused (fine on InfluxDB 2.x/3.x): %s", self._scrub(errors[0]))

    def ping(self) -> None:
        self._request("GET", "/ping")

    def close(self) -> None:
        """Nothing to release: every request uses its own connection."""
