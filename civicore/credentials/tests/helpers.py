"""Making PDFs the way a forger or an editor would."""

from __future__ import annotations

import io
from pathlib import Path

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from reportlab.pdfgen import canvas

from civicore.credentials.services import signing_setup


def plain_pdf(text: str = "Giấy tờ giả mạo") -> bytes:
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer)
    pdf.drawString(100, 700, text)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def sign_with(pdf: bytes, directory: Path) -> bytes:
    signer = signers.SimpleSigner.load(
        key_file=str(directory / "signing.key"),
        cert_file=str(directory / "signing.pem"),
        ca_chain_files=(str(directory / "ca.pem"),),
    )
    meta = signers.PdfSignatureMetadata(field_name="Sig", subfilter=fields.SigSeedSubFilter.PADES)
    return bytes(signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), meta, signer=signer).getvalue())


def foreign_signed(pdf: bytes, tmp_path: Path) -> bytes:
    """Signed by a CA of someone else's making, with the same names as ours."""
    other = tmp_path / "forger"
    signing_setup(directory=other)
    return sign_with(pdf, other)


def append_update(pdf: bytes) -> bytes:
    """An incremental update after the signature, as an editor saving the file would add."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    writer.root["/CivicoreEdited"] = generic.TextStringObject("changed after signing")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def flip_byte_in_signed_range(pdf: bytes) -> bytes:
    """Change one byte that the signature covers, leaving the file readable."""
    index = pdf.index(b"ReportLab") + 3
    changed = bytearray(pdf)
    changed[index] ^= 0x01
    return bytes(changed)
