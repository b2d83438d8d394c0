"""Attachment rules (contract §3.4): type, magic bytes, size, name and base64."""

from __future__ import annotations

import base64

import pytest

from postventa.domain.attachments import (
    DEFAULT_MAX_ATTACHMENT_BYTES,
    build_attachment,
    decode_base64,
    decoded_size_upper_bound,
)
from postventa.domain.errors import PostventaError, RefusalKind

LIMIT = 1024
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
TEXT = "Factura 0001-000123\nTotal: $ 1.500,00 — gracias\n".encode()
GIF = b"GIF89a\x01\x00\x01\x00"
SAMPLE = {"pdf": PDF, "jpg": JPEG, "jpeg": JPEG, "png": PNG, "txt": TEXT}


def refusal_code(name: str, extension: str, content: bytes, *, max_bytes: int = LIMIT) -> str:
    with pytest.raises(PostventaError) as caught:
        build_attachment(name, extension, content, max_bytes=max_bytes)
    assert caught.value.refusal.kind is RefusalKind.INVALID
    return caught.value.refusal.code


def spellings(extension: str) -> list[str]:
    return [extension, extension.upper(), f".{extension}", f".{extension.upper()}", extension.capitalize()]


@pytest.mark.parametrize(
    ("given", "extension"),
    [(given, extension) for extension in SAMPLE for given in spellings(extension)],
)
def test_allowed_extension_with_matching_content_is_accepted(given, extension):
    attachment = build_attachment("factura", given, SAMPLE[extension], max_bytes=LIMIT)

    assert attachment.name == "factura"
    assert attachment.extension == extension
    assert attachment.content == SAMPLE[extension]
    assert attachment.file_name == f"factura.{extension}"


@pytest.mark.parametrize(
    ("extension", "content_type"),
    [
        ("pdf", "application/pdf"),
        ("jpg", "image/jpeg"),
        ("jpeg", "image/jpeg"),
        ("png", "image/png"),
        ("txt", "text/plain; charset=utf-8"),
    ],
)
def test_content_type_on_download(extension, content_type):
    assert build_attachment("a", extension, SAMPLE[extension], max_bytes=LIMIT).content_type == content_type


@pytest.mark.parametrize(
    ("extension", "content"),
    [
        ("pdf", PNG),
        ("pdf", b"PDF-1.7 but no percent sign"),
        ("pdf", b" %PDF-1.7"),
        ("jpg", PNG),
        ("jpeg", PDF),
        ("jpg", b"\xff\xd8"),
        ("png", JPEG),
        ("png", b"\x89PNG\r\n"),
        ("png", GIF),
        ("pdf", GIF),
    ],
)
def test_content_that_does_not_match_the_extension_is_refused(extension, content):
    assert refusal_code("factura", extension, content) == "attachment_content_mismatch"


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe not utf-8",
        b"caf\xe9",  # latin-1
        b"hola\x00chau",
        b"\x00",
        b"hola\x1bchau",
        b"hola\x7f",
        PDF.replace(b"\n", b"\x00"),
        PNG,
    ],
)
def test_txt_that_is_not_utf8_text_is_refused(content):
    assert refusal_code("notas", "txt", content) == "attachment_content_mismatch"


@pytest.mark.parametrize(
    "content",
    [b"hola\r\nchau\tok\n", b"\xef\xbb\xbfcon BOM", "emoji 😀 ñ".encode(), b"form\x0cfeed"],
)
def test_txt_accepts_utf8_text_with_usual_whitespace(content):
    assert build_attachment("notas", "txt", content, max_bytes=LIMIT).content == content


@pytest.mark.parametrize("extension", list(SAMPLE))
def test_empty_file_is_refused(extension):
    assert refusal_code("vacio", extension, b"") == "attachment_empty"


def test_file_at_the_limit_is_accepted_and_one_byte_more_is_refused():
    at_limit = PDF + b"\x00" * (LIMIT - len(PDF))

    assert len(build_attachment("f", "pdf", at_limit, max_bytes=LIMIT).content) == LIMIT
    assert refusal_code("f", "pdf", at_limit + b"\x00") == "attachment_too_large"


def test_default_limit_is_25_mib():
    assert DEFAULT_MAX_ATTACHMENT_BYTES == 25 * 1024 * 1024
    at_limit = PDF + bytes(DEFAULT_MAX_ATTACHMENT_BYTES - len(PDF))

    assert build_attachment("f", "pdf", at_limit, max_bytes=DEFAULT_MAX_ATTACHMENT_BYTES).content is at_limit
    over = at_limit + b"\x00"
    assert refusal_code("f", "pdf", over, max_bytes=DEFAULT_MAX_ATTACHMENT_BYTES) == "attachment_too_large"


def test_size_is_checked_before_the_content_type():
    assert refusal_code("f", "png", PDF + bytes(LIMIT)) == "attachment_too_large"


@pytest.mark.parametrize("name", ["../factura", "dir/factura", "a\\b", "C:\\temp\\factura", "/etc/passwd"])
def test_name_with_a_path_separator_is_refused(name):
    assert refusal_code(name, "pdf", PDF) == "attachment_name_invalid"


def test_name_of_200_characters_is_accepted_and_201_refused():
    assert build_attachment("n" * 200, "pdf", PDF, max_bytes=LIMIT).name == "n" * 200
    assert refusal_code("n" * 201, "pdf", PDF) == "attachment_name_too_long"


def test_name_is_trimmed():
    assert build_attachment("  factura marzo  ", "pdf", PDF, max_bytes=LIMIT).name == "factura marzo"


@pytest.mark.parametrize("name", ["", "   "])
def test_blank_name_is_missing(name):
    assert refusal_code(name, "pdf", PDF) == "attachment_name_missing"


@pytest.mark.parametrize("name", ["fac\x00tura", "fac\ntura", "a\x1bb", "a\ud800b"])
def test_name_with_control_characters_is_refused(name):
    assert refusal_code(name, "pdf", PDF) == "invalid_characters"


def test_non_ascii_name_is_accepted():
    assert (
        build_attachment("Factura Nº 12 — José", "pdf", PDF, max_bytes=LIMIT).name == "Factura Nº 12 — José"
    )


@pytest.mark.parametrize("extension", ["exe", "gif", "docx", ".EXE", "zip", "pdf.exe", "p df", "html"])
def test_disallowed_extension_is_refused(extension):
    assert refusal_code("factura", extension, PDF) == "attachment_extension_not_allowed"


@pytest.mark.parametrize("extension", ["", " ", "."])
def test_missing_extension_is_refused(extension):
    assert refusal_code("factura", extension, PDF) == "attachment_extension_missing"


def test_extension_is_checked_before_the_name_and_the_content():
    assert refusal_code("a/b", "exe", b"") == "attachment_extension_not_allowed"
    assert refusal_code("a/b", "pdf", b"") == "attachment_name_invalid"


def test_base64_decodes_standard_text():
    assert decode_base64(base64.b64encode(PDF).decode()) == PDF


def test_base64_with_whitespace_anywhere_is_accepted():
    encoded = base64.b64encode(PNG).decode()
    spaced = " \n" + "\r\n".join(encoded[i : i + 4] for i in range(0, len(encoded), 4)) + "\t \n"

    assert decode_base64(spaced) == PNG
    assert decode_base64(base64.encodebytes(PNG).decode()) == PNG  # MIME style, 76-column lines


@pytest.mark.parametrize(
    "encoded",
    [
        "JVBERi0*",
        "JVBE Ri0!",
        "JVBERi0xLjc-",  # URL-safe alphabet
        "JVBERi0xLjc_",
        "JVBERi0",  # not a multiple of 4
        "A===",
        "====",
        "JV=BERi0",
        "JVBERi0=AAAA",
        "JVBERiñx",
        "data:application/pdf;base64,JVBERi0x",
        "JVBE\x00Ri0x",
    ],
)
def test_base64_with_other_characters_is_refused(encoded):
    with pytest.raises(PostventaError) as caught:
        decode_base64(encoded)

    assert caught.value.refusal.code == "attachment_base64_invalid"


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 100, 1001])
def test_decoded_size_bound_is_never_below_the_real_size(size):
    encoded = base64.b64encode(b"x" * size)

    assert decode_base64(encoded.decode()) == b"x" * size
    assert size <= decoded_size_upper_bound(len(encoded)) <= size + 2
