#!/usr/bin/env python3
"""Generate known-answer test vectors for webhook-core.

The vectors are computed independently of the Rust code, with Python's
standard library (hmac, hashlib, base64), the `cryptography` package and the
`openssl` command-line tool. Wherever two tools can compute or check the same
value, the script makes them do so and aborts on any disagreement.

Usage (from the repository root):

    python3 crates/webhook-core/tests/data/generate.py

Output files (written next to this script):

    event_hmac.txt      hex HMAC-SHA256 over "{timestamp}.{body}"
    ecdsa_p256.txt      ECDSA P-256/SHA-256 (ASN.1 DER) over a base64 payload string
    ecdsa_p256_bad.txt  ECDSA P-256 records that must fail verification
    standard_v1.txt     Standard Webhooks v1 (HMAC-SHA256, whsec_ secrets)
    standard_v1a.txt    Standard Webhooks v1a (Ed25519, whsk_/whpk_ keys)
    idempotency.txt     SHA-256 idempotency keys

File format (as in ring's test files): `#` comment lines, records separated by
one blank line, each record a group of `Name = value` lines. Values never
contain newlines; raw bodies are given as lowercase hex (`BodyHex`). An empty
body is written as `BodyHex =` (no trailing space), so parse a line by
splitting at the first "=" and trimming both sides.

Everything is deterministic (keys, secrets and "random" bytes come from a
SHA-256 based expander over fixed labels) except the ECDSA signatures, which
are randomized by both tools. The committed output is therefore the record;
re-running the script yields different ECDSA signatures (still valid).
"""

import base64
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile

import cryptography
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
TMP = tempfile.mkdtemp(prefix="webhook-core-vectors-")

DER = serialization.Encoding.DER
PEM = serialization.Encoding.PEM
PKCS8 = serialization.PrivateFormat.PKCS8
SPKI = serialization.PublicFormat.SubjectPublicKeyInfo
RAW = serialization.Encoding.Raw
NO_ENC = serialization.NoEncryption()

P256_SPKI_PREFIX = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE"
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


def expand(label: str, n: int) -> bytes:
    """Deterministic pseudo-random bytes: SHA-256(label || counter) blocks."""
    out = b""
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(label.encode() + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:n]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def tmpfile(name: str, data: bytes) -> str:
    path = os.path.join(TMP, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def openssl(*args: str, stdin: bytes = b"", check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["openssl", *args], input=stdin, capture_output=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc


def openssl_digest_hex(proc: subprocess.CompletedProcess) -> str:
    # `openssl dgst` prints e.g. "HMAC-SHA2-256(stdin)= 0123..."; take the part after "= ".
    return proc.stdout.decode().strip().rsplit("= ", 1)[1]


def openssl_version() -> str:
    return openssl("version").stdout.decode().strip()


def write_vectors(filename: str, header: list[str], records: list[tuple[list[str], list[tuple[str, str]]]]) -> int:
    """Write `records` = [(comment_lines, [(name, value), ...]), ...]."""
    lines = ["# " + h if h else "#" for h in header]
    for comments, fields in records:
        lines.append("")
        for c in comments:
            lines.append("# " + c)
        for name, value in fields:
            assert isinstance(value, str), (filename, name)
            assert "\n" not in value and "\r" not in value, (filename, name)
            assert value == value.strip(), (filename, name, value)
            assert " = " not in value, (filename, name, value)
            if value == "":
                # Only hex fields may be empty; written without a trailing space.
                assert name == "BodyHex", (filename, name)
                lines.append(f"{name} =")
            else:
                lines.append(f"{name} = {value}")
    with open(os.path.join(OUT_DIR, filename), "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")
    return len(records)


def tool_versions() -> list[str]:
    return [
        f"Tools: Python {sys.version.split()[0]}, cryptography {cryptography.__version__}, {openssl_version()}.",
    ]


GENERATED_BY = "Generated by crates/webhook-core/tests/data/generate.py (run: python3 generate.py). Do not edit by hand."
BODYHEX_NOTE = "BodyHex is the lowercase hex of the raw body bytes; an empty body is written as `BodyHex =`."


# --------------------------------------------------------------------------
# Shared bodies
# --------------------------------------------------------------------------

EVENT_JSON = b'{"id":"0196153b-67bc-7cd3-b511-354373d28130","type":"transaction.confirmed","data":{}}'
EVENT_JSON_2 = (
    b'{"id":"0196153c-1a2b-7f00-8c3d-9e8f7a6b5c4d","type":"wallet.created",'
    b'"data":{"wallet_id":"0196153c-0000-7000-8000-000000000001","chain":"ethereum"}}'
)
EVENT_JSON_PRETTY = b'{\n  "id": "evt_1",\n  "type": "invoice.paid",\n  "data": {\n    "amount": 1999\n  }\n}\n'
UTF8_BODY = '{"memo":"Zahlung für Café ☕ — 東京 🚀","amount":"€12,50"}'.encode("utf-8")
NON_UTF8_BODY = b"\xff\xfe\x00binary\x80\xc3\x28\xed\xa0\x80\xf8\x88\x80\x80\x80\x00end\xfe"
ALL_BYTES_BODY = bytes(range(256))


def kib4_body() -> bytes:
    """A 4096-byte JSON document (padding field sized to hit 4096 exactly)."""
    prefix = b'{"id":"0196153b-67bc-7cd3-b511-354373d28130","type":"bulk.export","data":{"padding":"'
    suffix = b'"}}'
    fill = 4096 - len(prefix) - len(suffix)
    pad = (b"0123456789abcdefghijklmnopqrstuvwxyz" * 200)[:fill]
    body = prefix + pad + suffix
    assert len(body) == 4096
    return body


KIB4_BODY = kib4_body()

# --------------------------------------------------------------------------
# 1. event_hmac.txt
# --------------------------------------------------------------------------


def event_hmac() -> tuple[int, int]:
    secret_32 = "Jq3vN8xR2mW5tY7uB1cE4gH6kL9pS0dZ"
    secret_64 = "a7F2kQ9xW3mN8vB5cR1tY6uJ4hG0dS2eL7pZ9oI3nM5bV8cX1qW4eR6tY2uI0oPz"
    secret_punct = "p@ss:w0rd/with.punct!#$%^&*()_+-=[]{}|;',<>?~`\"\\"
    assert len(secret_32) == 32 and len(secret_64) == 64
    cases = [
        # (description, secret, timestamp, body, tool)
        ("empty body", "whsecret", 1700000000, b"", "python"),
        ("1-byte body", "k", 1700000000, b"x", "openssl"),
        ("seed example event, 32-char secret", secret_32, 1746714600, EVENT_JSON, "python"),
        ("seed example event, timestamp 0", secret_32, 0, EVENT_JSON, "openssl"),
        ("seed example event, timestamp 4102444800 (2100-01-01)", secret_32, 4102444800, EVENT_JSON, "python"),
        ("wallet event, 64-char secret", secret_64, 1746714600, EVENT_JSON_2, "python"),
        ("pretty-printed JSON with newlines", secret_64, 1700000000, EVENT_JSON_PRETTY, "openssl"),
        ("UTF-8 multibyte body, punctuation secret", secret_punct, 1746714600, UTF8_BODY, "python"),
        ("non-UTF-8 body bytes", secret_32, 1746714600, NON_UTF8_BODY, "openssl"),
        ("all 256 byte values", "short", 1700000000, ALL_BYTES_BODY, "python"),
        ("4 KiB JSON body", secret_64, 1746714600, KIB4_BODY, "python"),
        ("empty body, timestamp 0, punctuation secret", secret_punct, 0, b"", "python"),
        ("single-char secret, seed event", "s", 4102444800, EVENT_JSON, "python"),
        ("body that itself starts with digits and dots", "dots.in.secret", 1700000000, b"1700000000.fake", "python"),
    ]
    records = []
    openssl_names = []
    for i, (desc, secret, ts, body, tool) in enumerate(cases, 1):
        msg = str(ts).encode("ascii") + b"." + body
        py_sig = hmac.new(secret.encode("utf-8"), msg, hashlib.sha256).hexdigest()
        ossl_sig = openssl_digest_hex(openssl("dgst", "-sha256", "-hmac", secret, stdin=msg))
        if py_sig != ossl_sig:
            raise AssertionError(f"event_hmac #{i}: python {py_sig} != openssl {ossl_sig}")
        sig = ossl_sig if tool == "openssl" else py_sig
        assert len(sig) == 64 and sig == sig.lower()
        if tool == "openssl":
            openssl_names.append(str(i))
        records.append(
            (
                [f"#{i}: {desc}. Computed with {tool}" + (" (checked with Python hmac)." if tool == "openssl" else " (checked with openssl dgst).")],
                [("Secret", secret), ("Timestamp", str(ts)), ("BodyHex", body.hex()), ("Signature", sig)],
            )
        )
    header = [
        GENERATED_BY,
        *tool_versions(),
        "",
        "Scheme: X-Webhook-Signature = lowercase hex of HMAC-SHA256(",
        "    key = UTF-8 bytes of Secret,",
        "    msg = ASCII decimal Timestamp || \".\" || raw body bytes).",
        BODYHEX_NOTE,
        "",
        "Python: hmac.new(secret.encode(), ts + b'.' + body, hashlib.sha256).hexdigest()",
        "openssl: printf '%s.' TS | cat - body | openssl dgst -sha256 -hmac \"$SECRET\"",
        f"Records whose Signature was produced by openssl: {', '.join('#' + n for n in openssl_names)};",
        "all others by Python hmac. Every record was computed by BOTH tools and they agreed.",
    ]
    return write_vectors("event_hmac.txt", header, records), len(openssl_names)


# --------------------------------------------------------------------------
# 2. ecdsa_p256.txt / ecdsa_p256_bad.txt
# --------------------------------------------------------------------------


def der_read(buf: bytes, pos: int) -> tuple[int, bytes, int]:
    """Read one DER TLV at `pos`; return (tag, value, next_pos). Short and long lengths."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    return tag, buf[pos : pos + length], pos + length


def der_children(value: bytes) -> list[tuple[int, bytes]]:
    out, pos = [], 0
    while pos < len(value):
        tag, v, pos = der_read(value, pos)
        out.append((tag, v))
    return out


def inspect_p256_pkcs8(pkcs8: bytes, expected_point: bytes) -> str:
    """Check the PKCS#8 layout ring's EcdsaKeyPair::from_pkcs8 needs; return a description."""
    tag, outer, end = der_read(pkcs8, 0)
    assert tag == 0x30 and end == len(pkcs8)
    items = der_children(outer)
    assert items[0] == (0x02, b"\x00"), "PKCS#8 version must be 0 (v1)"
    assert items[2][0] == 0x04 and len(items) == 3, "expected v1: no attributes / no [1] publicKey at top level"
    _, ec_priv, _ = der_read(items[2][1], 0)
    inner = der_children(ec_priv)
    assert inner[0] == (0x02, b"\x01"), "ECPrivateKey version must be 1"
    assert inner[1][0] == 0x04 and len(inner[1][1]) == 32
    tags = [t for t, _ in inner[2:]]
    pub = [v for t, v in inner[2:] if t == 0xA1]
    assert pub, "ECPrivateKey lacks the [1] publicKey (ring requires it)"
    _, bitstring, _ = der_read(pub[0], 0)
    assert bitstring == b"\x00" + expected_point, "embedded public key does not match"
    has_params = 0xA0 in tags
    return (
        f"PKCS#8 v1 ({len(pkcs8)} bytes): ECPrivateKey version 1, 32-byte key, "
        f"[0] parameters {'present' if has_params else 'omitted'}, [1] publicKey present (uncompressed point)"
    )


PAYLOAD_DOCS = [
    # The seed example.
    {"id": "0196153b-67bc-7cd3-b511-354373d28130", "status": "PROVISIONED"},
    {"id": "0196153b-67bc-7cd3-b511-354373d28130", "status": "ACTIVE", "address": "0x52908400098527886E0F7030069857D2E4169EE7"},
    {
        "id": "0196153c-1a2b-7f00-8c3d-9e8f7a6b5c4d",
        "type": "transaction",
        "status": "CONFIRMED",
        "walletId": "0196153b-67bc-7cd3-b511-354373d28130",
        "amount": "1.250000000000000000",
        "asset": "ETH",
        "txHash": "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    },
    {"id": "0196153d-0000-7000-8000-00000000abcd", "status": "FAILED", "reason": "insufficient funds"},
    {"id": "0196153e-aaaa-7bbb-8ccc-dddddddddddd", "status": "PENDING", "note": "Überweisung €5 — ✓"},
    {"id": "0196153f-1111-7222-8333-444444444444", "status": "PROVISIONED", "tags": []},
    {"id": "01961540-5555-7666-8777-888888888888", "status": "ARCHIVED"},
    {"id": "01961541-9999-7aaa-8bbb-cccccccccccc", "status": "ACTIVE", "balance": {"amount": "0", "asset": "USDC"}},
    {"id": "01961542-dddd-7eee-8fff-000000000000", "status": "CONFIRMED", "confirmations": 12},
]


def compact_json(doc: dict) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def ecdsa_key(n: int):
    scalar = int.from_bytes(expand(f"webhook-core test vectors: P-256 key {n}", 32), "big") % (P256_ORDER - 1) + 1
    return ec.derive_private_key(scalar, ec.SECP256R1())


def cryptography_verify(pub, sig: bytes, msg: bytes) -> bool:
    try:
        pub.verify(sig, msg, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def openssl_verify(pub_pem_path: str, sig: bytes, msg: bytes) -> bool:
    sig_path = tmpfile("verify.sig", sig)
    msg_path = tmpfile("verify.msg", msg)
    proc = openssl("dgst", "-sha256", "-verify", pub_pem_path, "-signature", sig_path, msg_path, check=False)
    ok = proc.returncode == 0 and b"Verified OK" in proc.stdout
    if not ok and proc.returncode == 0:
        raise RuntimeError("unexpected openssl verify output")
    return ok


def ecdsa_p256() -> tuple[int, int, int, list[str]]:
    notes = []
    keys = []
    for k in range(1, 4):
        priv = ecdsa_key(k)
        pub = priv.public_key()
        point = pub.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        spki = pub.public_bytes(DER, SPKI)
        pkcs8 = priv.private_bytes(DER, PKCS8, NO_ENC)
        assert b64(spki).startswith(P256_SPKI_PREFIX)
        desc = inspect_p256_pkcs8(pkcs8, point)

        key_pem = tmpfile(f"p256-{k}.key.pem", priv.private_bytes(PEM, PKCS8, NO_ENC))
        pub_pem = tmpfile(f"p256-{k}.pub.pem", pub.public_bytes(PEM, SPKI))
        # openssl must derive the same SubjectPublicKeyInfo from the private key ...
        ossl_spki = openssl("pkey", "-in", key_pem, "-pubout", "-outform", "DER").stdout
        assert ossl_spki == spki, f"P-256 key {k}: SPKI differs between openssl and cryptography"
        # ... and re-encode the private key to the same PKCS#8 DER.
        ossl_pkcs8 = openssl("pkcs8", "-topk8", "-nocrypt", "-in", key_pem, "-outform", "DER").stdout
        same = ossl_pkcs8 == pkcs8
        notes.append(f"Key {k}: {desc}; `openssl pkcs8 -topk8 -nocrypt -outform DER` output is {'byte-identical' if same else 'DIFFERENT'}.")
        assert same
        keys.append(dict(n=k, priv=priv, pub=pub, spki=spki, pkcs8=pkcs8, key_pem=key_pem, pub_pem=pub_pem))

    # (key index, payload index, tool)
    plan = [
        (0, 0, "openssl"),
        (0, 1, "cryptography"),
        (0, 2, "cryptography"),
        (1, 0, "cryptography"),
        (1, 3, "openssl"),
        (1, 4, "cryptography"),
        (2, 5, "cryptography"),
        (2, 6, "openssl"),
        (2, 7, "cryptography"),
        (2, 8, "openssl"),
    ]
    records = []
    valid = []  # kept for building the bad vectors
    n_openssl = 0
    for i, (ki, pi, tool) in enumerate(plan, 1):
        key = keys[ki]
        doc_json = compact_json(PAYLOAD_DOCS[pi])
        payload = b64(doc_json)
        msg = payload.encode("ascii")
        if tool == "openssl":
            sig = openssl("dgst", "-sha256", "-sign", key["key_pem"], stdin=msg).stdout
            assert cryptography_verify(key["pub"], sig, msg), f"ecdsa #{i}: cryptography rejects openssl signature"
            check = "verified with cryptography"
            n_openssl += 1
        else:
            sig = key["priv"].sign(msg, ec.ECDSA(hashes.SHA256()))
            assert openssl_verify(key["pub_pem"], sig, msg), f"ecdsa #{i}: openssl rejects cryptography signature"
            check = "verified with openssl dgst -verify"
        # Both checks again, whichever tool signed.
        assert cryptography_verify(key["pub"], sig, msg) and openssl_verify(key["pub_pem"], sig, msg)
        decode_dss_signature(sig)  # well-formed DER
        comment = [f"#{i}: key {key['n']}, signed with {tool} ({check}). Payload = base64 of {doc_json.decode('utf-8')}"]
        if pi == 0:
            comment.append("Seed example payload.")
        records.append(
            (
                comment,
                [
                    ("PublicKey", b64(key["spki"])),
                    ("PrivateKey", b64(key["pkcs8"])),
                    ("Payload", payload),
                    ("Signature", b64(sig)),
                ],
            )
        )
        valid.append(dict(key=key, payload=payload, sig=sig, doc=doc_json))

    header = [
        GENERATED_BY,
        *tool_versions(),
        "",
        "Scheme: Signature = ASN.1 DER ECDSA P-256 / SHA-256 over the ASCII bytes of the base64",
        "string Payload (the string itself is signed, not its decoded content).",
        "PublicKey:  standard base64 of the SubjectPublicKeyInfo DER (uncompressed point).",
        "PrivateKey: standard base64 of the unencrypted PKCS#8 DER from cryptography's",
        "            private_bytes(DER, PKCS8, NoEncryption()).",
        "Payload:    standard base64 (with padding) of compact UTF-8 JSON.",
        "Signature:  standard base64 of the DER-encoded ECDSA signature (randomized; any valid one works).",
        "",
        "Key pairs: private scalars derived deterministically in generate.py (3 keys).",
        "openssl signing:      openssl dgst -sha256 -sign key.pem < payload   (then verified with cryptography)",
        "cryptography signing: key.sign(payload, ECDSA(SHA256()))             (then verified with",
        "                      openssl dgst -sha256 -verify pub.pem -signature sig.der payload)",
        "Every signature was finally verified by both tools.",
        "",
        "PKCS#8 layout (checked by generate.py; ring's EcdsaKeyPair::from_pkcs8 needs the public key):",
        *notes,
        "openssl pkey -pubout -outform DER derived the same PublicKey from each PrivateKey.",
    ]
    n_good = write_vectors("ecdsa_p256.txt", header, records)

    # ---- bad vectors -----------------------------------------------------
    a, b = valid[0], valid[3]  # same payload (seed example), keys 1 and 2
    assert a["payload"] == b["payload"] and a["key"] is not b["key"]
    c = valid[1]
    bad = []

    # Signature from another key.
    bad.append(("signature made by another key (key 2) over the same payload", a["key"], a["payload"], b["sig"]))
    # Payload changed by one base64 character (still valid base64, same length).
    p = c["payload"]
    pos = len(p) // 2
    new_char = "A" if p[pos] != "A" else "B"
    changed = p[:pos] + new_char + p[pos + 1 :]
    base64.b64decode(changed, validate=True)
    bad.append((f"payload changed by one char (position {pos}: {p[pos]!r} -> {new_char!r})", c["key"], changed, c["sig"]))
    # Signature truncated.
    bad.append(("signature truncated (last byte of the DER removed)", c["key"], c["payload"], c["sig"][:-1]))
    bad.append(("signature truncated to its first 32 bytes", c["key"], c["payload"], c["sig"][:32]))
    # Flipped byte inside r (DER structure intact).
    flipped = bytearray(c["sig"])
    flipped[10] ^= 0x01
    bad.append(("signature with one flipped bit in byte 10 (inside r; DER structure intact)", c["key"], c["payload"], bytes(flipped)))
    flipped_s = bytearray(c["sig"])
    flipped_s[-1] ^= 0x80
    bad.append(("signature with the last byte (inside s) flipped by 0x80", c["key"], c["payload"], bytes(flipped_s)))
    # Random 72 bytes.
    bad.append(("signature is base64 of 72 pseudo-random bytes (not a DER signature)", a["key"], a["payload"], expand("webhook-core: random 72", 72)))
    # Fixed-width r||s instead of DER.
    r, s = decode_dss_signature(c["sig"])
    bad.append(("valid signature re-encoded as fixed 64-byte r||s instead of ASN.1 DER", c["key"], c["payload"], r.to_bytes(32, "big") + s.to_bytes(32, "big")))
    # Signature over the decoded JSON rather than over the base64 string.
    sig_decoded = c["key"]["priv"].sign(c["doc"], ec.ECDSA(hashes.SHA256()))
    assert cryptography_verify(c["key"]["pub"], sig_decoded, c["doc"])
    bad.append(("signature computed over the base64-DECODED JSON instead of the base64 string", c["key"], c["payload"], sig_decoded))
    # Valid record but listed under the wrong public key (key 3).
    bad.append(("valid key-1 signature checked against key 3", keys[2], c["payload"], c["sig"]))

    bad_records = []
    for i, (reason, key, payload, sig) in enumerate(bad, 1):
        msg = payload.encode("ascii")
        try:
            crypt_ok = cryptography_verify(key["pub"], sig, msg)
        except ValueError:
            crypt_ok = False
        assert not crypt_ok, f"bad #{i} verifies with cryptography"
        assert not openssl_verify(key["pub_pem"], sig, msg), f"bad #{i} verifies with openssl"
        bad_records.append(
            (
                [f"#{i}"],
                [("Reason", reason), ("PublicKey", b64(key["spki"])), ("Payload", payload), ("Signature", b64(sig))],
            )
        )
    bad_header = [
        GENERATED_BY,
        *tool_versions(),
        "",
        "ECDSA P-256 / SHA-256 (DER) records that MUST FAIL verification; same scheme and",
        "encodings as ecdsa_p256.txt (keys 1-3 are the keys used there).",
        "Each record was checked to be rejected by cryptography's EllipticCurvePublicKey.verify",
        "and by openssl dgst -sha256 -verify pub.pem -signature sig.der payload.",
    ]
    n_bad = write_vectors("ecdsa_p256_bad.txt", bad_header, bad_records)
    return n_good, n_openssl, n_bad, notes


# --------------------------------------------------------------------------
# 3. standard_v1.txt
# --------------------------------------------------------------------------

PUBLISHED_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PUBLISHED_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
PUBLISHED_TS = 1614265330
PUBLISHED_BODY = b'{"test": 2432232314}'
PUBLISHED_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def standard_v1_sign(secret: str, msg_id: str, ts: int, body: bytes) -> str:
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_") :], validate=True)
    signed = f"{msg_id}.{ts}.".encode("utf-8") + body
    return "v1," + b64(hmac.new(key, signed, hashlib.sha256).digest())


def standard_v1() -> int:
    assert standard_v1_sign(PUBLISHED_SECRET, PUBLISHED_ID, PUBLISHED_TS, PUBLISHED_BODY) == PUBLISHED_SIG

    def secret(n: int) -> str:
        return "whsec_" + b64(expand(f"webhook-core test vectors: whsec {n} bytes", n))

    cases = [
        ("published example", PUBLISHED_SECRET, PUBLISHED_ID, PUBLISHED_TS, PUBLISHED_BODY),
        ("24-byte secret, seed event", secret(24), "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231, EVENT_JSON),
        ("32-byte secret, empty body", secret(32), "msg_01HZY8Q3W7X0C5V2B9N4M6K1J8", 1746714600, b""),
        ("32-byte secret, wallet event", secret(32), "0196153c-1a2b-7f00-8c3d-9e8f7a6b5c4d", 1746714600, EVENT_JSON_2),
        ("40-byte secret, UTF-8 multibyte body", secret(40), "msg_utf8", 1700000000, UTF8_BODY),
        ("48-byte secret, non-UTF-8 body", secret(48), "msg_binary", 1700000000, NON_UTF8_BODY),
        ("56-byte secret, pretty JSON with newlines", secret(56), "msg_pretty", 0, EVENT_JSON_PRETTY),
        ("64-byte secret, 4 KiB body", secret(64), "msg_big", 4102444800, KIB4_BODY),
        ("64-byte secret, all 256 byte values", secret(64), "msg_allbytes", 1746714600, ALL_BYTES_BODY),
        ("published secret, different id and timestamp", PUBLISHED_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJel", 1614265331, PUBLISHED_BODY),
    ]
    records = []
    for i, (desc, sec, msg_id, ts, body) in enumerate(cases, 1):
        sig = standard_v1_sign(sec, msg_id, ts, body)
        # Cross-check with openssl (binary key given as hex).
        key_hex = base64.b64decode(sec[len("whsec_") :]).hex()
        signed = f"{msg_id}.{ts}.".encode() + body
        ossl = openssl_digest_hex(openssl("dgst", "-sha256", "-mac", "HMAC", "-macopt", f"hexkey:{key_hex}", stdin=signed))
        assert sig == "v1," + b64(bytes.fromhex(ossl)), f"standard_v1 #{i}: openssl disagrees"
        key_len = len(base64.b64decode(sec[len("whsec_") :]))
        comment = [f"#{i}: {desc} ({key_len}-byte key)."]
        if i == 1:
            comment = [
                "#1: PUBLISHED EXAMPLE from the Standard Webhooks / svix library test suites",
                "(e.g. standard-webhooks libraries/python/tests/test_webhooks.py test_sign_function).",
                "generate.py asserts that it reproduces the published signature exactly.",
            ]
        records.append(
            (comment, [("Secret", sec), ("Id", msg_id), ("Timestamp", str(ts)), ("BodyHex", body.hex()), ("Signature", sig)])
        )
    header = [
        GENERATED_BY,
        *tool_versions(),
        "",
        "Standard Webhooks v1 (github.com/standard-webhooks/standard-webhooks, spec/standard-webhooks.md):",
        "    key       = base64-decode(Secret without the \"whsec_\" prefix)",
        "    content   = Id || \".\" || Timestamp || \".\" || raw body bytes",
        "    Signature = \"v1,\" || standard base64 (with padding) of HMAC-SHA256(key, content)",
        "Computed with Python hmac; every record cross-checked with",
        "    openssl dgst -sha256 -mac HMAC -macopt hexkey:<key hex>",
        "Secrets other than the published one are deterministic pseudo-random bytes (24..64 bytes).",
        BODYHEX_NOTE,
    ]
    return write_vectors("standard_v1.txt", header, records)


# --------------------------------------------------------------------------
# 4. standard_v1a.txt
# --------------------------------------------------------------------------


def standard_v1a() -> tuple[int, str]:
    records = []
    pkcs8_note = ""
    key_pairs = []
    for k in (1, 2):
        seed = expand(f"webhook-core test vectors: ed25519 seed {k}", 32)
        priv = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        pub_raw = priv.public_key().public_bytes(RAW, serialization.PublicFormat.Raw)
        pkcs8 = priv.private_bytes(DER, PKCS8, NO_ENC)
        # RFC 8410 PKCS#8 v1 for Ed25519 is a fixed 16-byte prefix + the 32-byte seed.
        assert pkcs8 == bytes.fromhex("302e020100300506032b657004220420") + seed
        pkcs8_note = (
            f"PrivateKeyPkcs8 is PKCS#8 v1 ({len(pkcs8)} bytes, RFC 8410: version 0, no public key)."
        )
        key_pem = tmpfile(f"ed25519-{k}.key.pem", priv.private_bytes(PEM, PKCS8, NO_ENC))
        pub_pem = tmpfile(f"ed25519-{k}.pub.pem", priv.public_key().public_bytes(PEM, SPKI))
        ossl_spki = openssl("pkey", "-in", key_pem, "-pubout", "-outform", "DER").stdout
        assert ossl_spki[-32:] == pub_raw and len(ossl_spki) == 44
        key_pairs.append(dict(n=k, seed=seed, priv=priv, pub_raw=pub_raw, pkcs8=pkcs8, key_pem=key_pem, pub_pem=pub_pem))

    cases = [
        (0, "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W", 1674087231, EVENT_JSON, "seed event"),
        (0, "msg_empty", 1746714600, b"", "empty body"),
        (0, "msg_utf8", 1700000000, UTF8_BODY, "UTF-8 multibyte body"),
        (0, "msg_big", 4102444800, KIB4_BODY, "4 KiB body"),
        (1, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, PUBLISHED_BODY, "the v1 published example's content"),
        (1, "msg_binary", 0, NON_UTF8_BODY, "non-UTF-8 body, timestamp 0"),
        (1, "0196153c-1a2b-7f00-8c3d-9e8f7a6b5c4d", 1746714600, EVENT_JSON_2, "wallet event"),
    ]
    for i, (ki, msg_id, ts, body, desc) in enumerate(cases, 1):
        kp = key_pairs[ki]
        content = f"{msg_id}.{ts}.".encode("utf-8") + body
        sig = kp["priv"].sign(content)
        kp["priv"].public_key().verify(sig, content)
        # Ed25519 is deterministic: openssl must produce the identical signature and accept it.
        msg_path = tmpfile("v1a.msg", content)
        ossl_sig = openssl("pkeyutl", "-sign", "-rawin", "-inkey", kp["key_pem"], "-in", msg_path).stdout
        assert ossl_sig == sig, f"standard_v1a #{i}: openssl signature differs"
        sig_path = tmpfile("v1a.sig", sig)
        openssl("pkeyutl", "-verify", "-rawin", "-pubin", "-inkey", kp["pub_pem"], "-in", msg_path, "-sigfile", sig_path)
        records.append(
            (
                [f"#{i}: key pair {kp['n']}, {desc}."],
                [
                    ("SecretKey", "whsk_" + b64(kp["seed"])),
                    ("PublicKey", "whpk_" + b64(kp["pub_raw"])),
                    ("PrivateKeyPkcs8", b64(kp["pkcs8"])),
                    ("Id", msg_id),
                    ("Timestamp", str(ts)),
                    ("BodyHex", body.hex()),
                    ("Signature", "v1a," + b64(sig)),
                ],
            )
        )
    header = [
        GENERATED_BY,
        *tool_versions(),
        "",
        "Standard Webhooks v1a (asymmetric):",
        "    content   = Id || \".\" || Timestamp || \".\" || raw body bytes",
        "    Signature = \"v1a,\" || standard base64 of the 64-byte Ed25519 signature over content",
        "SecretKey = \"whsk_\" || standard base64 of the 32-byte Ed25519 private seed.",
        "PublicKey = \"whpk_\" || standard base64 of the 32-byte raw public key.",
        "(The spec only says \"base64 encoded, prefixed with whsk_/whpk_\" and does not fix the key",
        "layout; this file uses the bare 32-byte seed for whsk_, not a 64-byte seed||public form.)",
        pkcs8_note,
        "    It comes from cryptography's private_bytes(DER, PKCS8, NoEncryption()). NOTE: ring's",
        "    Ed25519KeyPair::from_pkcs8 only accepts PKCS#8 v2 (with public key); use",
        "    from_pkcs8_maybe_unchecked (or from_seed_unchecked with the whsk_ seed) for this input.",
        "",
        "Signed with cryptography's Ed25519PrivateKey.sign. Ed25519 is deterministic, so every",
        "signature was also reproduced byte-for-byte with",
        "    openssl pkeyutl -sign -rawin -inkey key.pem -in content",
        "and verified with openssl pkeyutl -verify -rawin -pubin -inkey pub.pem -sigfile sig.",
        "Seeds are deterministic pseudo-random bytes derived in generate.py.",
        BODYHEX_NOTE,
    ]
    return write_vectors("standard_v1a.txt", header, records), pkcs8_note


# --------------------------------------------------------------------------
# 5. idempotency.txt
# --------------------------------------------------------------------------


def idempotency() -> int:
    org = "0196153a-0000-7000-8000-00000000a11c"
    org2 = "org_2KWPBgLlAfxdpx2AI54pPJ85f4W"
    cases = [
        (org, "transaction.confirmed", "0196153b-67bc-7cd3-b511-354373d28130", 1746714600),
        (org, "transaction.confirmed", "0196153b-67bc-7cd3-b511-354373d28130", 1746714900),
        (org, "transaction.failed", "0196153b-67bc-7cd3-b511-354373d28130", 1746714600),
        (org, "wallet.created", "0196153b-67bc-7cd3-b511-354373d28130", 0),
        (org2, "transaction.confirmed", "0196153b-67bc-7cd3-b511-354373d28130", 1746714600),
        (org, "invoice.paid", "café-42", 1700000000),
        (org, "invoice.paid", "cafe\u0301-42", 1700000000),  # NFD form: must hash differently from NFC above
        (org, "shipment.updated", "東京-配送-0001", 1746714600),
        (org, "wallet.funded", "🚀wallet", 4102444800),
        (org2, "user.created", "x", 0),
    ]
    records = []
    keys = set()
    for i, (o, t, e, ws) in enumerate(cases, 1):
        material = (o + "\x1f" + t + "\x1f" + e + "\x1f" + str(ws)).encode("utf-8")
        key = hashlib.sha256(material).hexdigest()
        ossl = openssl_digest_hex(openssl("dgst", "-sha256", stdin=material))
        assert key == ossl, f"idempotency #{i}: openssl disagrees"
        assert key not in keys
        keys.add(key)
        comment = [f"#{i}: SHA-256 input is {len(material)} bytes."]
        if e != e.encode("ascii", "ignore").decode():
            comment.append("Entity contains non-ASCII characters (hashed as UTF-8, no normalization).")
        records.append(
            (comment, [("Organization", o), ("Type", t), ("Entity", e), ("WindowStart", str(ws)), ("Key", key)])
        )
    header = [
        GENERATED_BY,
        *tool_versions(),
        "",
        "Key = lowercase hex SHA-256 of the UTF-8 bytes of",
        "      Organization || 0x1f || Type || 0x1f || Entity || 0x1f || decimal(WindowStart)",
        "(0x1f = ASCII unit separator; WindowStart in unix seconds).",
        "Computed with Python hashlib.sha256; each record cross-checked with openssl dgst -sha256.",
        "Records #6 and #7 differ only in Unicode normalization of the entity (NFC vs NFD).",
    ]
    return write_vectors("idempotency.txt", header, records)


# --------------------------------------------------------------------------


def main() -> None:
    n_hmac, n_hmac_ossl = event_hmac()
    n_ecdsa, n_ecdsa_ossl, n_bad, pkcs8_notes = ecdsa_p256()
    n_v1 = standard_v1()
    n_v1a, v1a_note = standard_v1a()
    n_idem = idempotency()
    print(f"event_hmac.txt:      {n_hmac} records ({n_hmac_ossl} computed by openssl, rest by Python hmac; all cross-checked)")
    print(f"ecdsa_p256.txt:      {n_ecdsa} records ({n_ecdsa_ossl} signed by openssl, rest by cryptography; all verified by both)")
    print(f"ecdsa_p256_bad.txt:  {n_bad} records (all rejected by cryptography and openssl)")
    print(f"standard_v1.txt:     {n_v1} records (Python hmac, cross-checked with openssl; #1 = published example, reproduced)")
    print(f"standard_v1a.txt:    {n_v1a} records (cryptography Ed25519, reproduced byte-for-byte by openssl pkeyutl)")
    print(f"idempotency.txt:     {n_idem} records (Python hashlib, cross-checked with openssl dgst)")
    for n in pkcs8_notes:
        print("  " + n)
    print("  " + v1a_note)


if __name__ == "__main__":
    try:
        main()
    finally:
        for name in os.listdir(TMP):
            os.remove(os.path.join(TMP, name))
        os.rmdir(TMP)
