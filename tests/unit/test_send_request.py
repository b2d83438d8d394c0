"""Check 7 of the send: the reason, the text and the attachment read from the parameters."""

from __future__ import annotations

import base64

import pytest

from postventa.domain.errors import PostventaError, RefusalKind
from postventa.domain.parameters import Parameters
from postventa.domain.reasons import Reason
from postventa.domain.send_request import UploadedFile, read_send_request

LIMIT = 4096
PDF = b"%PDF-1.4\n%test\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
PDF_BASE64 = base64.b64encode(PDF).decode()


def read(**values):
    return read_send_request(Parameters.collect([list(values.items())]), max_attachment_bytes=LIMIT)


def refusal_code(**values) -> str:
    with pytest.raises(PostventaError) as caught:
        read(**values)
    assert caught.value.refusal.kind is RefusalKind.INVALID
    return caught.value.refusal.code


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (1, Reason.REQUEST_VARIANTS),
        ("2", Reason.REQUEST_BILLING_INFO),
        (" 3 ", Reason.SEND_INVOICE_LINK),
        (5, Reason.DELIVERY_PROMISE),
        ("OTHER", Reason.OTHER),
        ("other", Reason.OTHER),
        ("Other", Reason.OTHER),
        ("request_variants", Reason.REQUEST_VARIANTS),
        ("Request_Billing_Info", Reason.REQUEST_BILLING_INFO),
        ("send_invoice_link", Reason.SEND_INVOICE_LINK),
        (" DELIVERY_PROMISE ", Reason.DELIVERY_PROMISE),
    ],
)
def test_reason_by_number_or_name_in_any_case(given, reason):
    request = read(messageOptions=given, message="Hola")

    assert request.reason is reason


@pytest.mark.parametrize("empty", [None, ""])
def test_missing_reason_is_refused(empty):
    assert refusal_code(messageOptions=empty, message="Hola") == "reason_missing"
    assert refusal_code(message="Hola") == "reason_missing"


@pytest.mark.parametrize(
    "given",
    [0, 6, -1, "0", "6", "FOO", "request variants", "4.0", 4.0, True, "٣", "²", "１", " "],
)
def test_unknown_reason_is_refused(given):
    assert refusal_code(messageOptions=given, message="Hola") == "reason_invalid"


def test_unknown_reason_message_lists_the_reasons():
    with pytest.raises(PostventaError) as caught:
        read(messageOptions="FOO")

    for text in ("1 REQUEST_VARIANTS", "4 OTHER", "5 DELIVERY_PROMISE", "messageOptions"):
        assert text in caught.value.refusal.message


@pytest.mark.parametrize("reason", [1, 2, 5])
def test_template_reasons_ignore_the_message_and_say_so(reason):
    request = read(messageOptions=reason, message="Este texto no se envía")

    assert request.free_text is None
    assert request.message_ignored is True


@pytest.mark.parametrize("reason", [1, 2, 5])
def test_template_reasons_without_message_are_not_flagged(reason):
    request = read(messageOptions=reason)

    assert request.free_text is None
    assert request.message_ignored is False


def test_template_reason_ignores_even_an_invalid_message():
    request = read(messageOptions=1, message="a" * 1000 + "\x00")

    assert request.message_ignored is True


@pytest.mark.parametrize("reason", [3, 4])
def test_free_text_reasons_need_text(reason):
    assert refusal_code(messageOptions=reason) == "message_missing"
    assert refusal_code(messageOptions=reason, message="   ") == "message_missing"


@pytest.mark.parametrize("reason", [3, 4])
def test_free_text_reasons_keep_the_normalised_text(reason):
    request = read(messageOptions=reason, message="  Cafe\u0301\r\nlisto  ")

    assert request.free_text == "Café\nlisto"
    assert request.message_ignored is False
    assert request.attachment is None


def test_free_text_is_checked_for_length():
    assert refusal_code(messageOptions=4, message="a" * 351) == "message_too_long"
    assert read(messageOptions=4, message="a" * 350).free_text == "a" * 350


def test_a_numeric_message_is_taken_as_text():
    assert read(messageOptions=4, message=42).free_text == "42"


def test_the_reason_is_checked_before_the_text_and_the_text_before_the_attachment():
    assert refusal_code(messageOptions="FOO", file="not a file") == "reason_invalid"
    assert refusal_code(messageOptions=4, file="not a file") == "message_missing"
    assert refusal_code(messageOptions=4, message="Hola", file="not a file") == "attachment_not_a_file"


def test_uploaded_file_becomes_the_attachment():
    request = read(messageOptions=4, message="Adjunto", file=UploadedFile("Factura Marzo.PDF", PDF))

    assert request.attachment is not None
    assert (request.attachment.name, request.attachment.extension) == ("Factura Marzo", "pdf")
    assert request.attachment.content == PDF


def test_uploaded_file_with_several_dots_keeps_all_but_the_extension():
    request = read(messageOptions=4, message="x", file=UploadedFile("factura.2025.03.png", PNG))

    assert request.attachment is not None
    assert request.attachment.file_name == "factura.2025.03.png"


@pytest.mark.parametrize(
    ("filename", "content", "code"),
    [
        ("factura", PDF, "attachment_extension_missing"),
        (".pdf", PDF, "attachment_extension_missing"),
        ("factura.exe", PDF, "attachment_extension_not_allowed"),
        ("factura.gif", PDF, "attachment_extension_not_allowed"),
        ("../factura.pdf", PDF, "attachment_name_invalid"),
        ("C:\\tmp\\factura.pdf", PDF, "attachment_name_invalid"),
        ("n" * 201 + ".pdf", PDF, "attachment_name_too_long"),
        ("factura.pdf", b"", "attachment_empty"),
        ("factura.pdf", PNG, "attachment_content_mismatch"),
        ("factura.pdf", PDF + bytes(LIMIT), "attachment_too_large"),
    ],
)
def test_uploaded_file_is_checked(filename, content, code):
    assert refusal_code(messageOptions=4, message="x", file=UploadedFile(filename, content)) == code


@pytest.mark.parametrize("value", ["factura.pdf", 12, True])
def test_file_that_is_not_an_uploaded_file_is_refused(value):
    assert refusal_code(messageOptions=4, message="x", file=value) == "attachment_not_a_file"


def test_file_and_base64_together_are_refused():
    code = refusal_code(
        messageOptions=4,
        message="x",
        file=UploadedFile("a.pdf", PDF),
        fileBase64=PDF_BASE64,
        documentName="a",
        documentExtension="pdf",
    )

    assert code == "attachment_both_sources"


@pytest.mark.parametrize(
    "extra",
    [
        {"documentName": "factura"},
        {"documentExtension": "pdf"},
        {"documentName": "a", "documentExtension": "pdf"},
    ],
)
def test_document_fields_without_base64_are_refused(extra):
    assert refusal_code(messageOptions=4, message="x", **extra) == "attachment_base64_missing"


def test_base64_attachment_is_read():
    request = read(
        messageOptions=4, message="x", fileBase64=PDF_BASE64, documentName="factura", documentExtension=".PDF"
    )

    assert request.attachment is not None
    assert (request.attachment.name, request.attachment.extension) == ("factura", "pdf")
    assert request.attachment.content == PDF


@pytest.mark.parametrize(
    ("document_name", "extension", "expected_name"),
    [
        ("factura.pdf", "pdf", "factura"),
        ("factura.PDF", "pdf", "factura"),
        ("factura.pdf", ".PDF", "factura"),
        ("factura.pdf.pdf", "pdf", "factura.pdf"),
        ("factura.png", "pdf", "factura.png"),
        ("factura", "pdf", "factura"),
    ],
)
def test_document_name_loses_a_repeated_extension(document_name, extension, expected_name):
    request = read(
        messageOptions=4,
        message="x",
        fileBase64=PDF_BASE64,
        documentName=document_name,
        documentExtension=extension,
    )

    assert request.attachment is not None
    assert request.attachment.name == expected_name
    assert request.attachment.file_name == f"{expected_name}.pdf"


@pytest.mark.parametrize(
    ("values", "code"),
    [
        ({"documentExtension": "pdf"}, "attachment_name_missing"),
        ({"documentName": "factura"}, "attachment_extension_missing"),
        ({"documentName": "factura", "documentExtension": "docx"}, "attachment_extension_not_allowed"),
        ({"documentName": "a/b", "documentExtension": "pdf"}, "attachment_name_invalid"),
        ({"documentName": "x" * 201, "documentExtension": "pdf"}, "attachment_name_too_long"),
        ({"documentName": ".pdf", "documentExtension": "pdf"}, "attachment_name_missing"),
        ({"documentName": "factura", "documentExtension": "png"}, "attachment_content_mismatch"),
    ],
)
def test_base64_attachment_fields_are_checked(values, code):
    assert refusal_code(messageOptions=4, message="x", fileBase64=PDF_BASE64, **values) == code


def test_base64_with_whitespace_is_accepted():
    wrapped = "\n".join(PDF_BASE64[i : i + 8] for i in range(0, len(PDF_BASE64), 8)) + "\n"

    request = read(
        messageOptions=4, message="x", fileBase64=wrapped, documentName="f", documentExtension="pdf"
    )

    assert request.attachment is not None
    assert request.attachment.content == PDF


@pytest.mark.parametrize("garbage", [PDF_BASE64 + "!", "%%%%", PDF_BASE64[:-1], "JVBERi0x-_==", "Zm9v\u00e9"])
def test_base64_with_garbage_is_refused(garbage):
    code = refusal_code(
        messageOptions=4, message="x", fileBase64=garbage, documentName="f", documentExtension="pdf"
    )

    assert code == "attachment_base64_invalid"


def test_base64_of_nothing_is_an_empty_attachment():
    code = refusal_code(
        messageOptions=4, message="x", fileBase64="    ", documentName="f", documentExtension="txt"
    )

    assert code == "attachment_empty"


def test_template_reason_may_carry_an_attachment():
    request = read(messageOptions=1, fileBase64=PDF_BASE64, documentName="catalogo", documentExtension="pdf")

    assert request.reason is Reason.REQUEST_VARIANTS
    assert request.attachment is not None
    assert request.attachment.file_name == "catalogo.pdf"
