"""Keep secrets out of logs: session tokens in paths, credentials in headers."""

import logging
import re

_SESSION_PATH = re.compile(r"(/session/)[^/\s?\"]+")
_BEARER = re.compile(r"(Bearer\s+)\S+", re.IGNORECASE)


def mask(text: str) -> str:
    return _BEARER.sub(r"\1***", _SESSION_PATH.sub(r"\1***", text))


class MaskSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg = masked
            record.args = ()
        return True
