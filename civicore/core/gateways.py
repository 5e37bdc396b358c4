"""Outside systems behind Protocols, each with an in-process implementation chosen by a setting."""

from __future__ import annotations

from functools import cache
from typing import Protocol

from django.conf import settings
from django.utils.module_loading import import_string


class MalwareScanner(Protocol):
    def scan(self, data: bytes) -> str | None:
        """Return the name of what was found, or None when the content is clean."""


class SignatureMalwareScanner:
    """Refuses executables and scripts by their magic bytes and the EICAR test string.

    This is the embedded default; a deployment points MALWARE_SCANNER at a ClamAV-backed
    implementation of the same Protocol.
    """

    EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
    SIGNATURES = {
        b"MZ": "Windows executable",
        b"\x7fELF": "ELF executable",
        b"\xcf\xfa\xed\xfe": "Mach-O executable",
        b"#!": "script",
    }

    def scan(self, data: bytes) -> str | None:
        if self.EICAR in data[:4096]:
            return "EICAR test file"
        for magic, name in self.SIGNATURES.items():
            if data.startswith(magic):
                return name
        return None


@cache
def malware_scanner() -> MalwareScanner:
    return import_string(settings.MALWARE_SCANNER)()
