"""Profile photo thumbnails on real small images made with Pillow here: sizes, upright, no metadata,
and the files that must be refused (not an image, truncated, the wrong type, too many pixels)."""

from __future__ import annotations

import io

import pytest
from PIL import ExifTags, Image

from bloodbank.adapters.images import PillowThumbnails
from bloodbank.domain.employees import THUMBNAIL_SIZES, PhotoRejected

RED, BLUE = (220, 20, 20), (20, 20, 220)


def two_halves(width: int = 300, height: int = 200) -> Image.Image:
    """Left half red, right half blue: which way is up shows in the thumbnail."""
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))
    return image


def exif_with_gps(orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "PhoneMaker"
    exif[ExifTags.Base.BodySerialNumber] = "SN-123456"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (51.0, 30.0, 26.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (0.0, 7.0, 39.0)
    return exif


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **options)
    return out.getvalue()


def jpeg_with_gps(orientation: int = 1) -> bytes:
    data = encoded(two_halves(), "JPEG", exif=exif_with_gps(orientation), quality=95)
    # The fixture really carries a location (so the test below proves it is dropped).
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return data


def near(pixel: object, colour: tuple[int, int, int]) -> bool:
    assert isinstance(pixel, tuple)
    return all(abs(int(a) - b) < 40 for a, b in zip(pixel[:3], colour, strict=True))


def test_a_jpeg_becomes_square_webp_thumbnails_of_each_size() -> None:
    rendered = PillowThumbnails().render(jpeg_with_gps(), "image/jpeg")
    assert [r.size for r in rendered] == list(THUMBNAIL_SIZES) == [128, 512]
    for thumb in rendered:
        image = Image.open(io.BytesIO(thumb.data))
        assert image.format == "WEBP"
        assert image.size == (thumb.size, thumb.size)
        assert thumb.content_type == "image/webp"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_metadata_is_gone_gps_included(fmt: str) -> None:
    data = encoded(two_halves(), fmt, exif=exif_with_gps())
    content_type = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}[fmt]
    for thumb in PillowThumbnails().render(data, content_type):
        image = Image.open(io.BytesIO(thumb.data))
        assert "exif" not in image.info
        assert "xmp" not in image.info
        exif = image.getexif()
        assert not exif.get_ifd(ExifTags.IFD.GPSInfo)
        assert len(exif) == 0
        assert b"PhoneMaker" not in thumb.data
        assert b"SN-123456" not in thumb.data


def test_the_exif_orientation_is_applied_before_it_is_dropped() -> None:
    # Orientation 6: the camera was turned; viewers rotate the stored pixels 90 degrees clockwise,
    # which puts the stored left (red) half on top.
    small = Image.open(
        io.BytesIO(PillowThumbnails().render(jpeg_with_gps(orientation=6), "image/jpeg")[0].data)
    )
    pixels = small.convert("RGB")
    assert near(pixels.getpixel((20, 20)), RED)
    assert near(pixels.getpixel((20, 108)), BLUE)
    # Without the orientation the bottom-left corner stays red: the test tells the two apart.
    plain = Image.open(io.BytesIO(PillowThumbnails().render(jpeg_with_gps(), "image/jpeg")[0].data))
    assert near(plain.convert("RGB").getpixel((20, 108)), RED)


def test_transparency_is_kept() -> None:
    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    rendered = PillowThumbnails().render(encoded(image, "PNG"), "image/png")
    assert Image.open(io.BytesIO(rendered[0].data)).mode == "RGBA"


@pytest.mark.parametrize(
    ("data", "content_type", "says"),
    [
        (b"hello, this is a text file called photo.jpg\n", "image/jpeg", "not a JPEG, PNG or WebP"),
        (b"", "image/jpeg", "not a JPEG, PNG or WebP"),
        (b"GIF89a" + bytes(200), "image/jpeg", "not a JPEG, PNG or WebP"),
        (encoded(two_halves(), "GIF"), "image/jpeg", "not a JPEG, PNG or WebP"),
        (encoded(two_halves(), "PNG"), "image/jpeg", "is a PNG image but was uploaded as image/jpeg"),
        (encoded(two_halves(), "JPEG")[:600], "image/jpeg", "truncated"),
        (encoded(two_halves(), "PNG")[:300], "image/png", "truncated"),
    ],
    ids=["text", "empty", "gif-magic", "gif", "png-as-jpeg", "truncated-jpeg", "truncated-png"],
)
def test_files_that_are_not_acceptable_images_are_rejected_with_a_reason(
    data: bytes, content_type: str, says: str
) -> None:
    with pytest.raises(PhotoRejected) as rejected:
        PillowThumbnails().render(data, content_type)
    assert says in rejected.value.reason


def test_too_many_pixels_is_refused_before_decoding() -> None:
    with pytest.raises(PhotoRejected, match="more than"):
        PillowThumbnails(max_pixels=1_000_000).render(
            encoded(Image.new("1", (2000, 1000)), "PNG"), "image/png"
        )


def test_a_decompression_bomb_is_refused() -> None:
    bomb = encoded(Image.new("1", (12_000, 12_000)), "PNG")  # 144 million pixels in a few kilobytes
    assert len(bomb) < 100_000
    with pytest.raises(PhotoRejected, match="million pixels"):
        PillowThumbnails().render(bomb, "image/png")
