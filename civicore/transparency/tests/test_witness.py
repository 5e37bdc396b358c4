"""`civicore transparency witness` against a real server and a real log: first sight, growth it
can prove, and each way a log can misbehave (rewritten, truncated, re-signed, unreachable) with
its own exit code. The log is tampered with in the database, as an attacker with it would."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from civicore.core import jose
from civicore.transparency import selectors, services
from civicore.transparency.models import LogState, Subtree, TreeHead
from civicore.transparency.tests.test_store import pairs


def run(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("transparency", *args, stdout=out, stderr=err)
    return int(exited.value.code or 0), out.getvalue(), err.getvalue()


@pytest.fixture
def site(live_server: Any, settings: Any, tmp_path: Path) -> tuple[str, str]:
    settings.SITE_URL = live_server.url
    jose.reset_cache()
    return live_server.url, str(tmp_path / "witness.json")


def grow(start: int, count: int) -> TreeHead:
    services.log_append(entries=pairs(start, count))
    return services.tree_head_sign_now()


@pytest.mark.django_db(transaction=True)
def test_first_sight_then_growth_then_no_change(site: tuple[str, str]) -> None:
    url, state = site
    first = grow(0, 100)
    code, out, _err = run("witness", url, "--state", state)
    assert code == 0 and out.startswith("FIRST SIGHT") and first.root_hex in out
    grow(100, 37)
    code, out, _err = run("witness", url, "--state", state)
    assert code == 0 and out.startswith("CONSISTENT") and "37 new entries" in out
    code, out, _err = run("witness", url + "/", "--state", state)
    assert code == 0 and "no new entries" in out
    assert '"size": 137' in Path(state).read_text()


@pytest.mark.django_db(transaction=True)
def test_a_rewritten_subtree_is_a_fork_and_the_state_keeps_the_old_head(site: tuple[str, str]) -> None:
    url, state = site
    seen = grow(0, 100)
    assert run("witness", url, "--state", state)[0] == 0
    # Rewrite the first 64 entries' subtree: the next head's root is computed over the forgery.
    Subtree.objects.filter(level=6, index=0).update(hash=b"\x66" * 32)
    forged = grow(100, 20)
    code, _out, err = run("witness", url, "--state", state)
    assert code == 2 and err.startswith("FORK")
    assert seen.root_hex in err and forged.root_hex in err  # the report names both heads
    assert '"size": 100' in Path(state).read_text()  # not saved
    assert run("witness", url, "--state", state)[0] == 2  # and still refused next time


@pytest.mark.django_db(transaction=True)
def test_a_log_that_disowns_a_head_it_signed_is_a_fork(site: tuple[str, str]) -> None:
    url, state = site
    grow(0, 10)
    assert run("witness", url, "--state", state)[0] == 0
    TreeHead.objects.filter(size=10).delete()  # history rewritten: no head of 10 any more
    grow(10, 5)
    code, _out, err = run("witness", url, "--state", state)
    assert code == 2 and err.startswith("FORK") and "no longer" in err


@pytest.mark.django_db(transaction=True)
def test_two_roots_for_one_size_is_a_fork(site: tuple[str, str]) -> None:
    url, state = site
    grow(0, 10)
    assert run("witness", url, "--state", state)[0] == 0
    LogState.objects.update(root=b"\x01" * 32)
    services.tree_head_sign_now()
    code, _out, err = run("witness", url, "--state", state)
    assert code == 2 and "same size" in err


@pytest.mark.django_db(transaction=True)
def test_a_truncated_log_is_reported(site: tuple[str, str]) -> None:
    url, state = site
    grow(0, 10)
    grow(10, 20)
    assert run("witness", url, "--state", state)[0] == 0
    LogState.objects.update(size=10, root=selectors.root(10))
    services.tree_head_sign_now()
    code, _out, err = run("witness", url, "--state", state)
    assert code == 2 and err.startswith("TRUNCATED") and "size 10," in err and "size 30," in err


@pytest.mark.django_db(transaction=True)
def test_a_tampered_signature_or_an_unknown_key_is_refused(site: tuple[str, str]) -> None:
    url, state = site
    grow(0, 5)
    assert run("witness", url, "--state", state)[0] == 0
    head = grow(5, 5)
    body, _dot, signature = head.jws.rpartition(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    TreeHead.objects.filter(pk=head.pk).update(jws=f"{body}.{flipped}")
    code, _out, err = run("witness", url, "--state", state)
    assert code == 3 and err.startswith("BAD SIGNATURE")

    jose.signing_key_rotate(alg="ES256", immediately=True)
    jose.reset_cache()
    grow(10, 5)
    code, _out, err = run("witness", url, "--state", state)
    assert code == 3 and err.startswith("UNKNOWN KEY")
    code, out, _err = run("witness", url, "--state", state, "--trust-new-keys")
    assert code == 0 and out.startswith("CONSISTENT")


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_or_empty_log_is_exit_4(site: tuple[str, str], tmp_path: Path) -> None:
    url, state = site
    code, _out, err = run("witness", url, "--state", state)  # no head signed yet: 404
    assert code == 4 and "HTTP 404" in err
    code, _out, err = run("witness", "http://127.0.0.1:9", "--state", state)
    assert code == 4 and err.startswith("UNREACHABLE")
    code, _out, err = run("witness", "file:///etc/passwd", "--state", state)
    assert code == 4
    assert not Path(state).exists()
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2")
    assert run("witness", url, "--state", str(broken))[0] == 4


@pytest.mark.django_db
def test_the_sign_subcommand_signs_a_head_now() -> None:
    services.log_append(entries=pairs(0, 3))
    out = io.StringIO()
    call_command("transparency", "sign", stdout=out)
    head = TreeHead.objects.get()
    assert head.size == 3 and head.root_hex in out.getvalue()
