"""`civicore` command: Django management commands under one name."""

import os
import sys


def main() -> None:
    if sys.argv[1:2] == ["verify"]:
        # The offline verifier needs neither Django nor settings: anyone can run it.
        from civicore.verifier.cli import main as verify_main

        raise SystemExit(verify_main(sys.argv[2:]))
    if sys.argv[1:3] == ["transparency", "witness"]:
        # So is the witness: other agencies, or anyone, watch the log with it.
        from civicore.transparency.witness import main as witness_main

        raise SystemExit(witness_main(sys.argv[3:]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["civicore", *sys.argv[1:]])


if __name__ == "__main__":
    main()
