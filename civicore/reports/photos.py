"""Checking and cleaning citizens' photos.

A photo is accepted by its content, never its name: Pillow must recognise it as JPEG, PNG or
WebP and verify it, its pixel count must stay under a limit (a small file can decompress into
gigabytes), and the malware scanner must pass it. What is kept is a re-encoding: oriented as the
camera meant it, at most PHOTO_MAX_SIDE pixels on the long side, without EXIF, GPS, ICC or any
other metadata. The GPS position the camera recorded is read first, to place a report that came
without a pin.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import IO, Any

from django.conf import settings
from django.utils.translation import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError

from civicore.core.errors import ValidationFailed
from civicore.core.gateways import malware_scanner

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP"}
GPS_IFD = 0x8825


class PhotoRejected(ValidationFailed):
    """The photo was not accepted."""

    code = "photo_rejected"


@dataclass(frozen=True)
class CleanPhoto:
    data: bytes  # JPEG without metadata
    width: int
    height: int
    latitude: float | None  # where the camera says it was taken
    longitude: float | None
    original_format: str


def _limits() -> tuple[int, int, int]:
    return (
        int(getattr(settings, "PHOTO_MAX_BYTES", settings.UPLOAD_MAX_BYTES)),
        int(getattr(settings, "PHOTO_MAX_PIXELS", 40_000_000)),
        int(getattr(settings, "PHOTO_MAX_SIDE", 1600)),
    )


def _read(upload: IO[bytes] | bytes, limit: int) -> bytes:
    if isinstance(upload, bytes | bytearray):
        data = bytes(upload)
    else:
        if hasattr(upload, "seek"):
            upload.seek(0)
        data = upload.read(limit + 1)
    if len(data) > limit:
        raise PhotoRejected(
            _("The photo is larger than %(mb)s MB.") % {"mb": round(limit / 1024 / 1024, 1)},
            code="photo_too_large",
        )
    if not data:
        raise PhotoRejected(_("The photo is empty."), code="photo_empty")
    return data


def _not_an_image() -> PhotoRejected:
    return PhotoRejected(
        _("This file is not a photo we can accept. Upload a JPEG, PNG or WebP image."),
        code="photo_type_not_allowed",
    )


def _too_many_pixels() -> PhotoRejected:
    return PhotoRejected(
        _("The photo has too many pixels. Upload a smaller photo."), code="photo_too_many_pixels"
    )


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """The image, opened and verified, after the header's size was checked: nothing big is decoded."""
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; a warning is a refusal here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
            if probe.format not in ALLOWED_FORMATS:
                raise _not_an_image()
            width, height = probe.size
            if width <= 0 or height <= 0:
                raise _not_an_image()
            if width * height > max_pixels:
                raise _too_many_pixels()
            probe.verify()
            # verify() leaves the image unusable: open it again to decode it.
            image = Image.open(io.BytesIO(data))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise _too_many_pixels() from exc
        except PhotoRejected:
            raise
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
            raise _not_an_image() from exc
    return image


def _ratio(value: Any) -> float:
    if isinstance(value, tuple) and len(value) == 2:
        numerator, denominator = value
        return float(numerator) / float(denominator) if denominator else 0.0
    return float(value)


def _degrees(parts: Any, ref: Any) -> float | None:
    try:
        degrees, minutes, seconds = (_ratio(part) for part in parts)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    value = degrees + minutes / 60 + seconds / 3600
    if isinstance(ref, bytes):
        ref = ref.decode("ascii", "ignore")
    if str(ref).strip().upper() in {"S", "W"}:
        value = -value
    return value


def gps_position(image: Image.Image) -> tuple[float | None, float | None]:
    """The (latitude, longitude) in the image's EXIF GPS block, or (None, None)."""
    try:
        gps = image.getexif().get_ifd(GPS_IFD)
    except Exception:  # noqa: BLE001 - a broken EXIF block only means there is no position
        return None, None
    if not gps or 2 not in gps or 4 not in gps:
        return None, None
    latitude = _degrees(gps[2], gps.get(1, "N"))
    longitude = _degrees(gps[4], gps.get(3, "E"))
    if latitude is None or longitude is None:
        return None, None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180) or (latitude == 0 and longitude == 0):
        return None, None
    return latitude, longitude


def _flatten(image: Image.Image) -> Image.Image:
    """RGB pixels only: transparency goes onto white, palettes and other modes are converted."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode != "RGB":
        return image.convert("RGB")
    return image


def clean_photo(upload: IO[bytes] | bytes) -> CleanPhoto:
    """Check an uploaded photo and return its metadata-free re-encoding (or raise PhotoRejected)."""
    max_bytes, max_pixels, max_side = _limits()
    data = _read(upload, max_bytes)
    if malware_scanner().scan(data):
        raise PhotoRejected(_("The photo was refused because it looks harmful."), code="photo_harmful")
    image = _open(data, max_pixels)
    original_format = str(image.format)
    latitude, longitude = gps_position(image)
    try:
        image = ImageOps.exif_transpose(image) or image
    except Exception:  # noqa: BLE001,S110 - an unreadable orientation tag: keep the pixels as they are
        pass
    image = _flatten(image)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    # A new image holds only pixels: nothing of the original's info dict (EXIF, ICC, XMP, comments)
    # can reach the saved file.
    bare = Image.new("RGB", image.size)
    bare.paste(image)
    out = io.BytesIO()
    bare.save(out, format="JPEG", quality=85, optimize=True)
    return CleanPhoto(
        data=out.getvalue(),
        width=bare.width,
        height=bare.height,
        latitude=latitude,
        longitude=longitude,
        original_format=original_format,
    )
