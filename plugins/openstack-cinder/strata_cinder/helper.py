"""The call to ``strata-cinder``: one request as JSON on stdin, one answer on stdout."""

from __future__ import annotations

import json
import subprocess
from typing import Any, Dict, Optional

PROTOCOL_VERSION = 1


class HelperError(Exception):
    """A failed call: ``kind`` is busy, not_found, unreachable, invalid or error."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def call(program: str, op: str, config: Dict[str, Any], args: Dict[str, Any],
         timeout: Optional[float] = None) -> Any:
    """Runs one operation and answers its result, or raises HelperError."""
    request = json.dumps({"version": PROTOCOL_VERSION, "op": op,
                          "config": config, "args": args})
    try:
        done = subprocess.run([program], input=request.encode(), capture_output=True,
                              timeout=timeout, check=False)
    except FileNotFoundError:
        raise HelperError("invalid", "%s is not installed (strata_helper)" % program)
    except subprocess.TimeoutExpired:
        raise HelperError("unreachable",
                          "%s did not answer %s within %s s" % (program, op, timeout))
    try:
        answer = json.loads(done.stdout.decode() or "null")
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        why = done.stderr.decode(errors="replace").strip() or "no answer"
        raise HelperError("error", "%s %s: %s" % (program, op, why))
    if not answer.get("ok"):
        raise HelperError(answer.get("kind") or "error", answer.get("error") or "failed")
    return answer.get("result")
