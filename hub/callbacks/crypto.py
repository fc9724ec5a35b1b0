"""WeChat / WeCom callback crypto: sha1 signatures, AES-256-CBC with 32-byte PKCS#7.

Pure functions, no I/O. The layout of a plaintext is
``random(16) + len(msg) as 4-byte big-endian + msg + receive_id``.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32  # WeChat pads to 32 bytes, not AES's 16


class CryptoError(ValueError):
    """A ciphertext or key that cannot be accepted (maps to HTTP 400)."""


def sign(*parts: str) -> str:
    """sha1 of the sorted, concatenated strings (both plaintext and msg_signature schemes)."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def check_signature(expected: str | None, *parts: str) -> bool:
    """Constant-time comparison of a received signature with the computed one."""
    if not expected:
        return False
    return hmac.compare_digest(sign(*parts).encode(), expected.encode("ascii", "replace"))


def aes_key(encoding_aes_key: str) -> bytes:
    """Decode a 43-character EncodingAESKey into the 32-byte AES key."""
    if len(encoding_aes_key) != 43:
        raise CryptoError("EncodingAESKey must be 43 characters")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as exc:
        raise CryptoError("EncodingAESKey is not base64") from exc
    if len(key) != 32:
        raise CryptoError("EncodingAESKey does not decode to 32 bytes")
    return key


def generate_encoding_aes_key() -> str:
    """A fresh 43-character EncodingAESKey, as the platforms' consoles generate."""
    return base64.b64encode(os.urandom(32)).decode()[:43]


class MessageCrypto:
    """Encrypts and decrypts callback payloads for one account (key + receive id)."""

    __slots__ = ("key", "iv", "receive_id", "_receive_id_bytes", "_cipher", "_blocks")

    def __init__(self, encoding_aes_key: str, receive_id: str):
        self.key = aes_key(encoding_aes_key)
        self.iv = self.key[:16]
        self.receive_id = receive_id
        self._receive_id_bytes = receive_id.encode()
        self._cipher = Cipher(algorithms.AES(self.key), modes.CBC(self.iv))
        # AES block decryption of whole blocks: ECB keeps no state between calls, so one context
        # serves every message (a CBC context is single-use, and making one per callback cost
        # ~10 us of a callback's ~200 in the hub under load). Used from the event loop's thread only.
        self._blocks = Cipher(algorithms.AES(self.key), modes.ECB()).decryptor()

    def decrypt(self, encrypt: str) -> bytes:
        """Base64 ciphertext -> the message bytes (UTF-8 XML); checks padding, length and receive id."""
        try:
            raw = base64.b64decode(encrypt, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CryptoError("ciphertext is not base64") from exc
        if not raw or len(raw) % 16:
            raise CryptoError("ciphertext is not a multiple of the AES block")
        plain = cbc_decrypt(self._blocks.update(raw), self.iv, raw)
        pad = plain[-1]
        if pad < 1 or pad > BLOCK or pad > len(plain) or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad padding (wrong key?)")
        body = plain[16:-pad]
        if len(body) < 4:
            raise CryptoError("plaintext too short")
        (length,) = struct.unpack(">I", body[:4])
        if length > len(body) - 4:
            raise CryptoError("length field larger than the plaintext")
        msg = body[4 : 4 + length]
        if not hmac.compare_digest(body[4 + length :], self._receive_id_bytes):
            raise CryptoError("receive id does not match this account")
        return msg

    def encrypt(self, msg: bytes | str, random16: bytes | None = None) -> str:
        """Message -> base64 ciphertext (random16 injectable for known-answer tests)."""
        if isinstance(msg, str):
            msg = msg.encode()
        rnd = os.urandom(16) if random16 is None else random16
        if len(rnd) != 16:
            raise ValueError("random prefix must be 16 bytes")
        body = rnd + struct.pack(">I", len(msg)) + msg + self._receive_id_bytes
        pad = BLOCK - len(body) % BLOCK
        body += bytes([pad]) * pad
        encryptor = self._cipher.encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode()


def cbc_decrypt(blocks: bytes, iv: bytes, ciphertext: bytes) -> bytes:
    """CBC decryption from the block-decrypted ciphertext: each block XOR the ciphertext block before
    it (the IV for the first)."""
    size = len(ciphertext)
    chained = int.from_bytes(iv + ciphertext[:-16], "big")
    return (int.from_bytes(blocks, "big") ^ chained).to_bytes(size, "big")


def encrypted_reply(crypto: MessageCrypto, token: str, reply_xml: str, timestamp: str, nonce: str,
                    random16: bytes | None = None) -> str:
    """The encrypted passive reply envelope a platform expects back from a callback."""
    encrypt = crypto.encrypt(reply_xml, random16)
    signature = sign(token, timestamp, nonce, encrypt)
    return (f"<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]>"
            f"</MsgSignature><TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>")
