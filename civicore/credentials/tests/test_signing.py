from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID
from django.core.management import call_command

from civicore.credentials.services import EKU_DOCUMENT_SIGNING, SigningNotConfigured, signing_setup


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_setup_creates_a_ca_and_a_document_signing_certificate_it_issued(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    material = signing_setup(directory=directory)

    assert material.created_ca and material.created_signing
    ca, signing = _cert(directory / "ca.pem"), _cert(directory / "signing.pem")
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Civicore Root CA"
    assert ca.issuer == ca.subject
    assert "Civicore Document Signing" in signing.subject.rfc4514_string()
    signing.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_oid(ExtensionOID.BASIC_CONSTRAINTS).value.ca is True
    usage = signing.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_cert_sign
    eku = signing.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    assert EKU_DOCUMENT_SIGNING in eku and ExtendedKeyUsageOID.SERVER_AUTH not in eku
    ca_years = (ca.not_valid_after_utc - ca.not_valid_before_utc).days / 365.25
    signing_years = (signing.not_valid_after_utc - signing.not_valid_before_utc).days / 365.25
    assert 9.9 < ca_years < 10.1 and 2.9 < signing_years < 3.1


def test_keys_are_private_to_the_owner(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    signing_setup(directory=directory)

    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for key in ("signing.key", "ca.key"):
        assert stat.S_IMODE((directory / key).stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in (directory / "signing.key").read_bytes()


def test_setup_is_idempotent_and_force_rotates_the_signing_key_only(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    signing_setup(directory=directory)
    key, ca = (directory / "signing.key").read_bytes(), (directory / "ca.pem").read_bytes()

    again = signing_setup(directory=directory)
    assert not again.created_signing and (directory / "signing.key").read_bytes() == key

    rotated = signing_setup(directory=directory, force=True)
    assert rotated.created_signing and not rotated.created_ca
    assert (directory / "signing.key").read_bytes() != key
    assert (directory / "ca.pem").read_bytes() == ca
    _cert(directory / "signing.pem").verify_directly_issued_by(_cert(directory / "ca.pem"))
    assert len(list((directory / "retired").glob("signing-*.pem"))) == 1


def test_rotation_without_the_ca_key_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "signing"
    signing_setup(directory=directory)
    (directory / "ca.key").unlink()

    with pytest.raises(SigningNotConfigured):
        signing_setup(directory=directory, force=True)


def test_management_command(tmp_path: Path, settings, capsys) -> None:  # type: ignore[no-untyped-def]
    settings.SIGNING_DIR = tmp_path / "cmd"
    call_command("setup", "signing")
    assert (tmp_path / "cmd" / "signing.pem").exists()
    first = (tmp_path / "cmd" / "signing.pem").read_bytes()

    call_command("setup", "signing")
    assert (tmp_path / "cmd" / "signing.pem").read_bytes() == first
    call_command("setup", "signing", "--force")
    assert (tmp_path / "cmd" / "signing.pem").read_bytes() != first
