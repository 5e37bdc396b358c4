"""`civicore verify FILE`: check a credential or presentation offline.

The verifier works from a cache: the platform's trust list, the key that signs it (pinned the
first time, or given with --anchor) and each agency's status list. `--refresh URL` fills the cache
from that one platform address; nothing named inside a checked document is ever fetched. With no
network at all, verification uses what the cache holds and says when a status is unknown.

Exit codes: 0 valid, 1 not valid (the verdict says why), 2 usage or cache problems.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .errors import StatusListError, TrustListError
from .sdjwt import Verdict, verify
from .statuslist import StatusList, load_status_list_token
from .trustlist import TrustList, load_trust_list

TRUST_LIST_PATH = "/api/v1/vc/trust-list"
JWKS_PATH = "/.well-known/jwks.json"
STATUS_LIST_PATH = "/api/v1/vc/status-lists/"

MAX_FETCH = 4 * 1024 * 1024
MAX_FILE = 1024 * 1024


class CacheError(Exception):
    pass


def default_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "civicore" / "verify"


def _fetch(url: str, timeout: float) -> bytes:
    if not url.startswith(("https://", "http://")):
        raise CacheError(f"not an http(s) address: {url}")
    request = urllib.request.Request(url, headers={"User-Agent": "civicore-verify"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) only
            data = response.read(MAX_FETCH + 1)
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise CacheError(f"could not fetch {url}: {exc}") from exc
    if len(data) > MAX_FETCH:
        raise CacheError(f"{url} answered more than {MAX_FETCH} bytes")
    return data


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _status_file(cache: Path, uri: str) -> Path:
    return cache / "status" / (hashlib.sha256(uri.encode()).hexdigest() + ".jwt")


def _anchors(cache: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads((cache / "anchors.json").read_text())
    except (OSError, ValueError) as exc:
        raise CacheError("no pinned platform key: run with --refresh URL (or --anchor JWKS)") from exc
    keys = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(keys, list) or not keys:
        raise CacheError("the pinned platform keys are unreadable")
    # Only the key types the verifier reads can sign the trust list.
    usable = [key for key in keys if isinstance(key, dict) and key.get("kty") in {"EC", "OKP"}]
    if not usable:
        raise CacheError("the pinned platform keys hold no EC or OKP key")
    return usable


def refresh(cache: Path, url: str, *, anchor: Path | None = None, timeout: float = 10.0) -> TrustList:
    """Fetch the trust list (and every agency's status list) from one platform address."""
    base = url.rstrip("/")
    if anchor is not None:
        _write(cache / "anchors.json", anchor.read_bytes())
    elif not (cache / "anchors.json").exists():
        # Trust on first use: the platform's keys are pinned now and kept for later refreshes.
        _write(cache / "anchors.json", _fetch(base + JWKS_PATH, timeout))
    anchors = _anchors(cache)
    token = _fetch(base + TRUST_LIST_PATH, timeout).decode("ascii", errors="replace").strip()
    try:
        trust = load_trust_list(token, anchors=anchors, now=int(time.time()))
    except TrustListError as exc:
        raise CacheError(f"the trust list from {base} did not verify: {exc.code}: {exc}") from exc
    _write(cache / "trust-list.jwt", token.encode())
    _write(cache / "origin", base.encode())
    for iss in trust.issuers:
        code = iss.rsplit("/", 1)[-1]
        uri = base + STATUS_LIST_PATH + code
        try:
            status_token = _fetch(uri, timeout)
        except CacheError:
            continue
        _write(_status_file(cache, uri), status_token)
    return trust


def load_cached(cache: Path, *, now: int) -> TrustList:
    try:
        token = (cache / "trust-list.jwt").read_text().strip()
    except OSError as exc:
        raise CacheError("no cached trust list: run with --refresh URL first") from exc
    try:
        return load_trust_list(token, anchors=_anchors(cache), now=now)
    except TrustListError as exc:
        raise CacheError(f"the cached trust list is not usable ({exc.code}): refresh it") from exc


def cached_statuses(cache: Path, trust: TrustList, *, now: int) -> Any:
    loaded: dict[str, StatusList | None] = {}

    def lookup(uri: str, idx: int) -> int | None:
        if uri not in loaded:
            try:
                token = _status_file(cache, uri).read_text().strip()
                loaded[uri] = load_status_list_token(token, trust=trust, uri=uri, now=now)
            except (OSError, StatusListError):
                loaded[uri] = None
        found = loaded[uri]
        if found is None:
            return None
        try:
            return found.get(idx)
        except (IndexError, ValueError, StatusListError):
            return None

    return lookup


def check(data: bytes, *, cache: Path, audience: str | None = None, nonce: str | None = None) -> Verdict:
    now = int(time.time())
    trust = load_cached(cache, now=now)
    text = data.decode("utf-8", errors="replace").strip()
    return verify(
        text,
        trust=trust,
        now=now,
        audience=audience,
        nonce=nonce,
        statuses=cached_statuses(cache, trust, now=now),
    )


def _describe(verdict: Verdict) -> str:
    lines = [f"verdict: {verdict.status}", f"detail: {verdict.detail}"]
    if verdict.issuer:
        name = (verdict.issuer_name or {}).get("en") or (verdict.issuer_name or {}).get("vi") or ""
        lines.append(f"issuer: {verdict.issuer}{f' ({name})' if name else ''}")
    if verdict.issued_at:
        lines.append(f"issued: {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(verdict.issued_at))}")
    if verdict.ok:
        shown = {
            k: v for k, v in verdict.claims.items() if k not in {"iss", "vct", "iat", "exp", "cnf", "status"}
        }
        lines.append("claims: " + json.dumps(shown, ensure_ascii=False, sort_keys=True))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="civicore verify", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "file", nargs="?", help="the credential or presentation file ('-' for standard input)"
    )
    parser.add_argument(
        "--refresh", metavar="URL", help="fetch the trust list and status lists from this platform"
    )
    parser.add_argument(
        "--anchor", metavar="JWKS", type=Path, help="pin the platform keys from this JWKS file"
    )
    parser.add_argument("--cache", metavar="DIR", type=Path, default=None, help="cache directory")
    parser.add_argument("--audience", help="the audience a presentation must name")
    parser.add_argument("--nonce", help="the nonce a presentation must name")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")
    args = parser.parse_args(argv)
    cache = args.cache or default_cache()
    try:
        if args.refresh:
            trust = refresh(cache, args.refresh, anchor=args.anchor)
            print(f"trust list cached: {len(trust.issuers)} issuing agencies", file=sys.stderr)
        if not args.file:
            return 0 if args.refresh else _usage(parser)
        data = sys.stdin.buffer.read(MAX_FILE + 1) if args.file == "-" else Path(args.file).read_bytes()
        if len(data) > MAX_FILE:
            print("error: the file is too large to be a credential", file=sys.stderr)
            return 2
        if data.lstrip()[:5] == b"%PDF-":
            print(
                "error: PDF results are checked at the platform's /verify page or with pdfsig",
                file=sys.stderr,
            )
            return 2
        verdict = check(data, cache=cache, audience=args.audience, nonce=args.nonce)
    except CacheError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({**verdict.__dict__}, ensure_ascii=False, default=str))
    else:
        print(_describe(verdict))
    return 0 if verdict.ok else 1


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_usage(sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
