"""The pure crypto/XML core against the known-answer vectors (loaded, not copied)."""
from __future__ import annotations

import pytest

from hub.callbacks import xmlcodec
from hub.callbacks.crypto import CryptoError, MessageCrypto, check_signature, encrypted_reply, sign


def test_signatures(vectors):
    for v in vectors["signature"]:
        assert sign(v["token"], v["timestamp"], v["nonce"]) == v["signature"]
        assert check_signature(v["signature"], v["token"], v["timestamp"], v["nonce"])
        assert not check_signature(v["signature"][:-1] + "0", v["token"], v["timestamp"], v["nonce"])
        assert not check_signature(None, v["token"], v["timestamp"], v["nonce"])


def test_encrypt_known_answers(vectors):
    for v in vectors["encrypt"]:
        crypto = MessageCrypto(v["encoding_aes_key"], v["receive_id"])
        assert crypto.encrypt(v["message"], bytes.fromhex(v["random_hex"])) == v["encrypt"]
        assert crypto.decrypt(v["encrypt"]).decode() == v["message"]


def test_callback_vectors_signatures_and_plaintext(vectors):
    for v in vectors["callbacks"]:
        envelope = xmlcodec.parse(v["body"])
        q = v["query"]
        assert check_signature(q["msg_signature"], v["token"], q["timestamp"], q["nonce"], envelope["Encrypt"])
        crypto = MessageCrypto(v["encoding_aes_key"], v["receive_id"])
        assert crypto.decrypt(envelope["Encrypt"]).decode() == v["message"]


def test_wecom_url_verify_vector(vectors):
    v = vectors["wecom_url_verify"]
    q = v["query"]
    assert check_signature(q["msg_signature"], v["token"], q["timestamp"], q["nonce"], q["echostr"])
    assert MessageCrypto(v["encoding_aes_key"], v["receive_id"]).decrypt(q["echostr"]).decode() == v["answer"]


def test_bad_ciphertexts_rejected(vectors):
    rejected = 0
    for v in vectors["bad"]:
        crypto = MessageCrypto(v["encoding_aes_key"], v["receive_id"])
        if v["must_reject"]:
            with pytest.raises(CryptoError):
                crypto.decrypt(v["encrypt"])
            rejected += 1
    assert rejected >= 5


def test_bad_xml_refused(vectors):
    for v in vectors["bad_xml"]:
        if "no Encrypt" in v["why"]:
            assert "Encrypt" not in xmlcodec.parse(v["body"])  # well-formed; the handler refuses it
            continue
        with pytest.raises(xmlcodec.XmlError):
            xmlcodec.parse(v["body"])


def test_oversize_xml_refused():
    with pytest.raises(xmlcodec.XmlTooLarge):
        xmlcodec.parse(b"<xml>" + b"a" * 70_000 + b"</xml>")


def test_encrypted_reply_round_trip(vectors):
    v = vectors["callbacks"][0]
    crypto = MessageCrypto(v["encoding_aes_key"], v["receive_id"])
    reply = encrypted_reply(crypto, v["token"], "<xml><Content><![CDATA[您好]]></Content></xml>", "1732261000", "n1")
    fields = xmlcodec.parse(reply)
    assert check_signature(fields["MsgSignature"], v["token"], fields["TimeStamp"], fields["Nonce"], fields["Encrypt"])
    assert xmlcodec.parse(crypto.decrypt(fields["Encrypt"]))["Content"] == "您好"


def test_wrong_key_length_rejected():
    with pytest.raises(CryptoError):
        MessageCrypto("short", "x")


def test_one_crypto_decrypts_message_after_message_around_rejections(vectors):
    """decrypt reuses one block-cipher context for every message: each answer must equal a fresh
    CBC decryption, whatever came before it (a rejected ciphertext included)."""
    import base64
    import os

    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    v = vectors["encrypt"][0]
    crypto = MessageCrypto(v["encoding_aes_key"], v["receive_id"])
    bad = [v2["encrypt"] for v2 in vectors["bad"] if v2["must_reject"]
           and v2["encoding_aes_key"] == v["encoding_aes_key"]] + ["QUJD", "not base64!", ""]
    for n in range(0, 300, 7):
        message = os.urandom(n).hex()[:n] + "消息"
        encrypt = crypto.encrypt(message)
        assert crypto.decrypt(encrypt).decode() == message
        raw = base64.b64decode(encrypt)
        fresh = Cipher(algorithms.AES(crypto.key), modes.CBC(crypto.iv)).decryptor()
        assert crypto.decrypt(encrypt) == _unwrap(fresh.update(raw) + fresh.finalize())
        with pytest.raises(CryptoError):
            crypto.decrypt(bad[n % len(bad)])


def _unwrap(plain: bytes) -> bytes:
    body = plain[16:-plain[-1]]
    return body[4:4 + int.from_bytes(body[:4], "big")]
