"""`civicore transparency witness URL [--state FILE]` checks a log's latest signed tree head against
the last one seen (exit 0 consistent or first sight, 2 rewritten or truncated, 3 bad signature or
unknown key, 4 unreachable or malformed); `civicore transparency sign` signs a tree head now."""

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand

from civicore.transparency import witness


class Command(BaseCommand):
    help = "`transparency witness URL` checks a transparency log; `transparency sign` signs a tree head now."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        check = sub.add_parser("witness", help="Check that the log at URL only grows (run it regularly)")
        check.add_argument("url", help="The platform's base URL, e.g. https://dichvucong.example.gov.vn")
        check.add_argument(
            "--state", type=Path, help="State file (default: under the user's cache directory)"
        )
        check.add_argument(
            "--trust-new-keys", action="store_true", help="Pin signing keys the log published since last time"
        )
        sub.add_parser("sign", help="Sign a tree head of the log as it is now")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "sign":
            from civicore.transparency.services import tree_head_sign_now

            head = tree_head_sign_now()
            self.stdout.write(f"Signed tree head: size {head.size}, root {head.root_hex}, key {head.kid}")
            return
        url = options["url"]
        state = options["state"] or witness.default_state_file(url)
        verdict = witness.witness(url, state, trust_new_keys=options["trust_new_keys"])
        for note in verdict.notes:
            self.stderr.write(note)
        if verdict.code == witness.OK:
            self.stdout.write(self.style.SUCCESS(verdict.message))
        else:
            self.stderr.write(verdict.message)
        sys.exit(verdict.code)
