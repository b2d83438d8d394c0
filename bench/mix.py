"""The send benchmark's request mix, as the load generator's prebuilt requests.

Out of every 40 requests: 32 free-text OTHER messages (reason 4; half with every parameter in the
query string, half in a JSON body), 6 template reasons (REQUEST_VARIANTS and REQUEST_BILLING_INFO,
query string), and 2 with a small PDF attached (one multipart, one base64 in JSON). That is 80% /
15% / 5%. Free texts are real-looking Spanish of 40 to 300 characters, accents and a line break
included. Attachments go to orders whose first message the buyer answered (the contract allows
them only then); everything else to fresh orders.
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any
from urllib.parse import urlencode

TEXTS = (
    "Hola, ¿cómo estás? Tu pedido ya está preparado y sale mañana por la mañana.",
    "Buenas tardes. Te escribimos para confirmar la dirección de entrega: ¿es la misma que figura en "
    "la compra? Si querés cambiarla avisanos antes del despacho.",
    "¡Gracias por tu compra! Cualquier duda con el producto escribinos por acá.",
    "Hola. El color que elegiste se agotó; tenemos el mismo modelo en azul marino o en gris perla. "
    "¿Cuál preferís? Si ninguno te sirve te devolvemos el dinero enseguida.\nSaludos, el equipo.",
    "Te recordamos que la garantía del fabricante es de doce meses desde la entrega. Guardá la caja "
    "original y la factura: las vas a necesitar si tenés que hacer un reclamo. Ante cualquier problema "
    "escribinos por este medio y lo resolvemos lo antes posible, sin costo para vos.",
    "Tu paquete fue despachado. Llega en dos o tres días hábiles.",
)
ATTACHMENT_TEXT = "Te enviamos la factura de tu compra."
PDF_BYTES = 20 * 1024
BOUNDARY = "----postventa-bench-7d1f0c"
# name, share of each 40 requests, pool
MIX = (
    ("text_query", 16, "fresh"),
    ("text_json", 16, "fresh"),
    ("template_variants", 3, "fresh"),
    ("template_billing", 3, "fresh"),
    ("attachment_multipart", 1, "answered"),
    ("attachment_base64", 1, "answered"),
)
CYCLE = sum(count for _name, count, _pool in MIX)
# The request kinds the report measures one at a time (each a group of the mix's entries), and the
# mix itself; the targets hold for each kind on its own.
KINDS: dict[str, tuple[str, ...]] = {
    "text_json": ("text_json",),
    "text_query": ("text_query",),
    "template": ("template_variants", "template_billing"),
    "attachment_base64": ("attachment_base64",),
    "attachment_multipart": ("attachment_multipart",),
    "mix": tuple(name for name, _count, _pool in MIX),
}


def small_pdf(size: int = PDF_BYTES) -> bytes:
    """A PDF-looking file of `size` bytes (the service checks the magic bytes)."""
    header, trailer = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", b"\n%%EOF\n"
    filler = random.Random(7).randbytes(size - len(header) - len(trailer))
    return header + filler + trailer


def _head(port: int, path: str, query: dict[str, Any] | None, headers: dict[str, str], length: int) -> str:
    target = f"{path}?{urlencode(query)}" if query else path
    lines = [f"POST {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", *(f"{k}: {v}" for k, v in headers.items())]
    lines.append(f"Content-Length: {length}")
    return "\r\n".join(lines) + "\r\n\r\n"


def _kind(name: str, pool: str, count: int, head: str, body: bytes = b"") -> dict[str, Any]:
    return {
        "name": name,
        "pool": pool,
        "count": count,
        "head": head,
        "body_b64": base64.b64encode(body).decode(),
    }


def _json_kind(name: str, pool: str, count: int, port: int, fields: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(fields, ensure_ascii=False).encode()
    head = _head(port, "/v2/orders/{id}/messages", None, {"Content-Type": "application/json"}, len(body))
    return _kind(name, pool, count, head, body)


def multipart_body(fields: dict[str, str], file_name: str, content: bytes) -> bytes:
    """A multipart/form-data body: the fields, then `content` as the part `file`."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
        f"Content-Type: application/pdf\r\n\r\n".encode()
        + content
        + b"\r\n"
    )
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def send_mix(port: int, api_key: str, account_id: int) -> list[dict[str, Any]]:
    """The mix's kinds for the load generator (each text its own kind entry, same name)."""
    credentials = {"API_KEY": api_key, "accountId": account_id}
    path = "/v2/orders/{id}/messages"
    kinds = []
    for name, count, pool in MIX:
        if name in ("text_query", "text_json"):
            # Spread the kind's share over the texts (each text once per cycle at least).
            for index, text in enumerate(TEXTS):
                share = count // len(TEXTS) + (1 if index < count % len(TEXTS) else 0)
                fields = {**credentials, "messageOptions": 4, "message": text}
                if name == "text_query":
                    kinds.append(_kind(name, pool, share, _head(port, path, fields, {}, 0)))
                else:
                    kinds.append(_json_kind(name, pool, share, port, fields))
        elif name.startswith("template_"):
            option = 1 if name == "template_variants" else 2
            query = {**credentials, "messageOptions": option}
            kinds.append(_kind(name, pool, count, _head(port, path, query, {}, 0)))
        elif name == "attachment_multipart":
            fields = {**credentials, "messageOptions": "4", "message": ATTACHMENT_TEXT}
            body = multipart_body(
                {key: str(value) for key, value in fields.items()}, "factura.pdf", small_pdf()
            )
            content_type = f"multipart/form-data; boundary={BOUNDARY}"
            kinds.append(
                _kind(
                    name,
                    pool,
                    count,
                    _head(port, path, None, {"Content-Type": content_type}, len(body)),
                    body,
                )
            )
        else:
            fields = {
                **credentials,
                "messageOptions": 4,
                "message": ATTACHMENT_TEXT,
                "fileBase64": base64.b64encode(small_pdf()).decode(),
                "documentName": "factura",
                "documentExtension": "pdf",
            }
            kinds.append(_json_kind(name, pool, count, port, fields))
    return kinds


def kind_requests(kind: str, port: int, api_key: str, account_id: int) -> list[dict[str, Any]]:
    """The load generator's requests for one of KINDS: its entries of the mix, in the mix's shares."""
    names = KINDS[kind]
    return [entry for entry in send_mix(port, api_key, account_id) if entry["name"] in names]


def pool_needs(requests: int, kind: str = "mix") -> dict[str, int]:
    """How many orders of each pool `requests` requests of `kind` use (rounded up, plus two cycles)."""
    entries = [(count, pool) for name, count, pool in MIX if name in KINDS[kind]]
    cycle = sum(count for count, _pool in entries)
    cycles = requests // cycle + 2
    needs: dict[str, int] = {"fresh": 0, "answered": 0}
    for count, pool in entries:
        needs[pool] += count * cycles
    return needs
