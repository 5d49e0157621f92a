"""Does a tracking server answer? A bounded check, so that a run with credentials but no network goes offline
at once instead of waiting on the server (W&B's own wait is 90 s and then fails the run)."""

from __future__ import annotations

import http.client
import ssl
import threading
import urllib.error
import urllib.request


def server_answers(url: str, timeout: float) -> bool:
    """True if an HTTP(S) request to ``url`` gets any answer (an error status included) within ``timeout``
    seconds, name lookup and TLS handshake included. Nothing is sent but a plain GET, and the certificate is
    not checked: this asks only whether the server is there (W&B checks it when it connects)."""
    answered: list[bool] = []

    def probe() -> None:
        request = urllib.request.Request(url, method="GET", headers={"User-Agent": "lmlab-reachability"})
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context):
                answered.append(True)
        except urllib.error.HTTPError:
            answered.append(True)  # a status code is an answer
        except (OSError, ValueError, http.client.HTTPException):  # refused, timed out, no such host, not HTTP
            answered.append(False)

    # urlopen's timeout bounds each socket operation, not the name lookup: the thread bounds the whole
    thread = threading.Thread(target=probe, name="lmlab-server-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answered and answered[0])
