"""Profile photo thumbnails with Pillow: proof that the bytes are an image, and nothing else kept.

Uploaded files are hostile until shown otherwise. The format is read from the bytes (never the name
or the declared type alone) and must be JPEG, PNG or WebP and agree with the type the upload was
signed for; the pixel count is checked from the header before anything is decoded, so a tiny file
that inflates to gigapixels (a decompression bomb) is refused cheaply; the whole image is then
decoded, so a truncated file is refused too. The thumbnails are drawn from the pixels alone: EXIF
(GPS position, camera serial, time), XMP, ICC and comments are never copied, after the EXIF
orientation has been applied so the photo stands upright without it.

Each thumbnail is a centred square, ``size`` x ``size``, in WebP.
"""

from __future__ import annotations

import io
import warnings
from typing import TYPE_CHECKING

from bloodbank.domain.employees import (
    MAX_PHOTO_PIXELS,
    THUMBNAIL_SIZES,
    PhotoRejected,
    RenderedThumbnail,
)

if TYPE_CHECKING:  # Pillow is imported on first use: the API process never renders a photo
    from PIL.Image import Image as PilImage

# What Pillow calls each format it may find, and the content type an upload of it is signed for.
FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
WEBP_QUALITY = 82
TRUNCATED = "the image is truncated or damaged: upload the whole file again"


class PillowThumbnails:
    """Implements ``PhotoRenderer``."""

    def __init__(self, sizes: tuple[int, ...] = THUMBNAIL_SIZES, max_pixels: int = MAX_PHOTO_PIXELS) -> None:
        self._sizes = sizes
        self._max_pixels = max_pixels

    def render(self, data: bytes, content_type: str) -> list[RenderedThumbnail]:
        from PIL import Image, ImageOps

        image = self._decoded(data, content_type)
        try:
            upright = ImageOps.exif_transpose(image)
        except Exception:  # a malformed EXIF block: refuse rather than guess the orientation
            raise PhotoRejected(
                "the photo's metadata is damaged: save it again and upload the copy"
            ) from None
        try:
            pixels = upright.convert("RGBA" if _has_alpha(upright) else "RGB")
            return [
                RenderedThumbnail(
                    size, _webp(ImageOps.fit(pixels, (size, size), method=Image.Resampling.LANCZOS))
                )
                for size in self._sizes
            ]
        except Exception:  # an image Pillow opened but cannot draw: the file's fault, not ours
            raise PhotoRejected(
                "the image could not be processed: save it as JPEG or PNG and upload it again"
            ) from None

    def _decoded(self, data: bytes, content_type: str) -> PilImage:
        from PIL import Image, UnidentifiedImageError

        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            try:
                image = Image.open(io.BytesIO(data), formats=list(FORMATS))
            except UnidentifiedImageError:
                raise PhotoRejected("the file is not a JPEG, PNG or WebP image") from None
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise PhotoRejected(self._too_many_pixels()) from None
            except Exception:
                raise PhotoRejected(TRUNCATED) from None
            found = FORMATS.get(str(image.format))
            if found is None:
                raise PhotoRejected("the file is not a JPEG, PNG or WebP image")
            if found != content_type:
                raise PhotoRejected(f"the file is a {image.format} image but was uploaded as {content_type}")
            width, height = image.size
            if width * height > self._max_pixels or width < 1 or height < 1:
                raise PhotoRejected(self._too_many_pixels())
            try:
                image.load()  # every pixel: a truncated or corrupt file fails here
            except (Image.DecompressionBombError, Image.DecompressionBombWarning):
                raise PhotoRejected(self._too_many_pixels()) from None
            except Exception:
                raise PhotoRejected(
                    "the image is truncated or damaged: upload the whole file again"
                ) from None
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # an animated WebP or APNG: its first frame is the photo
        return image

    def _too_many_pixels(self) -> str:
        return f"the image has more than {self._max_pixels // 1_000_000} million pixels: make it smaller"


def _has_alpha(image: PilImage) -> bool:
    return image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)


def _webp(image: PilImage) -> bytes:
    """The pixels alone, as WebP: a fresh image carries no metadata of the upload."""
    from PIL import Image

    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    out = io.BytesIO()
    clean.save(out, format="WEBP", quality=WEBP_QUALITY, method=4)
    return out.getvalue()
