"""Simulated GitHub REST API (api.github.com) with Link pagination and ETags.

The server adds a weak ETag to every 200 response and returns 304 when
``If-None-Match`` carries it. A 304 does not count against the rate limit, as on
GitHub.
"""

from __future__ import annotations

import base64
import datetime as dt
import math

from .base import (
    ApiError,
    ApiRequest,
    ApiResponse,
    PlatformApi,
    hex_id,
    int_arg,
    iso,
    json_response,
    moments,
    route,
)

LANGUAGES = (
    "Python", "JavaScript", "TypeScript", "Go", "Rust", "C", "C++", "Java",
    "Shell", "HTML", "CSS", "Jupyter Notebook", "R", "Ruby", "Kotlin", "Haskell",
)  # fmt: skip
WORDS = (
    "tiny", "data", "notes", "parser", "toolkit", "dotfiles", "lab", "viz", "bot",
    "api", "site", "engine", "sketch", "cli", "sim", "tracker", "game", "demo",
)  # fmt: skip
EVENT_TYPES = (
    ("PushEvent", 60),
    ("CreateEvent", 10),
    ("WatchEvent", 10),
    ("PullRequestEvent", 8),
    ("IssuesEvent", 6),
    ("IssueCommentEvent", 6),
)
# GitHub returns at most 300 events of the last 90 days from the events APIs.
EVENTS_CAP = 300
DOCS = "https://docs.github.com/rest"
# The hypermedia links of a repository object, as (name, path below the repo URL).
REPO_LINKS = (
    ("forks", "/forks"), ("keys", "/keys{/key_id}"),
    ("collaborators", "/collaborators{/collaborator}"), ("teams", "/teams"),
    ("hooks", "/hooks"), ("issue_events", "/issues/events{/number}"),
    ("events", "/events"), ("assignees", "/assignees{/user}"),
    ("branches", "/branches{/branch}"), ("tags", "/tags"),
    ("blobs", "/git/blobs{/sha}"), ("git_tags", "/git/tags{/sha}"),
    ("git_refs", "/git/refs{/sha}"), ("trees", "/git/trees{/sha}"),
    ("statuses", "/statuses/{sha}"), ("languages", "/languages"),
    ("stargazers", "/stargazers"), ("contributors", "/contributors"),
    ("subscribers", "/subscribers"), ("subscription", "/subscription"),
    ("commits", "/commits{/sha}"), ("git_commits", "/git/commits{/sha}"),
    ("comments", "/comments{/number}"), ("issue_comment", "/issues/comments{/number}"),
    ("contents", "/contents/{+path}"), ("compare", "/compare/{base}...{head}"),
    ("merges", "/merges"), ("archive", "/{archive_format}{/ref}"),
    ("downloads", "/downloads"), ("issues", "/issues{/number}"),
    ("pulls", "/pulls{/number}"), ("milestones", "/milestones{/number}"),
    ("notifications", "/notifications{?since,all,participating}"),
    ("labels", "/labels{/name}"), ("releases", "/releases{/id}"),
    ("deployments", "/deployments"),
)  # fmt: skip

# Owned repositories, repositories the user collaborates on, public events, per
# user profile (user index modulo 3). Every fifth owned repository is a fork.
SIZES = (
    {"repos": 8, "collaborator_repos": 2, "events": 45},
    {"repos": 135, "collaborator_repos": 4, "events": 340},
    {"repos": 1, "collaborator_repos": 0, "events": 0},
)


def _node_id(kind: str, number: int) -> str:
    return base64.b64encode(f"0:{kind}{number}".encode()).decode()


class GitHubApi(PlatformApi):
    name = "github"
    uses_etags = True

    def __init__(self, seed: int, root: str):
        super().__init__(seed)
        self.root = root
        self.repos_by_name: dict[str, dict] = {}
        self.users_by_login: dict[str, dict] = {}
        self.routes = [
            route("user", r"/user", self.user),
            route("repos", r"/user/repos", self.repos),
            route("events", r"/users/(?P<login>[^/]+)/events(/public)?", self.events),
            route(
                "languages",
                r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/languages",
                self.languages,
            ),
        ]

    def _owner(self, login: str, number: int, kind: str = "User") -> dict:
        api = f"{self.root}/users/{login}"
        return {
            "login": login,
            "id": number,
            "node_id": _node_id(kind, number),
            "avatar_url": f"https://avatars.githubusercontent.com/u/{number}?v=4",
            "gravatar_id": "",
            "url": api,
            "html_url": f"https://github.com/{login}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": kind,
            "site_admin": False,
        }

    def _repo(self, rng, owner: dict, number: int, fork: bool, created) -> dict:
        name = f"{rng.choice(WORDS)}-{rng.choice(WORDS)}-{number}"
        full = f"{owner['login']}/{name}"
        api = f"{self.root}/repos/{full}"
        languages = {
            language: rng.randint(200, 400_000)
            for language in rng.sample(LANGUAGES, rng.randint(0, 4))
        }
        main = max(languages, key=languages.get) if languages else None
        pushed = created + dt.timedelta(days=rng.randint(0, 900))
        repo_id = 400_000_000 + rng.randint(0, 10**8)
        stars, forks, issues = rng.randint(0, 40), rng.randint(0, 5), rng.randint(0, 6)
        links = {f"{name}_url": api + suffix for name, suffix in REPO_LINKS}
        repo = {
            "id": repo_id,
            "node_id": _node_id("Repository", repo_id),
            "name": name,
            "full_name": full,
            "private": False,
            "owner": owner,
            "html_url": f"https://github.com/{full}",
            "description": None if rng.random() < 0.3 else f"A {rng.choice(WORDS)}",
            "fork": fork,
            "url": api,
            **links,
            "created_at": iso(created),
            "updated_at": iso(pushed),
            "pushed_at": iso(pushed),
            "git_url": f"git://github.com/{full}.git",
            "ssh_url": f"git@github.com:{full}.git",
            "clone_url": f"https://github.com/{full}.git",
            "svn_url": f"https://github.com/{full}",
            "homepage": None,
            "size": sum(languages.values()) // 1024,
            "stargazers_count": stars,
            "watchers_count": stars,
            "language": main,
            "has_issues": True,
            "has_projects": True,
            "has_downloads": True,
            "has_wiki": True,
            "has_pages": False,
            "forks_count": forks,
            "mirror_url": None,
            "archived": rng.random() < 0.1,
            "disabled": False,
            "open_issues_count": issues,
            "license": None,
            "allow_forking": True,
            "is_template": False,
            "topics": [],
            "visibility": "public",
            "forks": forks,
            "open_issues": issues,
            "watchers": stars,
            "default_branch": "main",
            "permissions": {"admin": True, "push": True, "pull": True},
        }
        self.repos_by_name[full.lower()] = {"repo": repo, "languages": languages}
        return repo

    def build_user(self, index: int) -> dict:
        rng = self.rng("user", index)
        sizes = SIZES[index % 3]
        login = f"sandbox-dev-{index}"
        number = 9_000_000 + index
        owner = self._owner(login, number)
        start = dt.datetime(2019, 1, 1, tzinfo=dt.UTC)
        owned = [
            self._repo(
                rng, owner, position, position % 5 == 4,
                start + dt.timedelta(days=rng.randint(0, 2000)),
            )
            for position in range(sizes["repos"])
        ]  # fmt: skip
        partner = self._owner(
            f"sandbox-team-{index}", 8_000_000 + index, "Organization"
        )
        shared = [
            self._repo(
                rng, partner, 1000 + position, False,
                start + dt.timedelta(days=rng.randint(0, 2000)),
            )
            for position in range(sizes["collaborator_repos"])
        ]  # fmt: skip
        for repo in shared:
            repo["permissions"] = {"admin": False, "push": True, "pull": True}
        repos = sorted(owned + shared, key=lambda repo: repo["full_name"].lower())

        events = []
        weights = [weight for _, weight in EVENT_TYPES]
        for moment in moments(rng, sizes["events"], dt.timedelta(days=85)):
            kind = rng.choices([name for name, _ in EVENT_TYPES], weights)[0]
            repo = rng.choice(owned)
            events.append(self._event(rng, kind, moment, owner, repo))

        user = {
            "id": number,
            "login": login,
            "name": f"Sandbox Developer {index}",
            "owner": owner,
            "repos": repos,
            "events": events,
            "public_repos": len(owned),
            "followers": rng.randint(0, 300),
            "following": rng.randint(0, 100),
            "created_at": iso(start),
        }
        self.users_by_login[login.lower()] = user
        return user

    def _event(self, rng, kind: str, moment, owner: dict, repo: dict) -> dict:
        payload: dict = {}
        if kind == "PushEvent":
            # Since 2025 push events carry no commit list, size or distinct_size.
            payload = {
                "repository_id": repo["id"],
                "push_id": rng.randint(10**10, 10**11),
                "ref": "refs/heads/main",
                "head": hex_id(rng),
                "before": hex_id(rng),
            }
        elif kind == "CreateEvent":
            payload = {
                "ref": f"feature-{rng.randint(1, 99)}",
                "ref_type": "branch",
                "master_branch": "main",
                "description": repo["description"],
                "pusher_type": "user",
            }
        elif kind == "WatchEvent":
            payload = {"action": "started"}
        elif kind == "PullRequestEvent":
            payload = {
                "action": rng.choice(("opened", "closed")),
                "number": rng.randint(1, 80),
            }
        elif kind == "IssuesEvent":
            payload = {
                "action": rng.choice(("opened", "closed")),
                "issue": {"number": rng.randint(1, 80)},
            }
        elif kind == "IssueCommentEvent":
            payload = {"action": "created", "issue": {"number": rng.randint(1, 80)}}
        return {
            "id": str(rng.randint(10**10, 10**11)),
            "type": kind,
            "actor": {
                key: owner[key]
                for key in ("id", "login", "gravatar_id", "url", "avatar_url")
            }
            | {"display_login": owner["login"]},
            "repo": {"id": repo["id"], "name": repo["full_name"], "url": repo["url"]},
            "payload": payload,
            "public": True,
            "created_at": iso(moment),
        }

    growable = {"events": "_add_event", "repos": "_add_repo"}

    def _owned(self, user: dict) -> list[dict]:
        return [
            repo for repo in user["repos"] if repo["owner"]["login"] == user["login"]
        ]

    def _add_event(self, user: dict, rng, moment) -> int:
        owned = self._owned(user)
        if not owned:
            self._add_repo(user, rng, moment)
            owned = self._owned(user)
        event = self._event(rng, "PushEvent", moment, user["owner"], rng.choice(owned))
        user["events"].insert(0, event)
        return len(user["events"])

    def _add_repo(self, user: dict, rng, moment) -> int:
        number = 5000 + len(user["repos"])
        repo = self._repo(rng, user["owner"], number, False, moment)
        user["repos"] = sorted(
            [*user["repos"], repo], key=lambda item: item["full_name"].lower()
        )
        user["public_repos"] += 1
        return len(self._owned(user))

    # Responses --------------------------------------------------------------
    def error_body(self, status: int, message: str, reason: str | None) -> dict:
        return {"message": message, "documentation_url": DOCS, "status": str(status)}

    def unauthorized(self, message: str) -> ApiResponse:
        return self.error(401, "Bad credentials")

    def rate_limit_headers(self, window: dict) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(window["limit"]),
            "X-RateLimit-Remaining": str(window["remaining"]),
            "X-RateLimit-Reset": str(int(window["reset_at"])),
            "X-RateLimit-Used": str(window["used"]),
            "X-RateLimit-Resource": "core",
        }

    def rate_limited_response(self, window: dict) -> ApiResponse:
        return self.error(
            429, f"API rate limit exceeded for user ID {window['bucket']}."
        )

    def user(self, request: ApiRequest) -> ApiResponse:
        user = request.user
        body = dict(user["owner"])
        body.update(
            {
                "name": user["name"],
                "company": None,
                "blog": "",
                "location": None,
                "email": None,
                "hireable": None,
                "bio": None,
                "twitter_username": None,
                "public_repos": user["public_repos"],
                "public_gists": 0,
                "followers": user["followers"],
                "following": user["following"],
                "created_at": user["created_at"],
                "updated_at": user["created_at"],
            }
        )
        return json_response(body)

    def _page(
        self, request: ApiRequest, items: list, cap: int | None = None
    ) -> ApiResponse:
        per_page = int_arg(request, "per_page", 30, 1, 100, clamp=True)
        page = int_arg(request, "page", 1, 1, 10**6, clamp=True)
        reachable = items if cap is None else items[:cap]
        last = max(1, math.ceil(len(reachable) / per_page))
        if cap is not None and (page - 1) * per_page >= cap:
            raise ApiError(
                422,
                "In order to keep the API fast for everyone, pagination is limited "
                "for this resource. Check the rel=last link relation in the Link "
                "response header to see how far back you can traverse.",
            )
        chunk = reachable[(page - 1) * per_page : page * per_page]
        params = {
            key: values[0]
            for key, values in request.query.items()
            if key not in ("page", "per_page")
        }

        def link(number: int, rel: str) -> str:
            url = request.url(
                request.path, {**params, "per_page": per_page, "page": number}
            )
            return f'<{url}>; rel="{rel}"'

        links = []
        if page > 1:
            links += [link(page - 1, "prev"), link(1, "first")]
        if page < last:
            links += [link(page + 1, "next"), link(last, "last")]
        headers = {"Link": ", ".join(links)} if links else {}
        return json_response(chunk, headers)

    def repos(self, request: ApiRequest) -> ApiResponse:
        kind = request.arg("type", "all")
        affiliation = request.arg("affiliation")
        repos = request.user["repos"]
        login = request.user["login"]
        if kind == "owner" or affiliation == "owner":
            repos = [repo for repo in repos if repo["owner"]["login"] == login]
        elif kind not in ("all", "public", "private", "member"):
            raise ApiError(422, f"Validation Failed: type {kind!r} is invalid")
        elif kind == "member":
            repos = [repo for repo in repos if repo["owner"]["login"] != login]
        elif kind == "private":
            repos = []
        return self._page(request, repos)

    def events(self, request: ApiRequest) -> ApiResponse:
        user = self.users_by_login.get(request.path_params["login"].lower())
        if user is None:
            raise ApiError(404, "Not Found")
        return self._page(request, user["events"], cap=EVENTS_CAP)

    def languages(self, request: ApiRequest) -> ApiResponse:
        full = f"{request.path_params['owner']}/{request.path_params['repo']}".lower()
        entry = self.repos_by_name.get(full)
        if entry is None:
            raise ApiError(404, "Not Found")
        return json_response(entry["languages"])
