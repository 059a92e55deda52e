"""A loopback stand-in for the few Hub API routes an upload uses, recording every request (for upload tests).

`huggingface_hub` has no local Hub; pointing `HF_ENDPOINT` at this server (127.0.0.1 only) lets a test run the real
client code of `create_repo`, `create_branch`, `create_commit` and `upload_folder` and then inspect what would have
been committed. Every file is answered `uploadMode: "regular"`, so contents arrive base64-encoded inside the commit
payload (no LFS / xet transfer, which this stub cannot serve). Unknown routes get a 404.
"""

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


REPO = r"/api/(?P<type>models|datasets|spaces)/(?P<repo>[^/]+/[^/]+)"
ROUTES = {
    "preupload": re.compile(REPO + r"/preupload/(?P<rev>[^/?]+)"),
    "commit": re.compile(REPO + r"/commit/(?P<rev>[^/?]+)"),
    "branch": re.compile(REPO + r"/branch/(?P<rev>[^/?]+)"),
    "tree": re.compile(REPO + r"/tree/(?P<rev>[^/?]+)"),
}
# a file download (`hf_hub_download`, `ModelCard.load`): answered "no such file" (`X-Error-Code: EntryNotFound`)
RESOLVE = re.compile(r"/(?:(?P<type>datasets|spaces)/)?(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)")


@dataclass
class Commit:
    repo_type: str
    repo_id: str
    revision: str
    summary: str
    files: dict[str, bytes]
    deleted: list[str]


@dataclass
class Request:
    method: str
    path: str
    authorization: str | None
    body: bytes


@dataclass
class HubStub:
    """`with HubStub() as hub:` serves on `hub.url`; `hub.requests`, `hub.repos`, `hub.branches`, `hub.commits`."""

    requests: list[Request] = field(default_factory=list)
    repos: list[dict] = field(default_factory=list)
    branches: list[tuple[str, str]] = field(default_factory=list)
    commits: list[Commit] = field(default_factory=list)
    echo_token_on_commit: bool = False  # refuse commits with an error text that repeats the request's token
    remote_files: dict[str, list[str]] = field(default_factory=dict)  # repo id -> files already on the "Hub"

    def __enter__(self) -> "HubStub":
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def _reply(self, status: int, payload) -> None:
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                stub.requests.append(Request(self.command, self.path, self.headers.get("Authorization"), body))
                if RESOLVE.fullmatch(self.path.split("?")[0]):
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                try:
                    status, payload = stub.answer(self.command, self.path.split("?")[0], body)
                except Exception as err:  # a stub bug must show up as a failed request, not a hang
                    status, payload = 500, {"error": repr(err)}
                self._reply(status, payload)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, object]:
        if method == "POST" and path == "/api/repos/create":
            spec = json.loads(body)
            self.repos.append(spec)
            repo_id = f"{spec['organization']}/{spec['name']}" if spec.get("organization") else spec["name"]
            prefix = "" if spec.get("type", "model") == "model" else f"{spec['type']}s/"
            return 200, {"url": f"{self.url}/{prefix}{repo_id}", "name": repo_id}
        if method == "POST" and path == "/api/validate-yaml":
            return 200, {}
        match = {name: pattern.fullmatch(path) for name, pattern in ROUTES.items()}
        if method == "POST" and match["preupload"]:
            files = json.loads(body)["files"]
            return 200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files]}
        if method == "POST" and match["branch"]:
            self.branches.append((match["branch"]["repo"], match["branch"]["rev"]))
            return 200, {}
        if method == "GET" and match["tree"]:
            files = self.remote_files.get(match["tree"]["repo"], [])
            return 200, [
                {"type": "file", "path": p, "size": 1, "oid": hashlib.sha1(p.encode()).hexdigest()} for p in files
            ]
        if method == "POST" and match["commit"]:
            if self.echo_token_on_commit:
                return 403, {"error": f"the token in '{self.requests[-1].authorization}' has no write access"}
            return 200, self._commit(match["commit"], body)
        return 404, {"error": f"stub: no route for {method} {path}"}

    def _commit(self, match: re.Match, body: bytes) -> dict:
        summary, files, deleted = "", {}, []
        for line in body.decode().splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                summary = item["value"]["summary"]
            elif item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            elif item["key"] in ("deletedFile", "deletedFolder"):
                deleted.append(item["value"]["path"])
            else:
                raise ValueError(f"unexpected commit entry {item['key']!r} (this stub only takes regular files)")
        self.commits.append(Commit(match["type"], match["repo"], match["rev"], summary, files, deleted))
        oid = hashlib.sha1(body).hexdigest()
        prefix = "" if match["type"] == "models" else f"{match['type']}/"
        return {"commitUrl": f"{self.url}/{prefix}{match['repo']}/commit/{oid}", "commitOid": oid}
