"""`civicore verify FILE` offline, with a cache filled from a running platform."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from civicore.agencies.tests.factories import make_officer
from civicore.core import jobs, jose
from civicore.credentials.tests.factories import make_application
from civicore.vc import keys, services
from civicore.vc.models import Credential
from civicore.verifier import cli

pytestmark = pytest.mark.django_db(transaction=True)


def _run(cache: Path, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(  # noqa: S603 - our own command
        [sys.executable, "-m", "civicore", "verify", "--cache", str(cache), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cache)},
    )
    return done.returncode, done.stdout, done.stderr


def test_offline_verification_from_a_refreshed_cache(
    signing_dir: Path, live_server: Any, settings: Any, tmp_path: Path
) -> None:
    settings.SITE_URL = live_server.url
    jose.ensure_signing_keys()  # as migrating the platform does; this test's flush removed them
    jose.reset_cache()
    keys.reset_cache()
    application = make_application()
    jobs.handler_for("credentials.issue")(application_id=application.pk)
    credential = Credential.objects.get(document__application=application)
    document = tmp_path / "credential.sd-jwt"
    document.write_text(credential.token)
    cache = tmp_path / "cache"

    assert _run(cache, str(document))[0] == 2  # nothing cached yet: it says so
    code, out, err = _run(cache, "--refresh", live_server.url, str(document))
    assert code == 0, (out, err)
    assert "verdict: valid" in out and keys.issuer_id(credential.agency) in out

    # Offline: the cache alone decides. A tampered copy is refused.
    tampered = tmp_path / "tampered.sd-jwt"
    tampered.write_text(credential.token.replace(".", ".A", 1))
    code, out, _ = _run(cache, str(tampered))
    assert code == 1 and "verdict: valid" not in out

    # Revoked: the next refresh brings the status list that says so.
    officer = make_officer(agency=credential.agency, roles=("issuer",))
    services.credential_status_change(
        user=officer.user, public_id=credential.public_id, action="revoke", reason="x"
    )
    services._status_cache.clear()
    code, out, _ = _run(cache, "--refresh", live_server.url, str(document))
    assert code == 1 and "verdict: revoked" in out

    # Without the status lists, the status is unknown rather than assumed valid.
    for path in (cache / "status").iterdir():
        path.unlink()
    code, out, _ = _run(cache, str(document))
    assert code == 1 and "verdict: status_unknown" in out


def test_a_changed_platform_key_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "anchors.json").write_text('{"keys": []}')
    with pytest.raises(cli.CacheError):
        cli.load_cached(cache, now=0)
    assert cli.main(["--cache", str(cache), "/nonexistent"]) == 2
    (tmp_path / "doc.pdf").write_bytes(b"%PDF-1.7\n")
    assert cli.main(["--cache", str(cache), str(tmp_path / "doc.pdf")]) == 2
