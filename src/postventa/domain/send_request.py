"""Check 7 of the send: read the reason, the text and the attachment from the parameters."""

from __future__ import annotations

from dataclasses import dataclass

from postventa.domain.attachments import (
    Attachment,
    build_attachment,
    check_content,
    check_name,
    decode_base64,
    normalize_extension,
    split_file_name,
)
from postventa.domain.errors import invalid
from postventa.domain.parameters import (
    DOCUMENT_EXTENSION,
    DOCUMENT_NAME,
    FILE,
    FILE_BASE64,
    MESSAGE,
    MESSAGE_OPTIONS,
    Parameters,
)
from postventa.domain.reasons import Reason, TextMode
from postventa.domain.text import normalize_free_text


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part, read: the client's file name and the bytes."""

    filename: str
    content: bytes


@dataclass(frozen=True)
class SendRequest:
    """A send whose parameters are valid; the order and conversation are checked after."""

    reason: Reason
    free_text: str | None  # the normalised text of a free-text reason
    message_ignored: bool  # a template reason came with a `message`, which is not sent
    attachment: Attachment | None


def read_send_request(parameters: Parameters, *, max_attachment_bytes: int) -> SendRequest:
    """The valid request, or the first invalid parameter (400): reason, then text, then attachment."""
    reason = _read_reason(parameters)
    message = parameters.text(MESSAGE)
    if reason.rule.text_mode is TextMode.FREE_TEXT:
        free_text = normalize_free_text(message or "", parameter=MESSAGE)
        ignored = False
    else:
        free_text, ignored = None, message is not None
    return SendRequest(
        reason=reason,
        free_text=free_text,
        message_ignored=ignored,
        attachment=_read_attachment(parameters, max_attachment_bytes),
    )


def _read_reason(parameters: Parameters) -> Reason:
    raw = parameters.raw(MESSAGE_OPTIONS)
    if raw is None:
        raise invalid("reason_missing", "'messageOptions' is required: a reason from 1 to 5 or its name.")
    reason = Reason.parse(raw)
    if reason is None:
        names = ", ".join(f"{member.value} {member.name}" for member in Reason)
        raise invalid("reason_invalid", f"'messageOptions' must be one of {names}.")
    return reason


def _read_attachment(parameters: Parameters, max_bytes: int) -> Attachment | None:
    uploaded = parameters.raw(FILE)
    has_base64 = parameters.has(FILE_BASE64)
    if uploaded is not None and has_base64:
        raise invalid(
            "attachment_both_sources", "Send the attachment as 'file' or as 'fileBase64', not both."
        )
    if uploaded is not None:
        return _uploaded_attachment(uploaded, max_bytes)
    if has_base64:
        return _base64_attachment(parameters, max_bytes)
    for name in (DOCUMENT_NAME, DOCUMENT_EXTENSION):
        if parameters.has(name):
            raise invalid("attachment_base64_missing", f"'{name}' is only used with 'fileBase64'.")
    return None


def _uploaded_attachment(uploaded: object, max_bytes: int) -> Attachment:
    if not isinstance(uploaded, UploadedFile):
        raise invalid("attachment_not_a_file", "'file' must be a file part of a multipart/form-data body.")
    stem, extension = split_file_name(uploaded.filename)
    extension = normalize_extension(extension)
    name = check_name(stem, parameter="file name")
    check_content(extension, uploaded.content, max_bytes=max_bytes)
    return Attachment(name=name, extension=extension, content=uploaded.content)


def _base64_attachment(parameters: Parameters, max_bytes: int) -> Attachment:
    name = parameters.text(DOCUMENT_NAME)
    raw_extension = parameters.text(DOCUMENT_EXTENSION)
    if name is None:
        raise invalid("attachment_name_missing", "'documentName' is required with 'fileBase64'.")
    if raw_extension is None:
        raise invalid("attachment_extension_missing", "'documentExtension' is required with 'fileBase64'.")
    extension = normalize_extension(raw_extension)
    name = name.strip()
    if name.lower().endswith(f".{extension}"):
        name = name[: -len(extension) - 1]  # "factura.pdf" with extension "pdf" is "factura"
    content = decode_base64(parameters.text(FILE_BASE64) or "")
    return build_attachment(name, extension, content, max_bytes=max_bytes)
