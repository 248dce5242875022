# Shared by scripts/dev and scripts/test. Source it; it sets ROOT, PATH and the local environment.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The project venv with the pinned Python tools (moto, cargo-lambda, SAM CLI, cfn-lint).
ensure_venv() {
  command -v python3 >/dev/null || die "python3 is needed"
  command -v cargo >/dev/null || die "cargo (Rust) is needed"
  local stamp=".venv/.requirements.sha256" want
  want="$(sha256sum scripts/requirements.txt | cut -d' ' -f1)"
  if [[ ! -x .venv/bin/python ]]; then
    log "creating the project venv (.venv)"
    python3 -m venv .venv
  fi
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "installing pinned Python tools into .venv (about 2 minutes the first time)"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
    echo "$want" > "$stamp"
  fi
  export PATH="$ROOT/.venv/bin:$PATH"
}

# checkov, the template's security scan, in a venv of its own (scripts/requirements-checkov.txt
# says why); again only when its requirements change.
ensure_checkov() {
  local venv=".local/checkov" stamp=".local/checkov/.requirements.sha256" want
  want="$(sha256sum scripts/requirements-checkov.txt | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/python" ]]; then
    log "creating checkov's venv ($venv)"
    python3 -m venv "$venv"
  fi
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "installing checkov into $venv (about a minute the first time)"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r scripts/requirements-checkov.txt
    echo "$want" > "$stamp"
  fi
}

# s3s-fs: an S3 server that verifies signatures and presigned-URL expiry, for the tests that
# must see S3 refuse a tampered or expired link (moto accepts them). Built once into .local/tools.
ensure_s3s_fs() {
  if [[ ! -x .local/tools/bin/s3s-fs ]]; then
    log "installing s3s-fs 0.14.1 into .local/tools (about 3 minutes, once)"
    cargo install s3s-fs@0.14.1 --features binary --locked --root .local/tools --quiet
  fi
}

# The page's Node packages (web/node_modules), from the committed lockfile; again only when the
# lockfile changes. Node.js and npm come with the machine; nothing is installed globally.
ensure_web() {
  command -v npm >/dev/null || die "Node.js and npm are needed for the page (web/)"
  local stamp="web/node_modules/.package-lock.sha256" want
  want="$(sha256sum web/package-lock.json | cut -d' ' -f1)"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    log "installing the page's packages (npm ci in web/)"
    npm --prefix web ci --no-audit --no-fund --loglevel=error
    echo "$want" > "$stamp"
  fi
}

# Debian's Chromium for the browser tests, with a font for Chinese text; installed with apt-get
# when missing (no browser is downloaded by npm).
ensure_browser() {
  export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
  if [[ -x "$CHROMIUM" ]] && fc-list 2>/dev/null | grep -qi 'Noto Sans CJK'; then return; fi
  log "installing Debian's chromium and fonts-noto-cjk (apt-get)"
  local sudo=""
  [[ "$(id -u)" == 0 ]] || sudo="sudo"
  local install=($sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium fonts-noto-cjk)
  "${install[@]}" >/dev/null 2>&1 || { $sudo apt-get update -q >/dev/null && "${install[@]}" >/dev/null; } \
    || die "could not install chromium with apt-get"
}

# Builds the page into web/dist and writes its config.json for the local provider.
build_web() {
  npm --prefix web run --silent build
  cat > web/dist/config.json <<JSON
{"issuer": "$LOCAL_OIDC_ISSUER", "clientId": "$LOCAL_OIDC_CLIENT_ID", "audience": "$LOCAL_OIDC_AUDIENCE", "scope": "openid email profile activity-log"}
JSON
}

# Pins the local signing key's public half in the page's config (web/dist/config.json), as
# scripts/deploy pins the stack's SigningPublicKeyPem: Verify checks checkpoints with it.
pin_signing_key() {
  python - "$AWS_ENDPOINT_URL" "$SIGNING_KEY_ID" web/dist/config.json <<'PY'
import base64, json, sys
import boto3
endpoint, key_id, path = sys.argv[1:]
der = boto3.client("kms", endpoint_url=endpoint).get_public_key(KeyId=key_id)["PublicKey"]
b64 = base64.b64encode(der).decode()
lines = [b64[i:i + 64] for i in range(0, len(b64), 64)]
pem = "\n".join(["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----"]) + "\n"
with open(path, encoding="utf-8") as f:
    config = json.load(f)
config["signingPublicKeyPem"] = pem
with open(path, "w", encoding="utf-8") as f:
    json.dump(config, f)
PY
}

# The functions as cargo lambda watch runs them (`cargo run --bin <name>` from the workspace root),
# and the dev tool. Named with --bin from the root, not with -p: with -p cargo resolves the
# dependencies' features for those packages alone, a set that watch never runs, so every AWS SDK
# crate would be compiled twice (minutes, and about a GB of disk). The tests' build (cargo test
# --workspace) shares these dependencies.
build_functions() {
  cargo build --bin record-activity --bin query-activity --bin export-activity --bin export-worker \
    --bin integrity --bin seal-heads --bin sequence-feed --bin manage-destinations \
    --bin deliver-feed --bin devtool
}

# Local settings: the development defaults of scripts/local.env (the one place they are written)
# and the local ports and endpoints; every one can be overridden from the shell.
local_env() {
  local name value
  while IFS='=' read -r name value; do
    [[ -z "$name" || "$name" == \#* ]] && continue
    [[ -n "${!name:-}" ]] || export "$name=$value"
  done < "$ROOT/scripts/local.env"
  export ACTIVITY_LOG_AWS_PORT="${ACTIVITY_LOG_AWS_PORT:-4566}"
  export ACTIVITY_LOG_API_PORT="${ACTIVITY_LOG_API_PORT:-9000}"
  export AWS_DEFAULT_REGION="$AWS_REGION"
  export AWS_ENDPOINT_URL="${AWS_ENDPOINT_URL:-http://127.0.0.1:$ACTIVITY_LOG_AWS_PORT}"
  export AUTH_MODE=local
  export ACTIVITY_LOG_WEB_PORT="${ACTIVITY_LOG_WEB_PORT:-8080}"
  export LOCAL_OIDC_ISSUER="${LOCAL_OIDC_ISSUER:-http://127.0.0.1:$ACTIVITY_LOG_IDP_PORT}"
  export LOCAL_OIDC_JWKS_FILE="$ROOT/${LOCAL_OIDC_JWKS_FILE#"$ROOT/"}"
  export LOCAL_OIDC_SIGNING_KEY_FILE="$ROOT/${LOCAL_OIDC_SIGNING_KEY_FILE#"$ROOT/"}"
  # The export API starts the worker through the Invoke API that cargo lambda watch serves.
  export AWS_ENDPOINT_URL_LAMBDA="${AWS_ENDPOINT_URL_LAMBDA:-http://127.0.0.1:$ACTIVITY_LOG_API_PORT}"
  export SAM_CLI_TELEMETRY=0
}

# Prints the HTTP status of a GET (000 when nothing answers); optional bearer token.
http_status() {
  python3 - "$@" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Authorization", "Bearer " + sys.argv[2])
try:
    print(urllib.request.urlopen(req, timeout=600).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
}

# Polls a URL until it answers at all, with a deadline (seconds).
wait_for_http() {
  local url="$1" deadline=$(( SECONDS + $2 )) what="$3"
  until [[ "$(http_status "$url")" != 000 ]]; do
    (( SECONDS < deadline )) || die "$what did not start within $2 s"
    sleep 0.5
  done
}
