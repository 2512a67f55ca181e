"""How one endpoint is read: the pieces a per-platform module fills in.

Two modes cover every endpoint:

- ``snapshot``: the endpoint lists what the participant has now (repositories,
  guilds, top artists). Every run walks every page with conditional requests
  (If-None-Match / If-Modified-Since per page URL), so an unchanged page costs one
  304 and no download. A killed run simply starts again from page one.
- ``stream``: the endpoint lists events, newest first (plays, public events,
  posts). A high-water mark per participant, platform and endpoint stops the walk
  at the first page reaching items already stored. While a walk is in progress,
  the next page's address is stored with each page, so a killed walk resumes
  there.

Fan-out endpoints (languages per repository, genres per artist) make one request
per target that earlier endpoints stored.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import duckdb


@dataclass
class Context:
    """What a save hook gets: the open transaction and the ids involved."""

    con: duckdb.DuckDBPyConnection
    run_id: int
    participant_id: str
    platform: str
    endpoint: str
    fetched_at: Any  # datetime in UTC
    identity: dict = field(default_factory=dict)
    # Rank of the page's first item in the whole list (1 on the first page).
    first_rank: int = 1


@dataclass(frozen=True)
class Target:
    """One request of a fan-out endpoint: the path to fill and what it is for."""

    key: str
    path_values: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TargetPlan:
    """Targets of a fan-out, and how many more a cache already served."""

    targets: list[Target]
    cached: int = 0


# An item as the API returns it, after the spec's items() picked it out.
Item = dict[str, Any]


@dataclass(frozen=True)
class EndpointSpec:
    """One endpoint as the engine reads it.

    ``name`` is the run log's endpoint name; ``source`` the platform module's
    endpoint it reads (defaults to ``name``). ``items`` picks the list out of a
    page body, ``item_id`` gives the platform's id of an item, and ``save``
    normalizes a page's new items into the events tables.
    """

    name: str
    items: Callable[[Any], list[Item]]
    item_id: Callable[[Item], str]
    source: str | None = None
    mode: str = "snapshot"  # snapshot | stream
    params: dict[str, str] = field(default_factory=dict)
    # Cursor pagination: the next page's cursor, from the body and its items.
    next_cursor: Callable[[Any, list[Item]], str | None] | None = None
    # Offset pagination: the total item count when the body states it.
    total: Callable[[Any], int | None] | None = None
    # Stream mode: a number that grows with recency (ms epoch, event id).
    order_key: Callable[[Item], float] | None = None
    # Stream mode: the query parameter that sends the high-water mark, if the
    # API filters by it itself (Spotify's ``after``).
    since_param: str | None = None
    # Stream mode: fetch only the first page (the API serves nothing beyond it).
    single_page: bool = False
    # Event time of an item as ISO 8601 text, to record where the window began.
    item_time: Callable[[Item], str | None] | None = None
    # Fan-out: targets from the database, one request each.
    targets: Callable[[Context], Iterable[Target] | TargetPlan] | None = None
    # Reduce an item to the fields a feature needs before it is stored raw.
    trim: Callable[[Item], Item] | None = None
    save: Callable[[Context, list[Item]], None] | None = None
    # Endpoint names this one needs data from (for fan-out targets).
    after: tuple[str, ...] = ()
    conditional: bool = True
    # A fact about the platform's window, stored in the run log's note.
    note: str | None = None
    # Path placeholders filled from the identity response.
    path_values: Callable[[dict], dict[str, str]] | None = None
    # Query parameters taken from the identity response (Twitch's user_id).
    identity_params: Callable[[dict], dict[str, str]] | None = None
    # An optional scope the connection must have been granted, else skipped.
    optional_scope: str | None = None

    @property
    def source_name(self) -> str:
        return self.source or self.name.split(":")[0]
