"""Client errors in one line, not a traceback each.

BentoML logs every exception its API wrapper catches with its traceback: 2.4 KB for each malformed request
(a pydantic ValidationError, answered 400) and 1.7 KB for each 4xx or 503 it raised itself. The guard
(serving/http_guard.py) logs those answers in one line, and serving/http_limits.py the client that went away
or was cut off (BentoML's record of that is a ClientDisconnect traceback); this filter drops BentoML's
record of them. A real 500 keeps its traceback.
"""
from __future__ import annotations

import logging

BENTOML_API_LOGGER = "bentoml._internal.server.http_app"  # the logger of BentoML's `log_exception`


class ClientErrorTracebacks(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return error is None or not is_client_error(error)


def is_client_error(error: BaseException) -> bool:
    from bentoml.exceptions import BentoMLException
    from pydantic import ValidationError
    from starlette.requests import ClientDisconnect

    if isinstance(error, (ValidationError, ClientDisconnect)):
        return True
    status = int(getattr(error, "error_code", 500)) if isinstance(error, BentoMLException) else 500
    return status < 500 or status == 503


def install() -> None:
    logger = logging.getLogger(BENTOML_API_LOGGER)
    if not any(isinstance(f, ClientErrorTracebacks) for f in logger.filters):
        logger.addFilter(ClientErrorTracebacks())
