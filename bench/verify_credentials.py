"""Credential verification throughput: SD-JWT VC presentations verified per second by
civicore.verifier on one core, against raw signature verifications of the same signed bytes with
`cryptography` directly (the baseline every verifier pays).

A typical credential carries 8 claims, all disclosed, and a status reference (not looked up).
Two cases per algorithm: the presentation without key binding (baseline: one issuer signature)
and with a KB-JWT (baseline: the issuer's and the holder's signature). Each round times the
baseline and the verifier one after the other, single process, in CPU time (so a busy machine
does not skew one side); the figures are medians of 3 rounds. Targets: >= 10,000
verifications/s/core and a ratio to the baseline >= 0.5. This prints figures; it asserts no
target (the absolute rate is bounded by the baseline, i.e. by the CPU's ES256 speed).

    python bench/verify_credentials.py [--seconds S] [--json PATH]

`measure(seconds)` returns the rows (bench/verify.py calls it); `seconds` is the total budget.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import hashes  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature  # noqa: E402

from civicore.verifier import (  # noqa: E402
    b64url_decode,
    issue,
    jwk_thumbprint,
    load_trust_list,
    present,
    public_jwk,
    sign_trust_list,
    verify,
)

ROUNDS = 3
TARGET_PER_S = 10_000
TARGET_RATIO = 0.5
NOW = 1_800_000_000
ISS = "https://tuphap.gov.vn"
CLAIMS = {
    "given_name": "An",
    "family_name": "Nguyễn Văn",
    "birthdate": "1990-02-01",
    "nationality": "VN",
    "certificate_number": "TP-2026-000123",
    "certificate_type": "criminal_record_extract",
    "issued_on": "2026-12-01",
    "issuing_office": "Sở Tư pháp thành phố Hà Nội",
}
ECDSA = ec.ECDSA(hashes.SHA256())


def _raw_verifier(jwt: str, key: Any) -> Callable[[], None]:
    """Verify the JWS's signature over its own signing input with `cryptography` directly."""
    head, body, signature = jwt.split(".")
    data = f"{head}.{body}".encode("ascii")
    raw = b64url_decode(signature)
    public = key.public_key()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        return lambda: public.verify(der, data, ECDSA)
    return lambda: public.verify(raw, data)


def _cases() -> list[dict[str, Any]]:
    anchor = ed25519.Ed25519PrivateKey.generate()
    holder = ec.generate_private_key(ec.SECP256R1())
    issuers = {
        "ES256": ec.generate_private_key(ec.SECP256R1()),
        "EdDSA": ed25519.Ed25519PrivateKey.generate(),
    }
    keys = [
        {"kid": jwk_thumbprint(public_jwk(k)), "jwk": public_jwk(k), "not_before": NOW - 86400}
        for k in issuers.values()
    ]
    token = sign_trust_list(
        [{"iss": ISS, "name": {"vi": "Bộ Tư pháp", "en": "Ministry of Justice"}, "keys": keys}],
        key=anchor,
        kid="anchor",
        iss="https://trust.gov.vn",
        iat=NOW - 60,
        exp=NOW + 86400,
    )
    trust = load_trust_list(token, anchors=[{**public_jwk(anchor), "kid": "anchor"}], now=NOW)
    cases: list[dict[str, Any]] = []
    for alg, key in issuers.items():
        credential = issue(
            CLAIMS,
            issuer=ISS,
            vct="https://civicore.gov.vn/vct/certificate",
            key=key,
            kid=jwk_thumbprint(public_jwk(key)),
            iat=NOW - 3600,
            exp=NOW + 86400 * 365,
            holder_jwk=public_jwk(holder),
            status={"idx": 4711, "uri": "https://tuphap.gov.vn/status/1"},
        )
        keep = [(name,) for name in CLAIMS]
        plain = present(credential, keep=keep)
        bound = present(
            credential, keep=keep, holder_key=holder, audience="https://bank.example", nonce="n", iat=NOW
        )
        issuer_raw = _raw_verifier(plain.split("~")[0], key)
        holder_raw = _raw_verifier(bound.rsplit("~", 1)[1], holder)

        def both(first: Callable[[], None] = issuer_raw, second: Callable[[], None] = holder_raw) -> None:
            first()
            second()

        cases.append(
            {
                "case": f"{alg}, {len(CLAIMS)} claims, no key binding",
                "alg": alg,
                "key_binding": False,
                "verifier": lambda p=plain: verify(p, trust=trust, now=NOW),
                "baseline": issuer_raw,
                "baseline_label": "1 signature",
            }
        )
        cases.append(
            {
                "case": f"{alg}, {len(CLAIMS)} claims, with key binding",
                "alg": alg,
                "key_binding": True,
                "verifier": lambda b=bound: verify(
                    b, trust=trust, now=NOW, audience="https://bank.example", nonce="n"
                ),
                "baseline": both,
                "baseline_label": "2 signatures",
            }
        )
    for case in cases:  # prove the work verifies, before timing it
        verdict = case["verifier"]()
        assert verdict.ok and verdict.claims == CLAIMS, verdict
        assert verdict.key_binding == case["key_binding"]
        case["baseline"]()
    return cases


def _rate(function: Callable[[], Any], seconds: float) -> float:
    """Calls per CPU second of this process (= per core): time the process spends descheduled
    on a shared machine counts for neither the verifier nor the baseline."""
    batch, count = 50, 0
    start = time.process_time()
    deadline = start + seconds
    while True:
        for _ in range(batch):
            function()
        count += batch
        now = time.process_time()
        if now >= deadline:
            return count / (now - start)


def measure(seconds: float) -> list[dict[str, Any]]:
    """Time every case for about `seconds` in total; one row per case with medians of 3 rounds."""
    cases = _cases()
    loop = max(0.05, seconds / (len(cases) * ROUNDS * 2))
    samples: dict[str, dict[str, list[float]]] = {c["case"]: {"verifier": [], "baseline": []} for c in cases}
    for _ in range(ROUNDS):
        for case in cases:
            samples[case["case"]]["baseline"].append(_rate(case["baseline"], loop))
            samples[case["case"]]["verifier"].append(_rate(case["verifier"], loop))
    rows = []
    for case in cases:
        verifier = statistics.median(samples[case["case"]]["verifier"])
        baseline = statistics.median(samples[case["case"]]["baseline"])
        ratio = verifier / baseline if baseline else 0.0
        rows.append(
            {
                "case": case["case"],
                "alg": case["alg"],
                "key_binding": case["key_binding"],
                "claims": len(CLAIMS),
                "verifications_per_s": round(verifier, 1),
                "baseline": f"raw {case['baseline_label']} with cryptography",
                "baseline_per_s": round(baseline, 1),
                "ratio": round(ratio, 3),
                "target_per_s": TARGET_PER_S,
                "target_ratio": TARGET_RATIO,
                "meets_rate": verifier >= TARGET_PER_S,
                "meets_ratio": ratio >= TARGET_RATIO,
                "rounds": {k: [round(v, 1) for v in vs] for k, vs in samples[case["case"]].items()},
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=12.0, help="total time budget (default 12)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    args = parser.parse_args()
    rows = measure(args.seconds)
    print(
        f"civicore.verifier, one process, per CPU second, medians of {ROUNDS} rounds "
        f"(Python {platform.python_version()}, {platform.processor() or platform.machine()})"
    )
    targets = f"targets (>= {TARGET_PER_S}/s, >= {TARGET_RATIO})"
    header = f"{'case':<40} {'verified/s':>11} {'baseline/s':>11} {'ratio':>6}  {targets}"
    print(header)
    print("-" * len(header))
    for row in rows:
        marks = ("ok" if row["meets_rate"] else "below") + " / " + ("ok" if row["meets_ratio"] else "below")
        print(
            f"{row['case']:<40} {row['verifications_per_s']:>11,.0f} {row['baseline_per_s']:>11,.0f} "
            f"{row['ratio']:>6.2f}  {marks}"
        )
    print(
        "baseline: the same signed bytes verified with cryptography directly (key binding: both signatures)"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
