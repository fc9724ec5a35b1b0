"""Redaction of secrets carried in URLs and error texts (pure).

Platform APIs take credentials in query strings (WeCom ``gettoken?corpid=..&corpsecret=..``, every
call's ``?access_token=..``, Youzan ``?access_token=..``); an HTTP client's error names the URL it
failed on, so an error text written to a log or shown in an answer must pass through ``redact_text``
first. Only the values go (``corpsecret=***``): the host and path stay, to tell what failed.
"""
from __future__ import annotations

import re

MASK = "***"
# query / form parameter names whose values are credentials (matched case-insensitively)
SECRET_PARAMS = ("access_token", "corpsecret", "secret", "app_secret", "appsecret", "client_secret", "session",
                 "refresh_token", "token", "encoding_aes_key", "sign", "signature", "msg_signature")
_PARAM = re.compile(r"(?i)(?<![A-Za-z0-9_])(" + "|".join(re.escape(p) for p in SECRET_PARAMS)
                    + r")(=|%3D|'\s*:\s*'|\"\s*:\s*\")([^&\s'\"<>#,;)\]}]+)")


def redact_text(text: str) -> str:
    """``text`` with the value of every credential-named ``name=value`` (or ``'name': 'value'``) masked."""
    if not text:
        return text
    return _PARAM.sub(lambda m: m.group(1) + m.group(2) + MASK, text)


def redact_error(exc: BaseException, limit: int = 500) -> str:
    """``"<Type>: <message>"`` of ``exc``, redacted and cut to ``limit`` characters."""
    return redact_text(f"{type(exc).__name__}: {exc}")[:limit]
