"""A witness of a transparency log: checks that each new signed tree head extends the last one seen.

It keeps, in a small JSON state file, the log's id and signing keys as first seen (trust on first
use) and the last head it accepted. Each check fetches the latest head, verifies its signature
with a pinned key, asks the log for the consistency proof from the remembered head and verifies
it locally with `merkle.check_consistency`; the new head is saved only when all is well. It only
ever contacts the URL it was given: no redirect is followed and no URL is taken from an answer.
Needs no database, so it runs anywhere the civicore package is installed.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from civicore.transparency import merkle

TREE_HEAD_TYPE = "tree-head+jwt"
ALGORITHMS = ["ES256"]
MAX_ANSWER = 1 << 20  # bytes; a head, a JWKS or a proof is a few kilobytes
TIMEOUT = 20.0

# Exit codes, one per kind of verdict.
OK = 0
FORK = 2
BAD_SIGNATURE = 3
UNREACHABLE = 4


@dataclass
class Verdict:
    code: int
    kind: str  # first_sight, consistent, unchanged, fork, truncated, bad_signature, unreachable
    message: str
    notes: list[str] = field(default_factory=list)


class _Stop(Exception):
    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.message)
        self.verdict = verdict
        self.status: int | None = None  # the HTTP status, when the server answered one


@dataclass(frozen=True)
class Head:
    log: str
    size: int
    root: bytes
    timestamp: int
    kid: str
    jws: str

    def describe(self) -> str:
        return f"size {self.size}, root {self.root.hex()}, signed at {self.timestamp} ms by key {self.kid}"

    def as_state(self) -> dict[str, Any]:
        return {
            "log": self.log,
            "size": self.size,
            "root": base64.b64encode(self.root).decode("ascii"),
            "timestamp": self.timestamp,
            "kid": self.kid,
            "jws": self.jws,
        }


def default_state_file(url: str) -> Path:
    """Under the user's cache directory, one file per log URL."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    name = urllib.parse.quote(url.rstrip("/"), safe="") or "log"
    return cache / "civicore" / "witness" / f"{name}.json"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx then surfaces as an HTTPError: the witness talks to one URL only


_opener = urllib.request.build_opener(_NoRedirect)


def _unreachable(message: str) -> _Stop:
    return _Stop(Verdict(UNREACHABLE, "unreachable", message))


def _get_json(base: str, path: str) -> Any:
    url = base + path
    if not url.startswith(("http://", "https://")):
        raise _unreachable(f"UNREACHABLE: {url} is not an http(s) URL")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - checked above
    try:
        with _opener.open(request, timeout=TIMEOUT) as answer:
            body = answer.read(MAX_ANSWER + 1)
    except urllib.error.HTTPError as error:
        stop = _unreachable(f"UNREACHABLE: {url} answered HTTP {error.code}")
        stop.status = error.code
        raise stop from error
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise _unreachable(f"UNREACHABLE: {url} could not be fetched ({error})") from error
    if len(body) > MAX_ANSWER:
        raise _unreachable(f"MALFORMED: {url} answered more than {MAX_ANSWER} bytes")
    try:
        return json.loads(body)
    except ValueError as error:
        raise _unreachable(f"MALFORMED: {url} did not answer JSON") from error


def _b64_hash(value: Any, what: str) -> bytes:
    try:
        digest = base64.b64decode(value, validate=True) if isinstance(value, str) else b""
    except (binascii.Error, ValueError):
        digest = b""
    if len(digest) != merkle.HASH_SIZE:
        raise _unreachable(f"MALFORMED: {what} is not base64 of {merkle.HASH_SIZE} bytes")
    return digest


def _uint(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 64:
        raise _unreachable(f"MALFORMED: {what} is not an unsigned 64-bit integer")
    return value


def _verify_head(token: Any, keys: dict[str, dict[str, Any]]) -> Head:
    """The head in a compact JWS, once its signature verifies with one of ``keys`` (by kid)."""
    if not isinstance(token, str) or token.count(".") != 2 or len(token) > 10_000:
        raise _unreachable("MALFORMED: the tree head is not a compact JWS")
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, UnicodeError) as error:
        raise _unreachable("MALFORMED: the tree head's JWS cannot be read") from error
    kid = header.get("kid")
    if header.get("typ") != TREE_HEAD_TYPE or header.get("alg") not in ALGORITHMS:
        raise _Stop(
            Verdict(
                BAD_SIGNATURE,
                "bad_signature",
                f"BAD SIGNATURE: the head is not an {ALGORITHMS[0]} {TREE_HEAD_TYPE} "
                f"(typ {header.get('typ')!r}, alg {header.get('alg')!r})",
            )
        )
    if not isinstance(kid, str) or kid not in keys:
        raise _Stop(
            Verdict(
                BAD_SIGNATURE,
                "bad_signature",
                f"UNKNOWN KEY: the head is signed by key {kid!r}, which is not among the keys pinned for "
                "this log (run again with --trust-new-keys if the log announced a rotation)",
            )
        )
    try:
        payload = json.loads(
            jws.deserialize_compact(token, ECKey.import_key(keys[kid]), algorithms=ALGORITHMS).payload
        )
    except (JoseError, ValueError, TypeError) as error:
        raise _Stop(
            Verdict(
                BAD_SIGNATURE,
                "bad_signature",
                f"BAD SIGNATURE: the head's signature does not verify with key {kid}",
            )
        ) from error
    if not isinstance(payload, dict) or not isinstance(payload.get("log"), str):
        raise _unreachable("MALFORMED: the signed head has no log id")
    return Head(
        log=payload["log"],
        size=_uint(payload.get("size"), "the head's size"),
        root=_b64_hash(payload.get("root"), "the head's root"),
        timestamp=_uint(payload.get("timestamp"), "the head's timestamp"),
        kid=kid,
        jws=token,
    )


def _published_keys(base: str) -> dict[str, dict[str, Any]]:
    jwks = _get_json(base, "/.well-known/jwks.json")
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    if not isinstance(keys, list):
        raise _unreachable("MALFORMED: the JWKS has no list of keys")
    return {
        key["kid"]: key
        for key in keys
        if isinstance(key, dict) and isinstance(key.get("kid"), str) and key.get("kty") == "EC"
    }


def _load_state(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    state = json.loads(text)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a witness state file")
    return state


def _save_state(path: Path, state: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written aside and renamed, so an interrupted run leaves the previous state whole.
    with tempfile.NamedTemporaryFile(
        "w", dir=path.parent, delete=False, encoding="utf-8", suffix=".tmp"
    ) as tmp:
        json.dump(state, tmp, indent=2, sort_keys=True)
    Path(tmp.name).replace(path)


def witness(url: str, state_file: Path, *, trust_new_keys: bool = False) -> Verdict:
    """Check the log at ``url`` once against what ``state_file`` remembers; save the new head if
    it is consistent."""
    base = url.rstrip("/")
    try:
        state = _load_state(state_file)
    except (ValueError, OSError) as error:
        return Verdict(UNREACHABLE, "unreachable", f"STATE FILE UNREADABLE: {state_file}: {error}")
    try:
        return _check(base, state, state_file, trust_new_keys=trust_new_keys)
    except _Stop as stop:
        return stop.verdict


def _check(base: str, state: dict[str, Any] | None, state_file: Path, *, trust_new_keys: bool) -> Verdict:
    notes: list[str] = []
    answer = _get_json(base, "/api/v1/transparency/tree-heads/latest")
    token = answer.get("jws") if isinstance(answer, dict) else None
    published = _published_keys(base)
    if state is None:
        pinned = published
    else:
        pinned = dict(state.get("keys") or {})
        gone = sorted(set(pinned) - set(published))
        if gone:
            notes.append(f"note: pinned key(s) {', '.join(gone)} are no longer published by the log")
        if trust_new_keys:
            added = sorted(set(published) - set(pinned))
            if added:
                notes.append(f"note: pinning new key(s) {', '.join(added)}")
            pinned.update(published)
    head = _verify_head(token, pinned)
    previous = None
    if state is not None:
        if state.get("log") != head.log:
            raise _Stop(
                Verdict(
                    BAD_SIGNATURE,
                    "bad_signature",
                    f"WRONG LOG: the head is signed for log {head.log!r}, "
                    f"this witness follows {state.get('log')!r}",
                )
            )
        seen = state.get("head") or {}
        try:
            previous = Head(
                log=str(seen["log"]),
                size=_uint(seen["size"], "the remembered size"),
                root=_b64_hash(seen["root"], "the remembered root"),
                timestamp=_uint(seen["timestamp"], "the remembered timestamp"),
                kid=str(seen["kid"]),
                jws=str(seen["jws"]),
            )
        except (KeyError, _Stop) as error:
            return Verdict(
                UNREACHABLE, "unreachable", f"STATE FILE UNREADABLE: {state_file} has no valid head ({error})"
            )

    if previous is None:
        verdict = Verdict(
            OK, "first_sight", f"FIRST SIGHT: {base}: {head.describe()}; keys and head pinned", notes
        )
    elif head.size < previous.size:
        return Verdict(
            FORK,
            "truncated",
            f"TRUNCATED: the log now signs {head.describe()}, smaller than the head seen before: "
            f"{previous.describe()}",
            notes,
        )
    elif head.size == previous.size:
        if head.root != previous.root:
            return _fork(previous, head, "two different roots for the same size", notes)
        verdict = Verdict(OK, "unchanged", f"CONSISTENT: {base}: no new entries; {head.describe()}", notes)
    else:
        try:
            proof_answer = _get_json(
                base, f"/api/v1/transparency/proofs/consistency?first={previous.size}&second={head.size}"
            )
        except _Stop as stop:
            if stop.status != 404:
                raise
            # The log denies a size it signed a head for: it no longer stands by that head.
            return _fork(previous, head, "the log no longer has a head of the size seen before", notes)
        raw = proof_answer.get("proof") if isinstance(proof_answer, dict) else None
        if not isinstance(raw, list) or len(raw) > 64:
            raise _unreachable("MALFORMED: the consistency proof is not a list of hashes")
        proof = [_b64_hash(item, "a consistency proof hash") for item in raw]
        try:
            merkle.check_consistency(previous.size, head.size, previous.root, head.root, proof)
        except merkle.ProofError as error:
            return _fork(previous, head, f"the consistency proof fails ({error.code})", notes)
        verdict = Verdict(
            OK,
            "consistent",
            f"CONSISTENT: {base}: {head.size - previous.size} new entries; {head.describe()}",
            notes,
        )
    if previous is not None and head.timestamp < previous.timestamp:
        verdict.notes.append("note: the new head's timestamp is earlier than the previous one's")
    _save_state(state_file, {"url": base, "log": head.log, "keys": pinned, "head": head.as_state()})
    return verdict


def _fork(previous: Head, head: Head, why: str, notes: list[str]) -> Verdict:
    return Verdict(
        FORK,
        "fork",
        f"FORK: the log was rewritten ({why}). Seen before: {previous.describe()}. Now: {head.describe()}. "
        "Both heads are signed; keep this state file as evidence.",
        notes,
    )


def main(argv: list[str] | None = None) -> int:
    """`civicore transparency witness URL`, run without Django or settings: anyone can watch."""
    import argparse
    import sys

    parser = argparse.ArgumentParser(
        prog="civicore transparency witness", description="Check that the log at URL only grows."
    )
    parser.add_argument("url", help="The platform's base URL")
    parser.add_argument("--state", type=Path, help="State file (default: under the user's cache directory)")
    parser.add_argument("--trust-new-keys", action="store_true", help="Pin keys the log published since")
    args = parser.parse_args(argv)
    verdict = witness(
        args.url, args.state or default_state_file(args.url), trust_new_keys=args.trust_new_keys
    )
    for note in verdict.notes:
        print(note, file=sys.stderr)
    print(verdict.message, file=sys.stdout if verdict.code == OK else sys.stderr)
    return verdict.code
