"""Benchmark of trustworthy documents: credential verification and the transparency log.

Runs, in one go and each beside its own baseline measured in the same run:
- credential verifications per second per core (civicore.verifier, 8 claims, no status lookup,
  with and without key binding) beside raw signature verifications of the same bytes with
  `cryptography` (bench/verify_credentials.py);
- log appends per second in batches of 1,000 beside a raw INSERT of the same rows, inclusion
  proofs at 1,000,000 entries beside a SELECT by primary key, and a witness check of a
  1,000,000-entry log over HTTP (bench/verify_log.py, on a PostgreSQL database it creates).

`make bench-verify` runs it; `--quick` runs a smaller log. Results go to bench/results/verify.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import verify_credentials  # noqa: E402
import verify_log  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "verify.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a log of 100,000 entries, 20,000 appends")
    parser.add_argument("--seconds", type=float, default=12.0, help="time for the credential figures")
    args = parser.parse_args(argv)

    print("== Credential verification (one process, per CPU second, medians of 3 rounds)")
    credentials = verify_credentials.measure(args.seconds)
    print(f"{'case':<40} {'verified/s':>11} {'raw signatures/s':>17} {'ratio':>6}")
    for row in credentials:
        print(
            f"{row['case']:<40} {row['verifications_per_s']:>11,.0f} {row['baseline_per_s']:>17,.0f} "
            f"{row['ratio']:>6.2f}"
        )
    rate, ratio = verify_credentials.TARGET_PER_S, verify_credentials.TARGET_RATIO
    print(f"targets: >= {rate:,}/s/core and ratio >= {ratio}")

    print("\n== Transparency log (PostgreSQL, medians of 3 runs)")
    log = verify_log.measure(quick=args.quick)
    verify_log.print_table(log)

    if not args.quick:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({"credentials": credentials, "log": log}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
