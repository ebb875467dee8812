#!/usr/bin/env python3
"""An independent decryptor for Strongroom streams (DESIGN.md R5).

Written from docs/FORMAT.md alone (not from the Rust code), with Python's
`cryptography` package (`pip install cryptography`). It opens every
`ok_*.srm` vector under tests/data (through the A256KW record, and
`ok_two_keys.srm` also through its RSA-OAEP-256 record), checks the key
commitment and the header MAC, compares the plaintext with the expected
one, and checks that it rejects every `fail_*.srm` vector.

Usage: python3 third_party_decrypt.py [tests/data directory]
Exit status 0 when every check passed.
"""

import hashlib
import hmac
import pathlib
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap

MAGIC = bytes.fromhex("89 53 52 4D 0D 0A 1A 0A")
TAG = 16


class Rejected(Exception):
    """The stream is not a valid Strongroom stream under the given keys."""


class Reader:
    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Rejected("truncated header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return int.from_bytes(self.take(2), "big")

    def text(self, n):
        return self.take(n).decode("utf-8")


def parse_header(data):
    """Section 2. Returns the fields, the stable part, and the header length."""
    r = Reader(data)
    if r.take(8) != MAGIC:
        raise Rejected("magic")
    if r.u8() != 1:
        raise Rejected("version")
    if r.u8() != 1:
        raise Rejected("suite")
    c = r.u8()
    if not 12 <= c <= 24:
        raise Rejected("chunk size")
    if r.u8() != 0:
        raise Rejected("flags")
    salt = r.take(32)
    commitment = r.take(32)
    m = r.u16()
    if m > 64:
        raise Rejected("metadata count")
    metadata = {}
    last_key = None
    for _ in range(m):
        k = r.u8()
        if k == 0:
            raise Rejected("empty metadata key")
        key_bytes = r.take(k)
        v = r.u16()
        if v > 4096:
            raise Rejected("metadata value length")
        value = r.take(v).decode("utf-8")
        if last_key is not None and key_bytes <= last_key:
            raise Rejected("metadata order")
        last_key = key_bytes
        metadata[key_bytes.decode("utf-8")] = value
    stable = data[: r.pos]

    count = r.u8()
    if not 1 <= count <= 16:
        raise Rejected("record count")
    records = []
    for _ in range(count):
        alg = r.u8()
        vault = r.text(r.u8())
        name = r.text(r.u8())
        version = r.text(r.u8())
        w = r.u16()
        if not 1 <= w <= 1024 or not vault or not name:
            raise Rejected("record")
        records.append(((vault, name, version, alg), r.take(w)))
    mac_input_len = r.pos
    mac = r.take(32)
    return {
        "chunk": 1 << c,
        "salt": salt,
        "commitment": commitment,
        "metadata": metadata,
        "records": records,
        "stable": stable,
        "mac_input": data[:mac_input_len],
        "mac": mac,
        "length": r.pos,
    }


def unwrap(alg, key, wrapped):
    """Section 2.2: 01 = RFC 3394 AES key wrap, 02 = RSA-OAEP-256."""
    if alg == 1:
        return aes_key_unwrap(key, wrapped)
    if alg == 2:
        return key.decrypt(
            wrapped,
            padding.OAEP(
                mgf=padding.MGF1(algorithm=hashes.SHA256()),
                algorithm=hashes.SHA256(),
                label=None,
            ),
        )
    raise Rejected("unsupported wrap algorithm")


def hkdf(dek, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(dek)


def decrypt(stream, keys):
    """Decrypts header || body with `keys`: {(vault, name, version, alg): key}."""
    h = parse_header(stream)

    # Section 3: find a record we hold the key for, whose DEK matches the
    # commitment.
    dek = None
    for key_ref, wrapped in h["records"]:
        if key_ref not in keys:
            continue
        try:
            candidate = unwrap(key_ref[3], keys[key_ref], wrapped)
        except (InvalidUnwrap, ValueError):
            continue
        digest = hashlib.sha256(b"strongroom key commitment v1" + b"\x00" + candidate).digest()
        if len(candidate) == 32 and hmac.compare_digest(digest, h["commitment"]):
            dek = candidate
            break
    if dek is None:
        raise Rejected("no record opens")

    okm = hkdf(dek, h["salt"], b"strongroom v1 payload", 39)
    payload_key, prefix = okm[:32], okm[32:]
    mac_key = hkdf(dek, h["salt"], b"strongroom v1 header mac", 32)
    expected_mac = hmac.new(mac_key, h["mac_input"], hashlib.sha256).digest()
    if not hmac.compare_digest(expected_mac, h["mac"]):
        raise Rejected("header MAC")
    aad = hashlib.sha256(h["stable"]).digest()

    # Section 4: the body.
    body = stream[h["length"] :]
    stride = h["chunk"] + TAG
    n = -(-len(body) // stride)
    if n == 0:
        raise Rejected("empty body")
    if len(body) - (n - 1) * stride < TAG:
        raise Rejected("truncated body")
    gcm = AESGCM(payload_key)
    out = bytearray()
    for i in range(n):
        chunk = body[i * stride : (i + 1) * stride]
        last = b"\x01" if i == n - 1 else b"\x00"
        nonce = prefix + i.to_bytes(4, "big") + last
        try:
            out += gcm.decrypt(nonce, chunk, aad)
        except InvalidTag as e:
            raise Rejected(f"chunk {i}") from e
    return bytes(out), h


def plaintext(n):
    """The golden plaintext: byte i is i mod 251 (tests/data/README.md)."""
    return bytes(i % 251 for i in range(n))


def main():
    here = pathlib.Path(__file__).resolve().parent
    data = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "data"
    aes_ref = ("golden-vault", "platform-key", "v1", 1)
    rsa_ref = ("customer-vault", "cmk-rsa", "7", 2)
    kek = bytes.fromhex((data / "kek_a256kw.hex").read_text().strip())
    rsa = serialization.load_pem_private_key((data / "rsa2048_pkcs8.pem").read_bytes(), None)

    vectors = []
    for line in (data / "ok_vectors.tsv").read_text().splitlines():
        if line and not line.startswith("#"):
            name, length, chunk = line.split("\t")
            vectors.append((name, int(length), int(chunk)))
    if len(vectors) < 2:
        raise SystemExit("no vectors in ok_vectors.tsv")

    failures = 0
    checked = 0
    for name, length, chunk in vectors:
        stream = (data / name).read_bytes()
        key_sets = [("A256KW", {aes_ref: kek})]
        if len(parse_header(stream)["records"]) > 1:
            key_sets.append(("RSA-OAEP-256", {rsa_ref: rsa}))
        for label, keys in key_sets:
            try:
                plain, header = decrypt(stream, keys)
            except Rejected as e:
                print(f"FAIL {name} ({label}): rejected: {e}")
                failures += 1
                continue
            if plain != plaintext(length) or header["chunk"] != chunk:
                print(f"FAIL {name} ({label}): wrong plaintext or chunk size")
                failures += 1
            else:
                print(f"ok   {name} ({label}): {length} bytes")
            checked += 1
    if not any(len(parse_header((data / n).read_bytes())["records"]) > 1 for n, _, _ in vectors):
        print("FAIL: no vector with an RSA-OAEP-256 record")
        failures += 1

    keys = {aes_ref: kek, rsa_ref: rsa}
    fails = sorted(data.glob("fail_*.srm"))
    for path in fails:
        try:
            decrypt(path.read_bytes(), keys)
        except (Rejected, UnicodeDecodeError) as e:
            print(f"ok   {path.name}: rejected ({e})")
            continue
        print(f"FAIL {path.name}: decrypted, but it was altered")
        failures += 1

    print(f"{checked} decryptions, {len(fails)} rejections checked, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
