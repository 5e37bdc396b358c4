"""Token throughput: complete OpenID Connect code flows per second, and ID-token verifications per
second by a client, against a one-query baseline.

Sets up a fresh PostgreSQL database with one agency application (an ES256 key pair, a redirect
URI, three allowed items and a purpose) and a pool of citizens, each logged in already (a session
row as a password + authenticator-app login leaves it), then starts gunicorn. Each round
alternates two loads with the same client and concurrency: GET /healthz (one SELECT 1) and the
complete flow a relying party and the citizen's browser go through, every step over HTTP:

    POST /oauth/par (private_key_jwt)  ->  GET /oauth/authorize?client_id&request_uri (the
    consent screen, with the citizen's session)  ->  POST /oauth/authorize (approve)  ->
    POST /oauth/token (code + PKCE verifier, private_key_jwt)  ->  GET /oauth/userinfo

then times a client verifying the ID tokens it received (joserfc, signature and claims, the JWKS
fetched once and cached). Prints each round and the medians, writes bench/results/tokens.json and
proves the work happened (tokens, spent codes and pushed requests, userinfo releases in the
message log; the audit chain verified). This prints figures; it asserts no target.

    python bench/tokens.py [--duration S] [--concurrency N] [--workers W] [--runs R] [--no-par]

The administrative PostgreSQL URL comes from BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432/postgres; the database is civicore_bench_tokens.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from submission import (  # noqa: E402
    REPO,
    audit_check,
    child_env,
    database_urls,
    facts,
    free_port,
    median,
    percentile,
    ratio,
    recreate_database,
    run,
    start_server,
    stop_server,
    wait_healthy,
    write_report,
)

RESULTS = REPO / "bench" / "results" / "tokens.json"
REDIRECT_URI = "https://rp.bench.example/callback"
CLIENT_ID = "bench-rp"
SCOPE = "openid profile address"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
STEPS = ("par", "authorize", "approve", "token", "userinfo")


# --- seeding (runs in a child process with the benchmark's environment) ---------------------


def seed(out: Path, citizens: int) -> None:
    """One application and `citizens` logged-in citizens, through the application's services.
    Writes the client's private key and each citizen's session key to `out` (JSON)."""
    sys.path.insert(0, str(REPO))
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction
    from joserfc.jwk import ECKey

    from civicore.agencies.models import Agency
    from civicore.core.jose import signing_key
    from civicore.identity.models import User
    from civicore.identity.services import person_register
    from civicore.registry.services import agency_application_register

    key = ECKey.generate_key("P-256", auto_kid=True)
    agency = Agency.objects.create(
        code="bench-rp-agency", name_vi="Cơ quan đo hiệu năng", name_en="Bench agency"
    )
    agency_application_register(
        client_id=CLIENT_ID,
        agency=agency,
        name_vi="Cổng đo hiệu năng",
        name_en="Benchmark relying party",
        redirect_uris=[REDIRECT_URI],
        jwks={"keys": [key.as_dict(private=False)]},
        allowed_items=["full_name", "date_of_birth", "address"],
        purposes=[{"code": "login", "name_vi": "Đăng nhập", "name_en": "Sign in"}],
    )
    signing_key("ES256")  # the platform key exists before four workers race to create it
    sessions = []
    now = time.time()
    with transaction.atomic():
        for n in range(citizens):
            user = User.objects.create_user(
                username=f"oidc{n}", email=f"oidc{n}@example.test", password=None, full_name=f"Trần Thị {n}"
            )
            person_register(
                user=user,
                national_id=f"0792{n:08d}",
                full_name=f"Trần Thị {n}",
                date_of_birth=dt.date(1988, 3, 9),
                address=f"{n} Đường Hai Bà Trưng, phường Bến Nghé",
                agency=agency,
            )
            # What logging in with a password and an authenticator app leaves in the session.
            session = SessionStore()
            session[SESSION_KEY] = str(user.pk)
            session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session["account_authentication_methods"] = [
                {"method": "password", "at": now, "email": user.email},
                {"method": "mfa", "at": now, "type": "totp"},
            ]
            session["account_authentication_methods_user"] = str(user.pk)
            session.create()
            sessions.append(session.session_key)
    out.write_text(
        json.dumps(
            {
                "private_jwk": key.as_dict(private=True),
                "sessions": sessions,
                "session_cookie": settings.SESSION_COOKIE_NAME,
                "csrf_cookie": settings.CSRF_COOKIE_NAME,
            }
        ),
        encoding="utf-8",
    )


# --- load client -----------------------------------------------------------------------------


class Browser:
    """One keep-alive connection; gunicorn's sync workers close it after each answer, and
    http.client then reopens it."""

    def __init__(self, host: str, port: int):
        self.conn = http.client.HTTPConnection(host, port, timeout=60)

    def request(
        self, method: str, path: str, body: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int | str, str, bytes]:
        try:
            self.conn.request(method, path, body=body, headers=headers or {})
            response = self.conn.getresponse()
            return response.status, response.getheader("Location") or "", response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.conn.close()
            return type(exc).__name__, "", str(exc).encode()


def _assertion(key: Any, audience: str) -> str:
    from joserfc import jwt

    now = int(time.time())
    claims = {
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "aud": audience,
        "iat": now,
        "exp": now + 60,
        "jti": secrets.token_urlsafe(16),
    }
    return jwt.encode({"alg": "ES256", "kid": key.kid}, claims, key)


def _flow(
    browser: Browser, spec: dict[str, Any], key: Any, session: str, counts: Counter[str]
) -> tuple[bool, str, dict[str, float], str]:
    """One complete flow. Returns (ok, failure sample, step latencies in ms, id_token)."""
    site = spec["site"]
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    cookies = {"Cookie": f"{spec['session_cookie']}={session}; {spec['csrf_cookie']}={spec['csrf']}"}
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    request = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": SCOPE,
        "purpose": "login",
        "state": secrets.token_urlsafe(12),
        "nonce": secrets.token_urlsafe(12),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    steps: dict[str, float] = {}

    def step(
        name: str, method: str, path: str, body: str | None, headers: dict[str, str], expected: int
    ) -> tuple[str, bytes]:
        began = time.perf_counter()
        status, location, payload = browser.request(method, path, body, headers)
        steps[name] = (time.perf_counter() - began) * 1000
        if status == expected:
            counts[name] += 1
            return location, payload
        raise RuntimeError(f"{name} {status}: {payload[:200].decode(errors='replace')}")

    try:
        if spec["par"]:
            body = urllib.parse.urlencode(
                {
                    **request,
                    "client_assertion_type": ASSERTION_TYPE,
                    "client_assertion": _assertion(key, site + "/oauth/par"),
                }
            )
            _loc, payload = step("par", "POST", "/oauth/par", body, form, 201)
            query = urllib.parse.urlencode(
                {"client_id": CLIENT_ID, "request_uri": json.loads(payload)["request_uri"]}
            )
        else:
            query = urllib.parse.urlencode(request)
        authorize = "/oauth/authorize?" + query
        step("authorize", "GET", authorize, None, cookies, 200)
        decision = urllib.parse.urlencode({"csrfmiddlewaretoken": spec["csrf"], "decision": "approve"})
        location, _payload = step("approve", "POST", authorize, decision, {**cookies, **form}, 302)
        params = urllib.parse.parse_qs(urllib.parse.urlsplit(location).query)
        if "code" not in params:
            raise RuntimeError(f"approve: {location[:200]}")
        body = urllib.parse.urlencode(
            {
                "grant_type": "authorization_code",
                "code": params["code"][0],
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": _assertion(key, site + "/oauth/token"),
            }
        )
        _loc, payload = step("token", "POST", "/oauth/token", body, form, 200)
        tokens = json.loads(payload)
        step(
            "userinfo",
            "GET",
            "/oauth/userinfo",
            None,
            {"Authorization": f"Bearer {tokens['access_token']}"},
            200,
        )
    except (RuntimeError, ValueError, KeyError) as exc:
        return False, str(exc), steps, ""
    return True, "", steps, tokens["id_token"]


def _client_thread(spec: dict[str, Any], index: int, out: dict[str, Any], lock: threading.Lock) -> None:
    from joserfc.jwk import ECKey

    key = ECKey.import_key(spec["private_jwk"])
    flows = spec["kind"] == "flow"
    sessions = spec["sessions"]
    stride = spec["threads_total"]
    at = spec["thread_base"] + index  # every thread walks its own stride of the citizens
    latencies: list[float] = []
    step_latencies: dict[str, list[float]] = {name: [] for name in STEPS}
    statuses: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    samples: list[str] = []
    id_tokens: list[str] = []
    browser = Browser("127.0.0.1", spec["port"])
    while time.time() < spec["start_at"]:
        time.sleep(0.001)
    while time.time() < spec["end_at"]:
        began = time.perf_counter()
        if flows:
            ok, failure, steps, id_token = _flow(browser, spec, key, sessions[at % len(sessions)], counts)
            at += stride
            status = "ok" if ok else failure.split(":", 1)[0]
        else:
            status_code, _loc, payload = browser.request("GET", "/healthz")
            ok, failure, steps, id_token = status_code == 200, payload[:200].decode(errors="replace"), {}, ""
            status = str(status_code)
        elapsed_ms = (time.perf_counter() - began) * 1000
        if not ok and len(samples) < 5:
            samples.append(failure)
        if time.time() <= spec["end_at"]:  # a request still running when the window closes is not counted
            latencies.append(elapsed_ms)
            statuses[status] += 1
            for name, value in steps.items():
                step_latencies[name].append(value)
            if id_token and len(id_tokens) < 500:
                id_tokens.append(id_token)
    browser.conn.close()
    with lock:
        out["latencies"].extend(latencies)
        out["statuses"].update(statuses)
        out["counts"].update(counts)
        out["samples"].extend(samples)
        out["id_tokens"].extend(id_tokens)
        for name, values in step_latencies.items():
            out["steps"][name].extend(values)


def client_process(spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "latencies": [],
        "statuses": Counter(),
        "counts": Counter(),
        "samples": [],
        "id_tokens": [],
        "steps": {name: [] for name in STEPS},
    }
    lock = threading.Lock()
    threads = [
        threading.Thread(target=_client_thread, args=(spec, i, out, lock), daemon=True)
        for i in range(spec["threads"])
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


def verify_process(spec: dict[str, Any]) -> dict[str, Any]:
    """A relying party checking ID tokens: fetch the JWKS once, then verify signature, iss, aud,
    exp and iat of each token, round-robin, for `duration` seconds on one thread."""
    from joserfc import jwt
    from joserfc.jwk import KeySet

    conn = http.client.HTTPConnection("127.0.0.1", spec["port"], timeout=30)
    conn.request("GET", "/.well-known/jwks.json")
    keys = KeySet.import_key_set(json.loads(conn.getresponse().read()))
    conn.close()
    registry = jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": spec["site"]},
        aud={"essential": True, "value": CLIENT_ID},
        sub={"essential": True},
        exp={"essential": True},
        iat={"essential": True},
        leeway=60,
    )
    tokens = spec["id_tokens"]
    latencies: list[float] = []
    end_at = time.time() + spec["duration"]
    n = 0
    while time.time() < end_at:
        began = time.perf_counter()
        token = jwt.decode(tokens[n % len(tokens)], keys, algorithms=["ES256"])
        registry.validate(token.claims)
        latencies.append((time.perf_counter() - began) * 1000)
        n += 1
    latencies.sort()
    return {
        "verifications": n,
        "per_second": round(n / spec["duration"], 1),
        "p50_ms": round(percentile(latencies, 0.5) or 0, 3),
        "p99_ms": round(percentile(latencies, 0.99) or 0, 3),
    }


# --- the benchmark ---------------------------------------------------------------------------


def summarise(results: list[dict[str, Any]], duration: float, expected: str) -> dict[str, Any]:
    latencies = sorted(x for r in results for x in r["latencies"])
    statuses: Counter[str] = Counter()
    for r in results:
        statuses.update(r["statuses"])
    ok = statuses.get(expected, 0)
    summary: dict[str, Any] = {
        "completed": len(latencies),
        "ok": ok,
        "errors": len(latencies) - ok,
        "statuses": dict(statuses),
        "throughput_per_s": round(ok / duration, 1),
        "p50_ms": round(percentile(latencies, 0.50) or 0, 2),
        "p99_ms": round(percentile(latencies, 0.99) or 0, 2),
        "error_samples": [s for r in results for s in r["samples"]][:5],
    }
    steps = {name: sorted(x for r in results for x in r["steps"][name]) for name in STEPS}
    if any(steps.values()):
        summary["step_p50_ms"] = {
            name: round(percentile(values, 0.5) or 0, 2) for name, values in steps.items() if values
        }
    return summary


class Load:
    def __init__(self, pool: Any, args: argparse.Namespace, port: int, site: str, seeded: dict[str, Any]):
        self.pool, self.args, self.port, self.site, self.seeded = pool, args, port, site, seeded
        self.counts: Counter[str] = Counter()  # every successful step, warm-up included
        self.csrf = secrets.token_hex(16)  # a CSRF secret both as cookie and as form field

    def window(self, kind: str, seconds: float) -> tuple[dict[str, Any], list[str]]:
        procs = max(1, min(self.args.client_processes, self.args.concurrency))
        per = [
            self.args.concurrency // procs + (1 if i < self.args.concurrency % procs else 0)
            for i in range(procs)
        ]
        start_at = time.time() + 0.5
        specs = [
            {
                "kind": kind, "port": self.port, "site": self.site, "par": self.args.par,
                "private_jwk": self.seeded["private_jwk"], "sessions": self.seeded["sessions"],
                "session_cookie": self.seeded["session_cookie"], "csrf_cookie": self.seeded["csrf_cookie"],
                "csrf": self.csrf, "threads": per[i], "thread_base": sum(per[:i]),
                "threads_total": self.args.concurrency, "start_at": start_at, "end_at": start_at + seconds,
            }
            for i in range(procs)
        ]  # fmt: skip
        results = self.pool.map(client_process, specs)
        for r in results:
            self.counts.update(r["counts"])
        summary = summarise(results, seconds, "ok" if kind == "flow" else "200")
        return summary, [t for r in results for t in r["id_tokens"]]


def count_rows(database_url: str) -> dict[str, int]:
    import psycopg

    queries = {
        "pushed_requests_used": (
            "SELECT count(*) FROM consent_pushedauthorizationrequest WHERE used_at IS NOT NULL"
        ),
        "codes_used": "SELECT count(*) FROM consent_authorizationcode WHERE used_at IS NOT NULL",
        "consents": "SELECT count(*) FROM consent_consent",
        "access_tokens": "SELECT count(*) FROM consent_accesstoken",
        "userinfo_releases": "SELECT count(*) FROM registry_messagelogentry WHERE operation = 'person.read'",
        "assertions_remembered": "SELECT count(*) FROM consent_clientassertionuse",
    }
    with psycopg.connect(database_url) as conn:
        return {name: conn.execute(query).fetchone()[0] for name, query in queries.items()}


def print_table(rounds: list[dict[str, Any]], medians: dict[str, Any]) -> None:
    head = (
        f"{'round':>6} | {'baseline req/s':>14} {'p50 ms':>7} {'p99 ms':>7} | {'flows/s':>8} {'p50 ms':>7} "
        f"{'p99 ms':>7} | {'flow/base':>9} | {'id-token verif/s':>16}"
    )
    print(head)
    print("-" * len(head))

    def line(label: str, b: dict[str, Any], f: dict[str, Any], r: Any, v: Any) -> str:
        return (
            f"{label:>6} | {b['throughput_per_s']:>14} {b['p50_ms']:>7} {b['p99_ms']:>7} | "
            f"{f['throughput_per_s']:>8} {f['p50_ms']:>7} {f['p99_ms']:>7} | {r!s:>9} | {v!s:>16}"
        )

    for i, rnd in enumerate(rounds, 1):
        print(
            line(
                str(i), rnd["baseline"], rnd["flow"], rnd["ratio"]["throughput"], rnd["verify"]["per_second"]
            )
        )
    print("-" * len(head))
    print(line("median", medians["baseline"], medians["flow"], medians["ratio"]["throughput"],
               medians["verify"]["per_second"]))  # fmt: skip


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def benchmark(args: argparse.Namespace) -> int:
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    admin_url = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    admin_url, database_url = database_urls(admin_url, args.database)
    work = Path(tempfile.mkdtemp(prefix="civicore-bench-tokens-"))
    port = args.port or free_port()
    site = f"http://127.0.0.1:{port}"
    env = child_env(work / "var", database_url, args.conn_max_age)
    env["SITE_URL"] = site  # the issuer, and the audience client assertions name
    server = None
    pool = None
    try:
        print(f"Preparing database {args.database} ...", flush=True)
        recreate_database(admin_url, args.database)
        run([sys.executable, "-m", "civicore", "migrate", "--no-input", "--verbosity", "0"], env)
        seed_file = work / "seed.json"
        run([sys.executable, str(Path(__file__).resolve()), "seed", str(seed_file), str(args.citizens)], env)
        seeded = json.loads(seed_file.read_text(encoding="utf-8"))
        print(f"Seeded application {CLIENT_ID} and {len(seeded['sessions'])} logged-in citizens.")

        log = work / "gunicorn.log"
        server = start_server(args, env, port, log)
        wait_healthy(server, port, log)
        flow_steps = " -> ".join(STEPS if args.par else STEPS[1:])
        print(f"gunicorn on {site}: {args.workers} {args.worker_class} workers; "
              f"{args.concurrency} clients in {args.client_processes} processes; "
              f"{args.runs} rounds of {args.duration}s each. Flow: {flow_steps}.", flush=True)  # fmt: skip

        pool = multiprocessing.get_context("spawn").Pool(args.client_processes)
        verifier_pool = multiprocessing.get_context("spawn").Pool(1)
        load = Load(pool, args, port, site, seeded)
        if args.warmup > 0:
            load.window("baseline", args.warmup)
            load.window("flow", args.warmup)

        rounds = []
        for i in range(args.runs):
            baseline, _ = load.window("baseline", args.duration)
            flow, id_tokens = load.window("flow", args.duration)
            if id_tokens:
                verify = verifier_pool.apply(
                    verify_process,
                    ({"port": port, "site": site, "id_tokens": id_tokens, "duration": args.verify_duration},),
                )
            else:
                verify = {"verifications": 0, "per_second": None, "p50_ms": None, "p99_ms": None}
            rounds.append(
                {
                    "baseline": baseline,
                    "flow": flow,
                    "verify": verify,
                    "ratio": {
                        "throughput": ratio(flow["throughput_per_s"], baseline["throughput_per_s"]),
                        "p50": ratio(flow["p50_ms"], baseline["p50_ms"]),
                    },
                }
            )
            print(f"  round {i + 1}: baseline {baseline['throughput_per_s']} req/s, flows "
                  f"{flow['throughput_per_s']}/s, ID-token verifications {verify['per_second']}/s",
                  flush=True)  # fmt: skip
        verifier_pool.terminate()
        stop_server(server)
        server = None

        medians: dict[str, Any] = {
            side: {
                key: median([r[side][key] for r in rounds])
                for key in ("throughput_per_s", "p50_ms", "p99_ms")
            }
            for side in ("baseline", "flow")
        }
        medians["flow"]["step_p50_ms"] = {
            name: median([r["flow"].get("step_p50_ms", {}).get(name) for r in rounds])
            for name in STEPS
            if any(name in r["flow"].get("step_p50_ms", {}) for r in rounds)
        }
        medians["verify"] = {
            key: median([r["verify"][key] for r in rounds]) for key in ("per_second", "p50_ms")
        }
        medians["ratio"] = {key: median([r["ratio"][key] for r in rounds]) for key in ("throughput", "p50")}
        # Each flow is several requests; this compares requests with requests.
        requests_per_flow = len(STEPS) if args.par else len(STEPS) - 1
        medians["ratio"]["flow_requests_per_baseline_request"] = ratio(
            (medians["flow"]["throughput_per_s"] or 0) * requests_per_flow,
            medians["baseline"]["throughput_per_s"] or 0,
        )
        print()
        print_table(rounds, medians)
        print(f"\nMedian latency of each step (ms): {medians['flow']['step_p50_ms']}")

        errors = {side: sum(r[side]["errors"] for r in rounds) for side in ("baseline", "flow")}
        for side in ("baseline", "flow"):
            if errors[side]:
                print(f"\n{errors[side]} {side} attempts did not succeed. Samples:")
                for rnd in rounds:
                    for sample in rnd[side]["error_samples"]:
                        print(f"  {sample}")
        if not any(errors.values()):
            print("\nEvery flow and every baseline request in the measured windows succeeded.")

        rows = count_rows(database_url)
        expected = {
            "pushed_requests_used": load.counts["approve"] if args.par else 0,
            "codes_used": load.counts["token"],
            "access_tokens": load.counts["token"],
            "userinfo_releases": load.counts["userinfo"],
        }
        matches = all(rows[name] == value for name, value in expected.items())
        print(f"\nWork done (warm-up included): {dict(load.counts)} successful steps; database holds "
              + ", ".join(f"{k} {v}" for k, v in rows.items())
              + (" - as expected." if matches else f" - MISMATCH, expected {expected}."))  # fmt: skip
        audit_verify = audit_check(env)

        report = {
            "benchmark": "tokens",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "parameters": {
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "verify_duration_s": args.verify_duration,
                "runs": args.runs,
                "concurrency": args.concurrency,
                "client_processes": args.client_processes,
                "workers": args.workers,
                "worker_class": args.worker_class,
                "threads": args.threads if args.worker_class == "gthread" else 1,
                "database_conn_max_age": args.conn_max_age,
                "citizens": args.citizens,
                "par": args.par,
                "flow": list(STEPS if args.par else STEPS[1:]),
                "scope": SCOPE,
                "app": args.app,
            },
            "machine": facts(database_url),
            "rounds": rounds,
            "median": medians,
            "verification": {
                "successful_steps": dict(load.counts),
                "rows": rows,
                "rows_match_steps": matches,
                "audit_verify": audit_verify,
            },
        }
        write_report(args.output, report)
        return 0
    except KeyboardInterrupt:
        print("\nInterrupted; stopping the server.", file=sys.stderr)
        return 130
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        stop_server(server)
        shutil.rmtree(work, ignore_errors=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds measured per load and round")
    parser.add_argument("--warmup", type=float, default=3, help="seconds of each load before measuring")
    parser.add_argument("--verify-duration", type=float, default=3, help="seconds of ID-token verification")
    parser.add_argument("--runs", type=int, default=3, help="rounds of baseline + flows")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument(
        "--client-processes", type=int, default=2, help="processes the clients are spread over"
    )
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes")
    parser.add_argument("--worker-class", choices=("sync", "gthread"), default="sync")
    parser.add_argument(
        "--threads", type=int, default=4, help="threads per worker with --worker-class gthread"
    )
    parser.add_argument("--conn-max-age", type=int, default=600, help="DATABASE_CONN_MAX_AGE for the server")
    parser.add_argument("--citizens", type=int, default=200, help="logged-in citizens in the pool")
    parser.add_argument(
        "--no-par", dest="par", action="store_false", help="send the request in the query instead"
    )
    parser.add_argument("--database", default="civicore_bench_tokens", help="database to drop and recreate")
    parser.add_argument("--port", type=int, default=0, help="server port (default: first free from 18000)")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--app", default="config.wsgi:application", help="WSGI application to serve")
    return parser.parse_args(argv)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "seed":
        seed(Path(sys.argv[2]), int(sys.argv[3]))
        sys.exit(0)
    sys.exit(benchmark(parse_args()))
