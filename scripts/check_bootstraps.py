"""Checks what `sam build` made of each function (scripts/build runs it after the build).

For every function the Makefile builds (its build-<LogicalId> targets):
  - <build-dir>/<LogicalId>/bootstrap exists, is executable, and is a 64-bit little-endian ELF
    executable for the architecture asked (x86-64 or AArch64);
  - it needs no glibc newer than provided.al2023's (2.34);
  - it is the bootstrap cargo lambda built for that function's crate, and no two functions
    share one;
  - where this machine runs that architecture: started as Lambda starts it (AWS_LAMBDA_RUNTIME_API
    and the variables Lambda sets, nothing reachable in AWS), it takes an invocation from a
    Runtime API served here and answers it (HTTP functions: 401 for a request without a verified
    identity; the export worker: an error for an event that names no job), and every line it
    logs is a JSON object.
Exit 0 when all hold; otherwise each failure is printed and the exit code is 1.
"""

import argparse
import hashlib
import json
import os
import platform
import re
import secrets
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

GLIBC_MAX = (2, 34)  # Amazon Linux 2023, the provided.al2023 runtime
ELF_MACHINE = {"x86_64": 62, "arm64": 183}
HOST = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}

# The route each HTTP function is asked for, as API Gateway's payload 2.0 carries it.
HTTP_ROUTES = {
    "record-activity": ("POST", "/activities"),
    "query-activity": ("GET", "/activities"),
    "export-activity": ("POST", "/exports"),
    "integrity": ("GET", "/integrity/public-key"),
    "manage-destinations": ("GET", "/destinations"),
}

# The event each other function is given: one it cannot serve without AWS (nothing is reachable),
# so its answer is an error. The sequencer: a stream record inserting an activity; delivery: its
# schedule's event (it reads every destination).
EVENTS = {
    "deliver-feed": {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}},
    "sequence-feed": {
        "Records": [
            {
                "eventName": "INSERT",
                "dynamodb": {
                    "Keys": {"pk": {"S": "P#p1#C#c1"}, "sk": {"S": "A#a1"}},
                    "NewImage": {
                        "partnerId": {"S": "p1"},
                        "customerId": {"S": "c1"},
                        "id": {"S": "a1"},
                        "ttl": {"N": "1900000000"},
                    },
                },
            }
        ]
    },
}


def functions(makefile: Path) -> dict[str, str]:
    """LogicalId -> crate, from the Makefile's build-<LogicalId> targets."""
    found = dict(
        re.findall(r"^build-(\w+): functions\n\t\$\(call copy-bootstrap,([\w-]+)\)", makefile.read_text(), re.M)
    )
    if not found:
        sys.exit(f"error: no build-<LogicalId> target in {makefile}")
    return found


def elf_problems(data: bytes, architecture: str) -> list[str]:
    if data[:4] != b"\x7fELF":
        return ["not an ELF file"]
    problems = []
    if data[4] != 2 or data[5] != 1:
        problems.append("not a 64-bit little-endian ELF")
    e_type, e_machine = int.from_bytes(data[16:18], "little"), int.from_bytes(data[18:20], "little")
    if e_type not in (2, 3):
        problems.append(f"ELF type {e_type} is not an executable")
    if e_machine != ELF_MACHINE[architecture]:
        problems.append(f"built for ELF machine {e_machine}, not {architecture} ({ELF_MACHINE[architecture]})")
    needed = {tuple(map(int, v)) for v in re.findall(rb"GLIBC_(\d+)\.(\d+)", data)}
    newest = max(needed, default=None)
    if newest and newest > GLIBC_MAX:
        problems.append(f"needs glibc {newest[0]}.{newest[1]}, newer than provided.al2023's 2.34")
    return problems


def api_event(method: str, path: str) -> dict:
    # No authorizer: what the function sees if a route were reached without the JWT authorizer.
    return {
        "version": "2.0",
        "routeKey": f"{method} {path}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "api",
            "domainName": "api.example.com",
            "domainPrefix": "api",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "192.0.2.1", "userAgent": "check_bootstraps"},
            "requestId": "check-request-1",
            "routeKey": f"{method} {path}",
            "stage": "$default",
            "time": "28/Nov/2026:00:00:00 +0000",
            "timeEpoch": 1795824000000,
        },
        "body": "[]" if method == "POST" else None,
        "isBase64Encoded": False,
    }


class RuntimeApi:
    """One invocation through the Lambda Runtime API (2018-06-01), as Lambda serves it."""

    def __init__(self, event: dict):
        self.event = json.dumps(event).encode()
        self.answered = threading.Event()
        self.stopped = threading.Event()
        self.served = False
        self.outcome: tuple[str, bytes] | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path != "/2018-06-01/runtime/invocation/next":
                    self.send_error(404)
                    return
                if api.served:
                    # One invocation only: the next is never given (as Lambda freezes an idle
                    # function); the process is stopped.
                    api.stopped.wait(60)
                    self.close_connection = True
                    return
                api.served = True
                self.send_response(200)
                self.send_header("Lambda-Runtime-Aws-Request-Id", "check-invocation-1")
                self.send_header("Lambda-Runtime-Deadline-Ms", str(int(time.time() * 1000) + 30000))
                self.send_header("Lambda-Runtime-Invoked-Function-Arn",
                                 "arn:aws:lambda:us-east-1:123456789012:function:check")
                self.send_header("Lambda-Runtime-Trace-Id", "Root=1-00000000-000000000000000000000000")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(api.event)))
                self.end_headers()
                self.wfile.write(api.event)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                kind = self.path.rsplit("/", 1)[-1]  # response, error (invocation or init)
                api.outcome = ("init-error" if "/init/" in self.path else kind, body)
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()
                api.answered.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"


def run_once(bootstrap: Path, crate: str) -> list[str]:
    method_path = HTTP_ROUTES.get(crate)
    api = RuntimeApi(api_event(*method_path) if method_path else EVENTS.get(crate, {}))
    env = {
        "PATH": "/usr/bin:/bin",
        "AWS_LAMBDA_RUNTIME_API": api.address,
        "AWS_LAMBDA_FUNCTION_NAME": crate,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
        "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{crate}",
        "AWS_LAMBDA_LOG_STREAM_NAME": "check",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "LAMBDA_TASK_ROOT": str(bootstrap.parent),
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "check",
        "AWS_SECRET_ACCESS_KEY": "check",
        # Nothing it could reach: the answers asked for need no AWS call.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "TABLE_NAME": "check",
        "BUCKET_NAME": "check",
        "SUBSCRIPTIONS_URL_TEMPLATE": "https://partner.example.com/customers/{customerId}",
        "CURSOR_SIGNING_KEY": secrets.token_hex(32),
        "SIGNING_KEY_ID": "alias/check",
        "ANCHOR_BUCKET": "check-anchors",
        "EXPORT_WORKER_FUNCTION": "export-worker",
        "RUST_LOG": "info",
    }
    proc = subprocess.Popen([str(bootstrap)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        answered = api.answered.wait(30)
    finally:
        proc.kill()
        output = proc.communicate()[0].decode(errors="replace")
        api.stopped.set()
        api.server.shutdown()
    problems = []
    if not answered or api.outcome is None:
        return [f"answered no invocation in 30 s; its output:\n{output}"]
    kind, body = api.outcome
    if method_path:
        try:
            answer = json.loads(body)
            status, payload = answer.get("statusCode"), json.loads(answer.get("body") or "{}")
            code = payload.get("error", {}).get("code")
        except (ValueError, AttributeError) as e:
            return [f"{kind} is not an API Gateway response ({e}): {body[:300]!r}"]
        if kind != "response" or status != 401 or code != "Unauthenticated":
            problems.append(f"expected a 401 Unauthenticated response, got {kind} {status}: {payload}")
        else:
            print(f"    answered {method_path[0]} {method_path[1]}: {status} {code}")
    else:
        if kind != "error":
            problems.append(f"expected an error (the worker: an event naming no job; the sealer and the sequencer: no AWS to reach), got {kind}: {body[:300]!r}")
        else:
            print(f"    answered an event with an error: {body[:120].decode(errors='replace')}")
    lines = [line for line in output.splitlines() if line.strip()]
    not_json, unnamed = [], []
    for line in lines:
        try:
            parsed = json.loads(line)
        except ValueError:
            not_json.append(line)
            continue
        # A log line names its function as `function`, a metric line (EMF) as `Function`.
        if not isinstance(parsed, dict) or crate not in (parsed.get("function"), parsed.get("Function")):
            unnamed.append(line)
    if not_json:
        problems.append("logged lines that are not JSON:\n      " + "\n      ".join(not_json[:5]))
    if unnamed:
        problems.append(f"logged lines that do not name {crate}:\n      " + "\n      ".join(unnamed[:5]))
    if lines and not not_json and not unnamed:
        print(f"    {len(lines)} log line(s), each a JSON object naming {crate}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build-dir", required=True, type=Path)
    parser.add_argument("--architecture", required=True, choices=sorted(ELF_MACHINE))
    parser.add_argument("--lambda-dir", required=True, type=Path, help="where cargo lambda put the bootstraps")
    parser.add_argument("--makefile", default=Path("Makefile"), type=Path)
    args = parser.parse_args()

    runs_here = HOST.get(platform.machine().lower()) == args.architecture
    failures, digests = [], {}
    for logical_id, crate in functions(args.makefile).items():
        bootstrap = args.build_dir / logical_id / "bootstrap"
        print(f"  {logical_id} ({crate}): {bootstrap}")
        if not bootstrap.is_file():
            failures.append(f"{logical_id}: no {bootstrap}")
            continue
        problems = []
        if not os.access(bootstrap, os.X_OK):
            problems.append("not executable")
        data = bootstrap.read_bytes()
        problems += elf_problems(data, args.architecture)
        digest = hashlib.sha256(data).hexdigest()
        built = args.lambda_dir / crate / "bootstrap"
        if not built.is_file() or hashlib.sha256(built.read_bytes()).hexdigest() != digest:
            problems.append(f"is not the bootstrap cargo lambda built for {crate} ({built})")
        if digest in digests:
            problems.append(f"is the same file as {digests[digest]}'s")
        digests[digest] = logical_id
        if not problems:
            print(f"    {len(data) / 1e6:.1f} MB, ELF {args.architecture}, glibc <= 2.34")
            if runs_here:
                problems += run_once(bootstrap, crate)
        failures += [f"{logical_id}: {p}" for p in problems]
    if not runs_here:
        print(f"  (this machine is {platform.machine()}: the {args.architecture} bootstraps were checked, not run)")
    for failure in failures:
        print(f"FAILED {failure}", file=sys.stderr)
    if not failures:
        print(f"all {len(digests)} bootstraps checked")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
