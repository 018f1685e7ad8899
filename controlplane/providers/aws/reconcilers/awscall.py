"""One AWS call with the reconciler discipline: a ``ClientError`` becomes WaitFor/ReconcileError.

Only the error codes a reconciler handles itself (``tolerate``) come back as the ``ClientError``,
so each call site states which answers it expects instead of catching everything.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from botocore.exceptions import ClientError

from controlplane.providers.aws.reconcilers.base import error_code, translate_client_error


def aws_call(
    action: str,
    fn: Callable[..., Any],
    *,
    tolerate: Collection[str] = (),
    **kwargs: Any,
) -> Any:
    """Call ``fn(**kwargs)``; ``action`` (e.g. ``iam:CreateRole``) names it in error messages.

    Error codes in ``tolerate`` are re-raised as ``ClientError`` for the caller to handle.
    """
    try:
        return fn(**kwargs)
    except ClientError as exc:
        if error_code(exc) in tolerate:
            raise
        raise translate_client_error(exc, action) from exc
