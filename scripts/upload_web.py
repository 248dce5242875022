#!/usr/bin/env python3
"""Uploads the built Activity Log page (web/dist) to its bucket and writes its config.json.

usage: scripts/upload_web.py --bucket B --dist DIR --issuer URL --client-id ID
                             [--audience A] [--scope S] [--signing-public-key PEM_FILE]
                             [--distribution-id D] [--region R]

Every file of DIR goes up with its Content-Type. Files under assets/ have hashed names and never
change: `Cache-Control: public, max-age=31536000, immutable`. Everything else (index.html,
config.json, favicon …) is `no-cache`, so a deploy shows at once. The order is assets, other
files, config.json, and index.html last: a visitor never gets an index.html whose scripts are not
up yet. Then the objects the build no longer has are deleted, except old assets (see below), and
with --distribution-id the changed non-asset paths are invalidated in CloudFront.

config.json is {"issuer", "clientId", "audience", "scope", "signingPublicKeyPem"} (the last three only
when given; the key is the stack's SigningPublicKeyPem, which Verify then checks checkpoints with);
a config.json in DIR is not uploaded. Files and folders whose names start with a dot (.vite/) are
not part of the page and are skipped.

Credentials, region and endpoint come from the usual AWS settings (AWS_PROFILE, AWS_REGION …);
AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_S3 point it at an emulator. Exit status: 0 done, 1 failed,
2 wrong arguments.
"""
import argparse
import json
import mimetypes
import os
import pathlib
import sys
import time
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent

try:
    import boto3
    import botocore.config
    import botocore.exceptions
except ImportError:  # the system Python: use the project venv's (scripts/lib.sh creates it)
    venv = ROOT / ".venv" / "bin" / "python"
    if venv.exists() and pathlib.Path(sys.executable).resolve() != venv.resolve():
        os.execv(str(venv), [str(venv), __file__, *sys.argv[1:]])
    sys.exit("upload_web.py: error: boto3 is needed (scripts/requirements.txt, in .venv)")

ASSETS = "assets/"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
CONFIG = "config.json"
INDEX = "index.html"

# The page is served with `X-Content-Type-Options: nosniff`: a script or style sheet with the
# wrong type is refused, so the types are set here rather than left to S3's default.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".webmanifest": "application/manifest+json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".wasm": "application/wasm",
}


class Failure(Exception):
    """A failure with a message for the user."""


def content_type(key):
    suffix = pathlib.PurePosixPath(key).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(key)
    return guessed or "application/octet-stream"


def cache_control(key):
    return IMMUTABLE if key.startswith(ASSETS) else NO_CACHE


def page_files(dist):
    """{key: path} of the files of the built page, keys relative to DIR with '/'."""
    files = {}
    for path in sorted(dist.rglob("*")):
        relative = path.relative_to(dist)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue
        files[relative.as_posix()] = path
    return files


def upload_order(keys):
    """Assets first, then the other files, index.html last (config.json is put before it)."""
    return sorted(keys, key=lambda k: (0 if k.startswith(ASSETS) else 2 if k == INDEX else 1, k))


def page_config(args):
    config = {"issuer": args.issuer, "clientId": args.client_id}
    if args.audience:
        config["audience"] = args.audience
    if args.scope:
        config["scope"] = args.scope
    if args.signing_public_key:
        config["signingPublicKeyPem"] = args.signing_public_key
    return json.dumps(config, indent=2).encode() + b"\n"


def s3_client(session):
    overridden = any(os.environ.get(v) for v in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"))
    # Emulators answer on a host name that has no per-bucket subdomains.
    config = botocore.config.Config(s3={"addressing_style": "path"}) if overridden else None
    return session.client("s3", config=config)


def stale_objects(s3, bucket, keep):
    """Keys in the bucket that the new page does not have, old assets excepted.

    Old assets stay: a page opened before this deploy still loads its chunks (lazy imports, a
    style sheet) by their old hashed names until it is reloaded, and a browser or CloudFront may
    still hold the old index.html for a moment. They are small and never change; deleting them
    would break those pages with 403s.
    """
    stale = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key not in keep and not key.startswith(ASSETS):
                stale.append(key)
    return stale


def delete(s3, bucket, keys):
    for start in range(0, len(keys), 1000):
        batch = keys[start : start + 1000]
        answer = s3.delete_objects(
            Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
        )
        errors = answer.get("Errors", [])
        if errors:
            listed = ", ".join(f"{e.get('Key')}: {e.get('Code')} {e.get('Message', '')}" for e in errors)
            raise Failure(f"could not delete stale objects from s3://{bucket}: {listed}")


def invalidate(session, distribution_id, keys):
    paths = sorted("/" + urllib.parse.quote(k, safe="/-._~") for k in keys)
    answer = session.client("cloudfront").create_invalidation(
        DistributionId=distribution_id,
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": paths},
            "CallerReference": f"upload_web-{time.time_ns()}",
        },
    )
    return answer["Invalidation"]["Id"], paths


def arguments(argv):
    parser = argparse.ArgumentParser(
        prog="upload_web.py",
        description="Uploads the built Activity Log page to its bucket and writes its config.json.",
    )
    parser.add_argument("--bucket", required=True, help="the stack's WebBucketName")
    parser.add_argument("--dist", required=True, type=pathlib.Path, help="the built page (web/dist)")
    parser.add_argument("--issuer", required=True, help="OpenID Connect issuer URL")
    parser.add_argument("--client-id", required=True, help="the page's OpenID Connect client id")
    parser.add_argument("--audience", help="audience the page asks tokens for (config.json)")
    parser.add_argument("--scope", help="scopes the page asks for, space-separated (config.json)")
    parser.add_argument(
        "--signing-public-key",
        type=pathlib.Path,
        help="the stack's SigningPublicKeyPem in a file: Verify checks checkpoints with it (config.json)",
    )
    parser.add_argument("--distribution-id", help="CloudFront distribution to invalidate (WebDistributionId)")
    parser.add_argument("--region", help="AWS region (default: the AWS settings')")
    args = parser.parse_args(argv)
    parsed = urllib.parse.urlsplit(args.issuer)
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if not parsed.hostname or not (parsed.scheme == "https" or (parsed.scheme == "http" and loopback)):
        parser.error(f"--issuer must be an https:// URL: {args.issuer!r}")
    for name in ("bucket", "client_id"):
        if not getattr(args, name).strip():
            parser.error(f"--{name.replace('_', '-')} must not be empty")
    if args.signing_public_key:
        try:
            pem = args.signing_public_key.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as e:
            parser.error(f"--signing-public-key {args.signing_public_key}: {e}")
        if not (pem.startswith("-----BEGIN PUBLIC KEY-----") and pem.endswith("-----END PUBLIC KEY-----")):
            parser.error(f"--signing-public-key {args.signing_public_key}: not a PEM public key")
        args.signing_public_key = pem + "\n"
    return args


def main(argv):
    args = arguments(argv)
    dist = args.dist
    if not dist.is_dir():
        raise Failure(f"--dist {dist}: no such directory (build the page first: npm --prefix web run build)")
    files = page_files(dist)
    if INDEX not in files:
        raise Failure(f"--dist {dist}: no {INDEX} in it; is it the page's build output?")
    if CONFIG in files:
        print(f"note: {dist / CONFIG} is not uploaded; config.json is written from the arguments", file=sys.stderr)
        del files[CONFIG]

    session = boto3.session.Session(region_name=args.region)
    s3 = s3_client(session)
    bucket = args.bucket
    config = page_config(args)
    keys = upload_order([*files, CONFIG])
    for key in keys:
        extra = {"ContentType": content_type(key), "CacheControl": cache_control(key)}
        if key == CONFIG:
            s3.put_object(Bucket=bucket, Key=key, Body=config, **extra)
        else:
            with files[key].open("rb") as body:
                s3.put_object(Bucket=bucket, Key=key, Body=body, **extra)
    assets = sum(1 for k in keys if k.startswith(ASSETS))
    print(f"uploaded {len(keys)} files to s3://{bucket} ({assets} assets, {len(keys) - assets} no-cache)")

    stale = stale_objects(s3, bucket, set(keys))
    delete(s3, bucket, stale)
    for key in stale:
        print(f"deleted stale s3://{bucket}/{key}")

    if args.distribution_id:
        changed = [k for k in keys if not k.startswith(ASSETS)] + stale
        invalidation, paths = invalidate(session, args.distribution_id, changed)
        print(f"invalidation {invalidation} of {args.distribution_id}: {' '.join(paths)}")


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except Failure as e:
        sys.exit(f"upload_web.py: error: {e}")
    except botocore.exceptions.NoCredentialsError:
        sys.exit("upload_web.py: error: no AWS credentials (set AWS_PROFILE, or run aws configure / aws sso login)")
    except botocore.exceptions.ClientError as e:
        error = e.response.get("Error", {})
        sys.exit(
            f"upload_web.py: error: {e.operation_name} failed: {error.get('Code', '?')}: "
            f"{error.get('Message', str(e))}"
        )
    except (botocore.exceptions.BotoCoreError, OSError) as e:
        sys.exit(f"upload_web.py: error: {e}")
