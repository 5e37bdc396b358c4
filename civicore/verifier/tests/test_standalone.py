"""The verifier ships to banks and employers on its own: it must work where Django (and the rest
of Civicore) cannot even be imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    class NoDjango(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "django" or name.startswith("django."):
                raise ImportError(f"{name} is not importable here")
            return None

    sys.meta_path.insert(0, NoDjango())
    for name in [n for n in sys.modules if n == "django" or n.startswith("django.")]:
        del sys.modules[name]
    try:
        import django  # noqa: F401
    except ImportError:
        pass
    else:
        raise SystemExit("the blocker did not work")

    import civicore.verifier as verifier
    import civicore.verifier.jose, civicore.verifier.sdjwt, civicore.verifier.statuslist
    import civicore.verifier.trustlist, civicore.verifier.errors, civicore.verifier.cli
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    kid = verifier.jwk_thumbprint(verifier.public_jwk(key))
    entry = {"kid": kid, "jwk": verifier.public_jwk(key), "not_before": 0}
    trust_token = verifier.sign_trust_list(
        [{"iss": "https://a.gov.vn", "name": {"vi": "A", "en": "A"}, "keys": [entry]}],
        key=key, kid=kid, iss="t", iat=100, exp=10_000,
    )
    trust = verifier.load_trust_list(trust_token, anchors=[verifier.public_jwk(key)], now=200)
    token = verifier.issue({"a": 1}, issuer="https://a.gov.vn", vct="v", key=key, kid=kid, iat=150)
    assert verifier.verify(token, trust=trust, now=200).ok
    outside = sorted(
        n for n in sys.modules
        if (n.startswith("civicore") and not n.startswith("civicore.verifier") and n != "civicore")
        or n == "django" or n.startswith("django.")
    )
    assert not outside, outside
    print("standalone ok")
    """
)


def test_the_package_imports_and_works_without_django() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert "standalone ok" in result.stdout
