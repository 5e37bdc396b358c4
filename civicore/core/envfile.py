"""Create the local secrets file for a single-machine install (run before Django starts).

`python -m civicore.core.envfile var/secrets.env` writes fresh random secrets once and never
overwrites them: losing FIELD_ENCRYPTION_KEYS makes encrypted personal data unreadable.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path


def main(path: str) -> None:
    target = Path(path)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    key = base64.b64encode(os.urandom(32)).decode()
    lines = [
        "# Generated once for this installation. Keep it secret; back it up with the database.",
        f"SECRET_KEY={secrets.token_urlsafe(50)}",
        f"FIELD_ENCRYPTION_KEYS=k{secrets.token_hex(4)}:{key}",
        f"LOOKUP_HASH_KEY={secrets.token_urlsafe(32)}",
        "# Seals `civicore backup` files. Keep a copy away from the backups, or they cannot be read.",
        f"BACKUP_ENCRYPTION_KEY={base64.b64encode(os.urandom(32)).decode()}",
    ]
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "var/secrets.env")
