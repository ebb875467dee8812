#!/usr/bin/env python3
"""An independent decryptor for Strongroom streams (DESIGN.md R5).

Written from docs/FORMAT.md alone (not from the Rust code), with Python's
`cryptography` package (`pip install cryptography`). It opens every
`ok_*.srm` vector under tests/data with each set of keys that must open it
(`ok_vectors.tsv`), checks the key commitment and the header MAC, compares
the plaintext with the expected one, and checks that every refusal listed
in `errors.tsv` (every `fail_*.srm` vector, and `ok_*` files held with the
wrong keys) fails with the error class of FORMAT.md section 6.

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
# Section 2.2: the wrap algorithms of format version 1.
ALGORITHMS = {1: "A256KW", 2: "RSA-OAEP-256", 3: "RSA-OAEP"}


# Section 6: the error classes a reader reports.
class Rejected(Exception):
    """The stream is not a valid Strongroom stream under the given keys."""

    def cls(self):
        raise NotImplementedError


class Malformed(Rejected):
    def __init__(self, offset, why):
        super().__init__(f"malformed at {offset}: {why}")
        self.offset = offset

    def cls(self):
        return f"malformed {self.offset}"


class UnsupportedVersion(Rejected):
    def __init__(self, version):
        super().__init__(f"unsupported version {version}")
        self.version = version

    def cls(self):
        return f"unsupported-version {self.version}"


class UnsupportedSuite(Rejected):
    def __init__(self, suite):
        super().__init__(f"unsupported suite {suite}")
        self.suite = suite

    def cls(self):
        return f"unsupported-suite {self.suite}"


class Truncated(Rejected):
    def cls(self):
        return "truncated"


class NoMatchingKey(Rejected):
    def __init__(self, recorded):
        self.recorded = ", ".join(show_ref(ref) for ref in recorded)
        super().__init__(f"no matching key; the header names {self.recorded}")

    def cls(self):
        return f"no-matching-key {self.recorded}"


class KeyUnavailable(Rejected):
    def __init__(self, ref):
        self.key = show_ref(ref)
        super().__init__(f"key {self.key} could not be used")

    def cls(self):
        return f"key-unavailable {self.key}"


class DecryptionFailed(Rejected):
    def cls(self):
        return "decryption-failed"


class TooLarge(Rejected):
    def cls(self):
        return "too-large"


def show_ref(ref):
    """A key reference (vault, name, version: bytes; algorithm byte) as text."""
    vault, name, version, alg = ref
    text = b"/".join((vault, name, version)).decode("utf-8")
    return f"{text} ({ALGORITHMS[alg]})"


class Reader:
    """Reads header fields in byte order; an input that ends inside a field
    is truncated (section 2.4)."""

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def take(self, n):
        if self.pos + n > len(self.data):
            raise Truncated("the input ends inside the header")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self):
        return self.take(1)[0]

    def u16(self):
        return int.from_bytes(self.take(2), "big")

    def utf8(self, n, what):
        """n bytes that must be well-formed UTF-8; an error is at their first byte."""
        at = self.pos
        raw = self.take(n)
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise Malformed(at, f"{what} is not UTF-8") from e
        return raw

    def string(self, what, empty_ok):
        """A u8 length and that many UTF-8 bytes (section 2.2)."""
        at = self.pos
        n = self.u8()
        if n == 0 and not empty_ok:
            raise Malformed(at, f"empty {what}")
        return self.utf8(n, what)


def parse_header(data):
    """Sections 2 and 2.4: every structural rule, in byte order, before
    any key is used. Returns the fields, the stable part, the length."""
    r = Reader(data)
    if r.take(8) != MAGIC:
        raise Malformed(0, "magic")
    version = r.u8()
    if version != 1:
        raise UnsupportedVersion(version)
    suite = r.u8()
    if suite != 1:
        raise UnsupportedSuite(suite)
    c = r.u8()
    if not 12 <= c <= 24:
        raise Malformed(10, "chunk size")
    if r.u8() != 0:
        raise Malformed(11, "flags")
    salt = r.take(32)
    commitment = r.take(32)
    at = r.pos
    m = r.u16()
    if m > 64:
        raise Malformed(at, "metadata count")
    metadata = {}
    last_key = None
    for _ in range(m):
        at = r.pos
        key = r.string("metadata key", empty_ok=False)
        # Strictly increasing, checked as soon as the key is read.
        if last_key is not None and key <= last_key:
            raise Malformed(at, "metadata keys out of order")
        last_key = key
        at = r.pos
        v = r.u16()
        if v > 4096:
            raise Malformed(at, "metadata value length")
        metadata[key] = r.utf8(v, "metadata value")
    stable = data[: r.pos]

    at = r.pos
    count = r.u8()
    if not 1 <= count <= 16:
        raise Malformed(at, "record count")
    records = []
    for _ in range(count):
        at = r.pos
        alg = r.u8()
        if alg not in ALGORITHMS:
            raise Malformed(at, "unknown wrap algorithm")
        vault = r.string("vault", empty_ok=False)
        name = r.string("key name", empty_ok=False)
        version = r.string("key version", empty_ok=True)
        at = r.pos
        w = r.u16()
        if not 1 <= w <= 1024:
            raise Malformed(at, "wrapped length")
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


class Refused(Exception):
    """The held key cannot be used (here: only its public half is held)."""


class HeldKey:
    """A key-encryption key held under one key reference (section 3.2)."""

    def __init__(self, vault, name, version, alg, key, private=True):
        self.ref = (vault, name, version, alg)
        self.key = key
        self.private = private

    def matches(self, ref):
        # Algorithm, vault, name and version equal, byte for byte: an
        # empty version is a version like any other.
        return ref == self.ref

    def unwrap(self, alg, wrapped):
        """Unwraps with exactly the record's algorithm (section 2.2)."""
        if not self.private:
            raise Refused()
        if alg == 1:
            return aes_key_unwrap(self.key, wrapped)
        oaep_hash = {2: hashes.SHA256, 3: hashes.SHA1}[alg]
        return self.key.decrypt(
            wrapped,
            padding.OAEP(
                mgf=padding.MGF1(algorithm=oaep_hash()),
                algorithm=oaep_hash(),
                label=None,
            ),
        )


def hkdf(dek, salt, info, length):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(dek)


def open_header(h, keys):
    """Section 3.2: the first matching record, in header order, that
    unwraps to 32 bytes passing the commitment opens the stream; its MAC
    must then verify. Returns the DEK."""
    matched = False
    refused = None
    for ref, wrapped in h["records"]:
        for held in keys:
            if not held.matches(ref):
                continue
            matched = True
            try:
                dek = held.unwrap(ref[3], wrapped)
            except Refused:
                refused = refused or KeyUnavailable(ref)
                continue
            except (InvalidUnwrap, ValueError):
                continue  # skipped: the unwrap failed
            if len(dek) != 32:
                continue  # skipped: not a DEK (never a prefix of one)
            digest = hashlib.sha256(b"strongroom key commitment v1\x00" + dek).digest()
            if not hmac.compare_digest(digest, h["commitment"]):
                continue  # skipped: not this stream's DEK
            mac_key = hkdf(dek, h["salt"], b"strongroom v1 header mac", 32)
            expected = hmac.new(mac_key, h["mac_input"], hashlib.sha256).digest()
            if not hmac.compare_digest(expected, h["mac"]):
                # The DEK is the stream's, so the header was altered.
                raise DecryptionFailed("header MAC")
            return dek
    if not matched:
        raise NoMatchingKey([ref for ref, _ in h["records"]])
    raise refused or DecryptionFailed("no record opens")


def decrypt(stream, keys):
    """Decrypts header || body holding `keys` (a list of HeldKey)."""
    h = parse_header(stream)
    dek = open_header(h, keys)
    okm = hkdf(dek, h["salt"], b"strongroom v1 payload", 39)
    payload_key, prefix = okm[:32], okm[32:]
    aad = hashlib.sha256(h["stable"]).digest()

    # Section 4: the body.
    body = stream[h["length"] :]
    stride = h["chunk"] + TAG
    n = -(-len(body) // stride)
    if n == 0 or len(body) - (n - 1) * stride < TAG:
        raise Truncated("the body ends inside its final chunk's tag")
    if n > 1 << 32:
        raise TooLarge("more than 2^32 chunks")
    gcm = AESGCM(payload_key)
    out = bytearray()
    for i in range(n):
        chunk = body[i * stride : (i + 1) * stride]
        last = i == n - 1
        if last and i > 0 and len(chunk) == TAG:
            # One encoding: only an empty body ends with an empty chunk.
            raise DecryptionFailed(f"empty final chunk {i}")
        nonce = prefix + i.to_bytes(4, "big") + (b"\x01" if last else b"\x00")
        try:
            out += gcm.decrypt(nonce, chunk, aad)
        except InvalidTag as e:
            raise DecryptionFailed(f"chunk {i}") from e
    return bytes(out), h


def plaintext(n):
    """The golden plaintext: byte i is i mod 251 (tests/data/README.md)."""
    return bytes(i % 251 for i in range(n))


def golden_keys(data):
    """The keys of tests/data/README.md, by name."""
    kek = bytes.fromhex((data / "kek_a256kw.hex").read_text().strip())
    rsa = serialization.load_pem_private_key((data / "rsa2048_pkcs8.pem").read_bytes(), None)
    gv, pk, cv, cmk = b"golden-vault", b"platform-key", b"customer-vault", b"cmk-rsa"
    return {
        "aes": HeldKey(gv, pk, b"v1", 1, kek),
        "rsa": HeldKey(cv, cmk, b"7", 2, rsa),
        "rsa-public": HeldKey(cv, cmk, b"7", 2, rsa.public_key(), private=False),
        "aes-unversioned": HeldKey(gv, pk, b"", 1, kek),
        "aes-other-name": HeldKey(gv, b"other-key", b"v1", 1, kek),
        "aes-wrong-bytes": HeldKey(gv, pk, b"v1", 1, b"\x5a" * 32),
    }


def table(path):
    return [
        line.split("\t")
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    ]


def main():
    here = pathlib.Path(__file__).resolve().parent
    data = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else here / "data"
    named = golden_keys(data)

    def held(names):
        return [named[k] for k in names.split("+")]

    failures = 0
    checked = 0
    rsa_opened = False
    vectors = table(data / "ok_vectors.tsv")
    if len(vectors) < 2:
        raise SystemExit("no vectors in ok_vectors.tsv")
    for name, length, chunk, opens_with in vectors:
        stream = (data / name).read_bytes()
        for keys in opens_with.split(","):
            try:
                plain, header = decrypt(stream, held(keys))
            except Rejected as e:
                print(f"FAIL {name} ({keys}): rejected: {e}")
                failures += 1
                continue
            if plain != plaintext(int(length)) or header["chunk"] != int(chunk):
                print(f"FAIL {name} ({keys}): wrong plaintext or chunk size")
                failures += 1
            else:
                print(f"ok   {name} ({keys}): {length} bytes")
                rsa_opened |= keys == "rsa"
            checked += 1
    if not rsa_opened:
        print("FAIL: no vector opened through an RSA-OAEP-256 record")
        failures += 1

    refusals = table(data / "errors.tsv")
    for name, keys, want in refusals:
        try:
            decrypt((data / name).read_bytes(), held(keys))
        except Rejected as e:
            if e.cls() == want:
                print(f"ok   {name} ({keys}): {want}")
            else:
                print(f"FAIL {name} ({keys}): {e.cls()}, want {want} ({e})")
                failures += 1
            continue
        print(f"FAIL {name} ({keys}): decrypted, want {want}")
        failures += 1
    listed = {name for name, _, _ in refusals}
    for path in sorted(data.glob("fail_*.srm")):
        if path.name not in listed:
            print(f"FAIL {path.name}: not in errors.tsv")
            failures += 1

    print(f"{checked} decryptions, {len(refusals)} refusals checked, {failures} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
