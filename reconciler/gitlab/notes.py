"""One merge-request note per platform, updated in place on every push (GitLab REST API v4).

The note carries an invisible marker naming the platform; the poster finds its own note by
that marker and edits it instead of adding a new one each time, so the merge request keeps
one current plan per platform.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from ..errors import GitLabError

# GitLab refuses notes over 1,000,000 characters; stay well below it.
NOTE_LIMIT = 900_000


def marker(platform: str) -> str:
    return f"<!-- cohort-reconciler plan: {platform} -->"


def fit(body: str, limit: int = NOTE_LIMIT, artifact_url: str | None = None) -> str:
    """Cut a long note at a line boundary, pointing to the full plan artifact."""
    if len(body) <= limit:
        return body
    where = f"[the plan artifact]({artifact_url})" if artifact_url else "the plan artifact"
    tail = f"\n\n… the plan is too long for a note: see {where}.\n"
    closing = "\n</details>"
    head = body[: limit - len(tail) - len(closing)].rsplit("\n", 1)[0]
    if head.count("<details>") > head.count("</details>"):
        head += closing
    return head + tail


@dataclass
class MergeRequest:
    api_url: str  # e.g. https://gitlab.example.org/api/v4 (CI_API_V4_URL)
    project_id: str  # CI_PROJECT_ID
    iid: str  # CI_MERGE_REQUEST_IID
    token: str  # a project access token with the api scope (PRIVATE-TOKEN)

    @classmethod
    def from_ci(cls, environ: Mapping[str, str] | None = None) -> MergeRequest:
        env = os.environ if environ is None else environ
        missing = [
            v
            for v in ("CI_API_V4_URL", "CI_PROJECT_ID", "CI_MERGE_REQUEST_IID", "GITLAB_NOTE_TOKEN")
            if not env.get(v)
        ]
        if missing:
            raise GitLabError(
                f"cannot post the plan note: {', '.join(missing)} not set "
                "(run in a merge-request pipeline, or use --dry-run)"
            )
        return cls(
            env["CI_API_V4_URL"].rstrip("/"),
            env["CI_PROJECT_ID"],
            env["CI_MERGE_REQUEST_IID"],
            env["GITLAB_NOTE_TOKEN"],
        )


class NotePoster:
    def __init__(
        self, mr: MergeRequest, session: requests.Session | None = None, timeout: float = 30.0
    ) -> None:
        self.mr, self.timeout = mr, timeout
        self.session = session or requests.Session()
        self.base = (
            f"{mr.api_url}/projects/{requests.utils.quote(str(mr.project_id), safe='')}"
            f"/merge_requests/{mr.iid}/notes"
        )

    def _request(self, method: str, url: str, **kw: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, url, timeout=self.timeout, headers={"PRIVATE-TOKEN": self.mr.token}, **kw
            )
        except requests.RequestException as exc:
            raise GitLabError(f"GitLab unreachable: {type(exc).__name__}") from None
        if response.status_code == 401:
            raise GitLabError(
                "GitLab refused the token (401): GITLAB_NOTE_TOKEN is invalid or expired"
            )
        if response.status_code == 403:
            raise GitLabError(
                "GitLab: the token lacks rights to comment on this merge request "
                "(403): it needs the api scope and at least the Reporter role"
            )
        if response.status_code == 404:
            raise GitLabError(
                f"GitLab: project {self.mr.project_id} or merge request "
                f"!{self.mr.iid} not found (404)"
            )
        if response.status_code >= 400:
            raise GitLabError(f"GitLab answered {response.status_code} to {method} notes")
        return response

    def find(self, platform: str) -> dict[str, Any] | None:
        tag = marker(platform)
        page: str | None = "1"
        while page:
            response = self._request(
                "GET",
                self.base,
                params={"per_page": 100, "page": page, "sort": "asc", "order_by": "created_at"},
            )
            for note in response.json():
                if tag in (note.get("body") or ""):
                    return note
            page = response.headers.get("X-Next-Page") or None
        return None

    def upsert(
        self, platform: str, body: str, artifact_url: str | None = None, limit: int = NOTE_LIMIT
    ) -> tuple[str, dict[str, Any]]:
        """Create the platform's note, or update it; returns ("created"|"updated", note)."""
        text = fit(f"{marker(platform)}\n{body}", limit, artifact_url)
        existing = self.find(platform)
        if existing is None:
            return "created", self._request("POST", self.base, json={"body": text}).json()
        url = f"{self.base}/{existing['id']}"
        return "updated", self._request("PUT", url, json={"body": text}).json()
