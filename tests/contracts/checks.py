"""The Python half of tests/contracts/run: each subcommand is one check, prints what it found, and
exits non-zero on any violation. See tests/contracts/README.md for what each validates and why.

  checks.py snapshots ROOT ALLOWLIST      Slack Block Kit snapshots: slack_sdk models + message limits
  checks.py discord-files ROOT OUT        writes the Discord payload snapshots' JSON, one file each
  checks.py manifest SCHEMA_DIR FILE...   Slack app manifests (YAML) against Slack's JSON schema
  checks.py openmetrics FILE              a strict OpenMetrics parse of a /metrics answer
  checks.py router PORT SESSIONS SERVER LOG DOC...   the FullStory/Zendesk router in front of Prism
"""

import json
import os
import pathlib
import re
import sys
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Slack's message-level limits (api.slack.com/reference/block-kit/blocks, chat.postMessage).
SLACK_MAX_BLOCKS = 50
SLACK_MAX_TEXT = 40_000


def snapshot_bodies(root):
    """(path, parsed JSON) of every insta snapshot under src/ and tests/ whose body is JSON."""
    root = pathlib.Path(root)
    for path in sorted(list(root.glob("src/**/snapshots/*.snap")) + list(root.glob("tests/**/snapshots/*.snap"))):
        text = path.read_text(encoding="utf-8")
        # insta: a YAML header between two `---` lines, then the snapshot.
        parts = text.split("\n---\n", 1)
        body = parts[1] if len(parts) == 2 and text.startswith("---") else text
        try:
            yield path.relative_to(root), json.loads(body)
        except ValueError:
            continue


def is_slack_message(value):
    return isinstance(value, dict) and isinstance(value.get("blocks"), list)


def is_discord_message(value):
    return isinstance(value, dict) and not is_slack_message(value) and (
        isinstance(value.get("embeds"), list) or isinstance(value.get("components"), list)
    )


def allowlist(path):
    """Snapshot names whose known defect the render branch owns: expected to fail, reported as such."""
    try:
        lines = pathlib.Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return set()
    return {line.split("#", 1)[0].strip() for line in lines} - {""}


def slack_problems(message):
    from slack_sdk.models.blocks import Block

    problems = []
    blocks = message["blocks"]
    if len(blocks) > SLACK_MAX_BLOCKS:
        problems.append(f"{len(blocks)} blocks (Slack allows {SLACK_MAX_BLOCKS})")
    text = message.get("text")
    if isinstance(text, str) and len(text) > SLACK_MAX_TEXT:
        problems.append(f"text of {len(text)} characters (Slack allows {SLACK_MAX_TEXT})")
    for n, raw in enumerate(blocks):
        try:
            block = Block.parse(raw)
            if block is None or type(block).__name__ == "Block":
                problems.append(f"block {n}: slack_sdk does not know the type {raw.get('type')!r}")
                continue
            block.validate_json()
            # Elements inside the block (buttons, texts) validate through their own models too.
            if block.to_dict() is None:
                problems.append(f"block {n}: does not serialise")
        except Exception as error:  # slack_sdk raises SlackObjectFormationError and friends
            problems.append(f"block {n} ({raw.get('type')}): {error}")
    return problems


def check_snapshots(root, allow_path):
    allowed = allowlist(allow_path)
    checked, failed, expected = 0, [], []
    for path, body in snapshot_bodies(root):
        if not is_slack_message(body):
            continue
        checked += 1
        problems = slack_problems(body)
        name = path.name
        if problems and name in allowed:
            expected.append(name)
            print(f"  expected failure (allow-listed): {path}: {'; '.join(problems)}")
        elif problems:
            failed.append(name)
            print(f"  FAIL {path}: {'; '.join(problems)}")
        elif name in allowed:
            failed.append(name)
            print(f"  FAIL {path}: passes now; remove it from {allow_path}")
    print(f"  {checked} Slack message snapshots, {len(failed)} failed, {len(expected)} allow-listed")
    return 1 if failed or checked == 0 else 0


def write_discord_files(root, out):
    out = pathlib.Path(out)
    out.mkdir(parents=True, exist_ok=True)
    count = 0
    for path, body in snapshot_bodies(root):
        if is_discord_message(body):
            (out / (path.name + ".json")).write_text(
                json.dumps({"path": str(path), "message": body}), encoding="utf-8"
            )
            count += 1
    print(count)
    return 0


def check_manifests(schema_dir, files):
    import yaml
    from jsonschema import Draft7Validator
    from referencing import Registry, Resource

    schema_dir = pathlib.Path(schema_dir)
    registry = Registry()
    # The schema's $refs point at tag v0.5.0 of its own files: served from the vendored copy.
    for local in sorted((schema_dir / "schemas").glob("*.json")):
        url = f"https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/{local.name}"
        registry = registry.with_resource(url, Resource.from_contents(json.loads(local.read_text())))
    schema = json.loads((schema_dir / "manifest.schema.json").read_text())
    validator = Draft7Validator(schema, registry=registry)
    failed = 0
    for file in files:
        manifest = yaml.safe_load(pathlib.Path(file).read_text(encoding="utf-8"))
        errors = sorted(validator.iter_errors(manifest), key=lambda e: list(e.path))
        for error in errors:
            where = "/".join(str(p) for p in error.path) or "(top)"
            print(f"  FAIL {pathlib.Path(file).name}: {where}: {error.message[:300]}")
        failed += bool(errors)
        if not errors:
            print(f"  ok {pathlib.Path(file).name}")
    print(f"  {len(files)} manifests, {failed} failed")
    return 1 if failed or not files else 0


def check_openmetrics(file):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    text = pathlib.Path(file).read_text(encoding="utf-8")
    try:
        families = list(text_string_to_metric_families(text))
    except Exception as error:
        print(f"  FAIL: {error}")
        return 1
    helpless = [f.name for f in families if not f.documentation]
    for name in helpless:
        print(f"  FAIL: {name} has no HELP text")
    samples = sum(len(f.samples) for f in families)
    print(f"  {len(families)} families, {samples} samples")
    return 1 if helpless or not families else 0


# ---------------------------------------------------------------- the router in front of Prism

# Paths of the Sessions API seed document; everything else under /v2 is the Server API document.
SESSIONS_PATHS = re.compile(r"^/sessions/v2$|^/v2/sessions/[^/]+/(events|summary)$")
# Requests replaydesk makes that the seeds lack, on purpose (tests/contracts/README.md).
# Prism answers these "no such path" (404) or "no such method" (405); the router answers 404 for both, as a
# FullStory without the endpoint would, which is the answer replaydesk degrades on ("not available").
DOCUMENTED_EXCEPTIONS = [
    ("GET", re.compile(r"^/v2/(users|events)/batch/[^/]+$")),  # batch import status
    ("GET", re.compile(r"^/v2/users$")),  # users by email (`GET /v2/users?email=`, "List users")
]
# Query parameters FullStory documents that the seeds do not declare (OpenAPI allows undeclared query
# parameters and Prism accepts them, so this router is stricter: anything else undeclared is a violation).
DOCUMENTED_EXTRA_PARAMETERS = {("GET", "/v2/sessions/{sessionId}/summary"): {"end_timestamp"}}


def declared_parameters(documents):
    """{(METHOD, path template regex, template): set of declared query parameter names} of the seeds."""
    import yaml

    table = []
    for document in documents:
        spec = yaml.safe_load(pathlib.Path(document).read_text(encoding="utf-8"))
        shared = spec.get("components", {}).get("parameters", {})

        def resolve(parameter):
            ref = parameter.get("$ref", "")
            return shared.get(ref.rsplit("/", 1)[-1], {}) if ref else parameter

        for template, operations in spec.get("paths", {}).items():
            pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$")
            for method, operation in operations.items():
                names = {resolve(p).get("name") for p in operation.get("parameters", [])
                         if resolve(p).get("in") == "query"}
                table.append((method.upper(), pattern, template, names))
    return table


def undeclared_query(table, method, path, query):
    from urllib.parse import parse_qsl

    sent = {name for name, _ in parse_qsl(query, keep_blank_values=True)}
    for m, pattern, template, names in table:
        if m == method and pattern.match(path):
            extra = sent - names - DOCUMENTED_EXTRA_PARAMETERS.get((method, template), set())
            return sorted(extra)
    return []


def zendesk_answer(path):
    """The few Zendesk API answers `zendesk backfill` needs: one ticket from one customer. Not the
    address the `forget` check erases just before: an erased address is remembered (a tombstone) and
    backfill rightly sends nothing about it."""
    if path.startswith("/api/v2/incremental/tickets/cursor.json"):
        created = (datetime.now(timezone.utc) - timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "tickets": [{"id": 4242, "subject": "Checkout fails", "created_at": created,
                         "updated_at": created, "requester_id": 7, "status": "open"}],
            "users": [{"id": 7, "email": "sam@acme.example", "role": "end-user"}],
            "end_of_stream": True,
        }
    return None


def recent_sessions():
    """The session list answered once Prism accepted the request: Prism's own example is a 2019 session
    with the id "string", which lookup would drop, so the events and summary calls would not be made."""
    created = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    session = "5191865402245120:4000000000000003"
    # `userId` is FullStory's documented field (not in the seed's Session): it makes `forget` read and
    # delete the user, so those requests are validated too.
    return {"sessions": [{"sessionId": session, "created": created, "userId": "5191865402245120",
                          "url": f"https://app.fullstory.com/ui/o-1/session/{session}"}]}


def run_router(port, sessions_port, server_port, log_path, *documents):
    log = open(log_path, "a", encoding="utf-8")
    parameters = declared_parameters(documents)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body, content_type="application/json"):
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def handle_any(self):
            path = self.path.split("?", 1)[0]
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else None
            zendesk = zendesk_answer(self.path)
            if zendesk is not None:
                return self.reply(200, zendesk)
            target = sessions_port if SESSIONS_PATHS.match(path) else server_port
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            request = urllib.request.Request(
                f"http://127.0.0.1:{target}{self.path}", data=body, headers=headers, method=self.command
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as answer:
                    status, headers, data = answer.status, answer.headers, answer.read()
            except urllib.error.HTTPError as error:
                status, headers, data = error.code, error.headers, error.read()
            content_type = headers.get("content-type", "")
            # Prism lists what it found wrong with the request in `sl-violations` (any severity), and
            # answers problem+json when it could not serve the request at all (no such path, --errors).
            violations = [v for v in json.loads(headers.get("sl-violations") or "[]")
                          if str(v.get("location", ["request"])[0]) == "request"]
            excepted = any(m == self.command and p.match(path) for m, p in DOCUMENTED_EXCEPTIONS)
            extra = undeclared_query(parameters, self.command, path, self.path.partition("?")[2])
            if violations:
                verdict, detail = "VIOLATION", json.dumps(violations)[:600]
            elif "problem+json" in content_type:
                verdict = "EXCEPTION" if excepted else "VIOLATION"
                detail = data.decode("utf-8", "replace")[:600]
            elif extra:
                verdict, detail = "VIOLATION", f"query parameters the seed does not declare: {extra}"
            else:
                verdict, detail = "ok", ""
            log.write(json.dumps({"verdict": verdict, "method": self.command, "path": path,
                                  "status": status, "detail": detail}) + "\n")
            log.flush()
            if verdict == "ok" and path == "/sessions/v2" and 200 <= status < 300:
                return self.reply(status, recent_sessions())
            if verdict == "EXCEPTION":
                return self.reply(404, {"code": 404, "message": "Not Found"})
            self.reply(status, data, content_type or "application/json")

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = handle_any

    ThreadingHTTPServer(("127.0.0.1", int(port)), Handler).serve_forever()


def adf_documents(value):
    """Every ADF document (`{"type": "doc", "version": 1, ...}`) inside a JSON value."""
    if isinstance(value, dict):
        if value.get("type") == "doc" and "version" in value:
            yield value
            return
        for item in value.values():
            yield from adf_documents(item)
    elif isinstance(value, list):
        for item in value:
            yield from adf_documents(item)


def check_adf(root, schema_path):
    """Every ADF document in the snapshots (a Jira issue's description) against Atlassian's ADF JSON
    schema (draft-04); a deliberately bad document must be refused, or the check means nothing."""
    import jsonschema

    schema = json.loads(pathlib.Path(schema_path).read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema)
    bad = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": [{"type": "text", "text": ""}]}]}
    if not list(validator.iter_errors(bad)):
        print("the schema accepted an empty text node: not the ADF schema?")
        return 1
    documents = failures = 0
    for path, body in snapshot_bodies(root):
        for document in adf_documents(body):
            documents += 1
            errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
            for error in errors[:5]:
                print(f"{path}: {'/'.join(map(str, error.path))}: {error.message[:300]}")
            failures += bool(errors)
    if documents == 0:
        print("no ADF document in the snapshots")
        return 1
    print(f"  {documents} ADF document(s), {failures} invalid; the bad one refused")
    return 1 if failures else 0


def main(argv):
    command, args = argv[1], argv[2:]
    if command == "snapshots":
        return check_snapshots(*args)
    if command == "discord-files":
        return write_discord_files(*args)
    if command == "manifest":
        return check_manifests(args[0], args[1:])
    if command == "openmetrics":
        return check_openmetrics(*args)
    if command == "adf":
        return check_adf(*args)
    if command == "router":
        return run_router(*args)
    print(f"unknown check {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
