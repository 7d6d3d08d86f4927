"""A local HTTP server on 127.0.0.1 that plays the Hugging Face Hub (and a URL host) for the network tests.

It serves what ``huggingface_hub`` asks for, so the real download, cache and checksum paths run (STYLE
section 9): raw files (``/<repo>/resolve/<revision>/<path>``, HEAD and GET, ranges outside ``/resolve/``),
the revision and tree APIs ``snapshot_download`` lists a repo with, and the upload calls of
``create_repo`` + ``create_branch`` + ``upload_folder`` (``/api/repos/create``, ``branch``, ``preupload``
answering "regular" for every file, ``commit`` with the files inline in base64), which turn into a new commit
it then serves.
Used by the ``fake_hub`` fixture of ``tests/conftest.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

REVISION = "0123456789abcdef0123456789abcdef01234567"  # the commit a request without a known one reports
_API = re.compile(
    r"^/api/models/(?P<repo>[^/]+/[^/]+)/(?P<call>revision|tree|preupload|commit|branch)/(?P<rev>[^/]+)"
)
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<path>.+)$")


@dataclass
class FakeHub:
    """State of the local server: what it serves and which requests it saw."""

    url: str = ""
    files: dict[str, bytes] = field(default_factory=dict)  # request path -> body
    requests: list[tuple[str, str, str]] = field(default_factory=list)  # (method, path, Range header)
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # commit -> {path in repo: bytes}
    branches: dict[str, dict[str, str]] = field(default_factory=dict)  # repo_id -> {branch: commit}
    created: list[dict[str, object]] = field(default_factory=list)  # create_repo payloads

    def add_commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main") -> str:
        """Commit ``files`` (path in repo -> bytes) on ``branch`` of ``repo_id``; returns the commit."""
        head = self.branches.get(repo_id, {}).get(branch)
        tree = {**self.commits.get(head, {}), **files} if head else dict(files)
        commit = hashlib.sha1(json.dumps([repo_id, head, sorted(files)]).encode()).hexdigest()
        self.commits[commit] = tree
        self.branches.setdefault(repo_id, {})[branch] = commit
        for path, body in tree.items():
            self.files[f"/{repo_id}/resolve/{commit}/{path}"] = body
        return commit

    def commit_of(self, repo_id: str, revision: str) -> str | None:
        """The commit a branch name or commit names in ``repo_id``, None when it names none."""
        if revision in self.commits:
            return revision
        return self.branches.get(repo_id, {}).get(revision)


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _reply(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in {"Content-Length": str(len(body)), **(headers or {})}.items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _json(self, value: object) -> None:
            self._reply(200, json.dumps(value).encode(), {"Content-Type": "application/json"})

        def _missing(self, code: str) -> None:
            self._reply(404, b'{"error": "not found"}', {"X-Error-Code": code})

        def _serve(self, with_body: bool) -> None:
            path = self.path.split("?")[0]
            hub.requests.append((self.command, path, self.headers.get("Range", "")))
            api = _API.match(path)
            if api and self.command == "GET":
                return self._api_get(api["repo"], api["call"], unquote(api["rev"]))
            body = hub.files.get(path)
            if body is None:
                return self._reply(404)
            resolve = _RESOLVE.match(path)
            commit = hub.commit_of(resolve["repo"], resolve["rev"]) if resolve else None
            start = 0
            headers = {"ETag": f'"{hashlib.sha256(body).hexdigest()}"', "X-Repo-Commit": commit or REVISION}
            if self.headers.get("Range", "").startswith("bytes=") and not resolve:
                start = int(self.headers["Range"][6:].split("-")[0])
                headers["Content-Range"] = f"bytes {start}-{len(body) - 1}/{len(body)}"
            self.send_response(206 if start or "Content-Range" in headers else 200)
            self.send_header("Content-Length", str(len(body) - start))
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            if with_body:
                self.wfile.write(body[start:])

        def _api_get(self, repo_id: str, call: str, revision: str) -> None:
            if repo_id not in hub.branches:
                return self._missing("RepoNotFound")
            commit = hub.commit_of(repo_id, revision)
            if commit is None:
                return self._missing("RevisionNotFound")
            tree = hub.commits[commit]
            if call == "revision":
                return self._json(
                    {"id": repo_id, "sha": commit, "siblings": [{"rfilename": p} for p in tree]}
                )
            entries = [
                {"type": "file", "path": p, "size": len(b), "oid": hashlib.sha1(b).hexdigest()}
                for p, b in sorted(tree.items())
            ]
            return self._json(entries)

        def do_HEAD(self) -> None:
            self._serve(with_body=False)

        def do_GET(self) -> None:
            self._serve(with_body=True)

        def do_POST(self) -> None:
            path = self.path.split("?")[0]
            hub.requests.append(("POST", path, ""))
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            api = _API.match(path)
            if path == "/api/repos/create":
                payload = json.loads(data)
                hub.created.append(payload)
                repo_id = f"{payload['organization']}/{payload['name']}"
                hub.branches.setdefault(repo_id, {})
                return self._json({"url": f"{hub.url}/{repo_id}"})
            if api and api["call"] == "preupload":
                files = json.loads(data)["files"]
                return self._json(
                    {
                        "files": [
                            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
                        ]
                    }
                )
            if api and api["call"] == "branch":  # a new branch starts at the default one
                heads = hub.branches.setdefault(api["repo"], {})
                if "main" in heads:
                    heads.setdefault(unquote(api["rev"]), heads["main"])
                return self._json({})
            if api and api["call"] == "commit":
                lines = [json.loads(line) for line in data.splitlines() if line.strip()]
                added = {
                    item["value"]["path"]: base64.b64decode(item["value"]["content"])
                    for item in lines
                    if item["key"] == "file"
                }
                commit = hub.add_commit(api["repo"], added, branch=unquote(api["rev"]))
                return self._json(
                    {"commitUrl": f"{hub.url}/{api['repo']}/commit/{commit}", "commitOid": commit}
                )
            return self._reply(404)

        def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
            pass

    return Handler


@contextmanager
def serve() -> Iterator[FakeHub]:
    """Run a :class:`FakeHub` on a free port of 127.0.0.1 until the block ends."""
    state = FakeHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
