"""Department platforms that offer a REST API instead of export files.

Each configured source is pulled in full, page after page, and its records go
through the same column mapping and publishing as an export file's rows. Nothing
is persisted between pulls, on purpose: a cursor that advanced past a page Kafka
never acknowledged would leave a gap, while a full re-pull costs only bandwidth,
because the stream recognises every unchanged record by its source record id and
content fingerprint and counts it as a duplicate.

The configuration file (``GRIDHUB_REST_SOURCES``) lists the sources::

    sources:
      - name: land-parcels                 # `gridhub pull land-parcels`
        source: land-resources             # records' source, picks the column mapping (default: name)
        url: https://zrzy.example.gov.cn/api/v1/parcels
        entity: place
        records: data.list                 # where the records are in each JSON answer ("" = the answer)
        paging: {style: page, page_param: pageNum, size_param: pageSize, size: 200}
        headers: {Authorization: "Bearer ${LAND_API_TOKEN}"}   # ${VAR} is read from the environment
        poll_seconds: 3600

Paging styles: ``page`` (page number and size parameters), ``offset`` (offset and
limit parameters; the offset advances by the records received, so a server that
caps the limit loses nothing), ``next`` (each answer names the next page's URL, or
a cursor sent back as ``cursor_param``, at ``next_field``). Page and offset pulls
stop at the first empty page.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urljoin

import requests
from pydantic import BaseModel, ConfigDict, Field, field_validator
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from connectors.base import Connector, SourceUnavailable
from connectors.exports import ExportPublisher, IngestReport
from connectors.exports.columns import ColumnMap, ExportEntity, load_mappings
from connectors.exports.errors import ExportRejected, MappingsError
from connectors.exports.readers import BadLine, Row
from connectors.publisher import RawPublisher
from foundation.errors import ConfigurationError, InputRejected, RetryableError
from foundation.logs import get_logger
from foundation.retrying import FIRST_WAIT_S, retrying
from schemas.config_file import load_yaml_model
from schemas.runs import RunNotice, new_run_id

RETRIED_STATUSES = (429, 500, 502, 503, 504)
PULL_STOP_WAIT_S = 10.0
"""How long stopping waits for a pull in progress; one cut short is pulled in full at the next start."""
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
log = get_logger(__name__)


class Paging(BaseModel):
    """How a source splits its records into pages."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    style: Literal["page", "offset", "next"]
    size: int = Field(default=100, ge=1, description="Records asked for per page (page and offset styles).")
    page_param: str = "page"
    size_param: str = "size"
    first_page: int = Field(default=1, ge=0)
    offset_param: str = "offset"
    limit_param: str = "limit"
    next_field: str = Field(default="next", description="Dotted path of the next page's URL or cursor.")
    cursor_param: str | None = Field(default=None, description="Send the value at next_field as this parameter.")
    max_pages: int = Field(default=100_000, ge=1, description="A server that never ends its pages is an error.")


class RestSource(BaseModel):
    """One department API to pull."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    source: str | None = Field(default=None, description="The records' source; default the name.")
    url: str = Field(pattern=r"^https?://")
    entity: ExportEntity
    records: str = Field(default="", description="Dotted path of the record list in each answer.")
    paging: Paging
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict, description="Values may name ${ENVIRONMENT_VARIABLES}.")
    poll_seconds: float = Field(default=3600.0, gt=0)
    timeout_seconds: float = Field(default=30.0, gt=0)
    retries: int = Field(default=5, ge=0, description="Retries of a failed connection or a 429/5xx answer.")
    backoff_seconds: float = Field(default=1.0, ge=0, description="First retry delay; doubles each time.")

    @property
    def source_name(self) -> str:
        """What the records are published as coming from (and whose column mapping applies)."""
        return self.source or self.name

    def resolved_headers(self) -> dict[str, str]:
        """Headers with ``${VAR}`` taken from the environment, so secrets never sit in the YAML file."""

        def value_of(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable not in os.environ:
                unset = f"REST source {self.name} needs environment variable {variable}, which is unset"
                raise ConfigurationError(unset)
            return os.environ[variable]

        return {header: _VARIABLE.sub(value_of, value) for header, value in self.headers.items()}


class RestSources(BaseModel):
    """The whole configuration file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    sources: list[RestSource] = Field(min_length=1)

    @field_validator("sources")
    @classmethod
    def _unique_names(cls, sources: list[RestSource]) -> list[RestSource]:
        names = [source.name for source in sources]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"source names must be unique; repeated: {', '.join(twice)}")
        return sources

    def named(self, name: str) -> RestSource:
        """The source called ``name``, or an error listing the configured ones."""
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(source.name for source in self.sources) or "none"
        raise InputRejected(f"no REST source named {name!r}; configured: {known}", "unknown_source")


def load_rest_sources(path: Path | None) -> RestSources:
    """Read and check the REST sources file; any problem is one line naming the file and what to fix."""
    if path is None:
        raise ConfigurationError("no REST sources configured: set GRIDHUB_REST_SOURCES to a YAML file (see the README)")
    return load_yaml_model(path, RestSources, "REST sources file", MappingsError, "check GRIDHUB_REST_SOURCES")


def rest_session(source: RestSource) -> requests.Session:
    """A session whose adapter retries refused connections, timeouts and 429/5xx answers with backoff."""
    retry = Retry(
        total=source.retries,
        backoff_factor=source.backoff_seconds,
        backoff_max=60,
        status_forcelist=RETRIED_STATUSES,
        allowed_methods=frozenset({"GET"}),
        respect_retry_after_header=True,
    )
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.headers.update(source.resolved_headers())
    return session


def _dig(body: Any, path: str) -> Any:
    """The value at a dotted path (``data.list``) of a JSON answer, or None when it is not there."""
    for step in filter(None, path.split(".")):
        if not isinstance(body, dict):
            return None
        body = body.get(step)
    return body


class RestPull:
    """One full pull of a source, read lazily page by page: a row source for :class:`ExportPublisher`."""

    def __init__(self, source: RestSource, columns: ColumnMap, session: requests.Session) -> None:
        self.source = source
        self.origin = source.name
        self.entity = source.entity
        self.columns = columns
        self.session = session
        self.rows: Iterator[Row] = self._rows()

    def blocks(self) -> None:
        """Pages of JSON records are read row by row."""
        return None

    def _get(self, url: str, params: dict[str, Any]) -> Any:
        """One page as JSON; the platform's failures sorted into the taxonomy.

        Unreachable, timing out, 429 or 5xx after the adapter's retries: the platform may come
        back (retryable). 401 or 403: the credentials are the operator's to fix; another 4xx
        means the URL or parameters are wrong (configuration). An answer that is not JSON is
        a wrong export (rejected).
        """
        name = self.source.name
        try:
            response = self.session.get(url, params=params, timeout=self.source.timeout_seconds)
        except requests.RequestException as exc:
            retries = self.source.retries
            raise SourceUnavailable(f"REST source {name}: GET {url} failed after {retries} retries ({exc})") from exc
        status = f"REST source {name}: GET {response.url} answered HTTP {response.status_code} {response.reason}"
        if response.status_code in RETRIED_STATUSES:
            raise SourceUnavailable(status)
        if response.status_code in (401, 403):
            raise ConfigurationError(f"{status}; check the credentials its headers take from the environment")
        if response.status_code >= 400:
            raise ConfigurationError(f"{status}; check its url, params and paging in GRIDHUB_REST_SOURCES")
        try:
            return response.json()
        except ValueError as exc:
            problem = f"REST source {name}: {response.url} did not answer JSON ({exc})"
            raise ExportRejected(problem, "bad_answer") from exc

    def _records(self, body: Any, url: str) -> list[Any]:
        records = _dig(body, self.source.records)
        if not isinstance(records, list):
            found = ", ".join(body) if isinstance(body, dict) else type(body).__name__
            raise ExportRejected(
                f"REST source {self.source.name}: the answer of {url} has no record list at "
                f"{self.source.records or '(the answer itself)'!r}; it has {found}",
                "bad_answer",
            )
        return records

    def pages(self) -> Iterator[list[Any]]:
        """Every non-empty page of records, in order, until the source has no more."""
        paging = self.source.paging
        url, params = self.source.url, dict(self.source.params)
        page, offset = paging.first_page, 0
        for _ in range(paging.max_pages):
            if paging.style == "page":
                params.update({paging.page_param: page, paging.size_param: paging.size})
            elif paging.style == "offset":
                params.update({paging.offset_param: offset, paging.limit_param: paging.size})
            body = self._get(url, params)
            records = self._records(body, url)
            if records:
                yield records
            elif paging.style != "next":
                return
            page, offset = page + 1, offset + len(records)
            if paging.style == "next":
                following = _dig(body, paging.next_field)
                if following in (None, ""):
                    return
                if paging.cursor_param:
                    params[paging.cursor_param] = following
                else:
                    url, params = urljoin(url, str(following)), {}
        raise ConfigurationError(
            f"REST source {self.source.name} still had pages after {paging.max_pages}; "
            "raise paging.max_pages if that is right"
        )

    def _rows(self) -> Iterator[Row]:
        """Records as rows; the first page must carry the required fields (a wrong mapping publishes nothing)."""
        number = 0
        for page_number, records in enumerate(self.pages(), start=1):
            if page_number == 1:
                keys = list(dict.fromkeys(key for record in records if isinstance(record, dict) for key in record))
                self.columns.require(keys, f"REST source {self.source.name}")
            for index, record in enumerate(records, start=1):
                number += 1
                if isinstance(record, dict):
                    yield record
                else:
                    text = json.dumps(record, ensure_ascii=False)
                    problem = f"record {index} of page {page_number} is a JSON {type(record).__name__}, not an object"
                    yield BadLine(number, text, problem, unit="record")


class RestPoller(Connector):
    """Pulls each configured department API in full, now and then every ``poll_seconds``.

    Each source has its own thread, so a platform that is down (retried with back-off until it
    answers) or refuses the hub's credentials (stopped, with one line saying what to fix) never
    holds up the others. An answer that is wrong is logged and pulled again at the next interval.
    """

    def __init__(
        self,
        publisher: RawPublisher,
        sources: list[RestSource],
        mappings: Path,
        retry_wait_s: float = FIRST_WAIT_S,
        started_by: str | None = None,
    ) -> None:
        super().__init__(publisher, started_by)
        self.sources = sources
        self.mappings = mappings
        self.retry_wait_s = retry_wait_s
        self.stopped: dict[str, ConfigurationError] = {}
        """Sources pulled no more, with the reason, until the service is restarted."""

    def prepare(self) -> dict[str, Any]:
        """Refuse to start when a source's credentials name an unset variable or the mappings file is wrong."""
        for source in self.sources:
            source.resolved_headers()
        load_mappings(self.mappings)
        return {"sources": [source.name for source in self.sources]}

    def pull(self, source: RestSource, run_id: str | None = None) -> IngestReport:
        """One full pull of ``source`` with its department's column mapping, as a run; returns once Kafka has it all.

        The run's origin is the source's URL, which :class:`~schemas.runs.RunNotice` strips of any
        credentials and query.
        """
        run = RunNotice.begin("pull", source.source_name, source.entity, source.url, self.started_by, run_id)
        with rest_session(source) as session:
            return ExportPublisher(self.publisher, source.source_name).publish_run(
                run,
                lambda: RestPull(
                    source, load_mappings(self.mappings).columns_for(source.source_name, source.entity), session
                ),
            )

    def run(self, stop: threading.Event) -> None:
        """Pull every source on its own schedule until ``stop`` is set."""
        threads = [
            threading.Thread(target=self._follow, args=(source, stop), name=f"pull-{source.name}", daemon=True)
            for source in self.sources
        ]
        for thread in threads:
            thread.start()
        stop.wait()
        for thread in threads:
            thread.join(timeout=PULL_STOP_WAIT_S)

    def _follow(self, source: RestSource, stop: threading.Event) -> None:
        while not stop.is_set():
            run_id = new_run_id()  # one run however often a platform that is down is asked again
            try:
                for attempt in retrying(stop, f"pulling REST source {source.name}", first_wait_s=self.retry_wait_s):
                    with attempt:
                        report = self.pull(source, run_id)
            except InputRejected as exc:
                log.error("REST pull refused; pulling again at the next interval", source=source.name, error=str(exc))
            except RetryableError:
                return
            except ConfigurationError as exc:
                self.stopped[source.name] = exc
                log.error("REST source stopped until the hub restarts; fix this first", source=source.name,
                          error=str(exc))  # fmt: skip
                return
            else:
                log.info("REST pull done", source=source.name, records=report.records, run_id=report.run_id)
            stop.wait(source.poll_seconds)
