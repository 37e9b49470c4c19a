"""Hub failures as one sentence for a person: :class:`HubError` and the mapping from what
huggingface_hub and its HTTP client raise.

Exception types are recognised by class name along their MRO, so this module imports neither
huggingface_hub nor httpx2 (only ``desktop.core.hub.client`` does, lazily).
"""

from __future__ import annotations

from typing import Any

__all__ = ["HubError", "describe_failure", "KINDS", "OFFLINE_MESSAGE"]

KINDS = ("offline", "auth", "not_found", "rate_limited", "server", "bad_response")
OFFLINE_MESSAGE = "Cove cannot reach the Hugging Face Hub: this computer seems to be offline."


class HubError(Exception):
    """A Hub request that failed; ``str(e)`` is one sentence for the person.

    ``kind``: "offline" (no connection, a timeout, a connection cut mid-file), "auth" (401/403: a
    token is needed or was refused), "not_found", "rate_limited" (429), "server" (5xx) or
    "bad_response"; ``status`` the HTTP status when there was one.
    """

    def __init__(self, message: str, kind: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status

    @property
    def message(self) -> str:
        return str(self)


def _names(exc: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(exc).__mro__}


def _retry_after(headers: Any) -> str:
    value = str(headers.get("Retry-After", "") or "")
    if value.isdigit() and int(value) <= 3600:
        seconds = int(value)
        return f"in {seconds} seconds" if seconds < 120 else f"in {round(seconds / 60)} minutes"
    return "in a few minutes"


def _http_failure(response: Any, names: set[str], what: str, repo_id: str, filename: str) -> HubError:
    status = int(response.status_code)
    code = response.headers.get("X-Error-Code", "") or ""
    repo = repo_id or "this repository"
    if code == "GatedRepo" or "GatedRepoError" in names:
        if status == 403:
            return HubError(f"Your Hugging Face token has no access to {repo}: accept the model's terms on its "
                            "Hub page first, or use a token from an account that has.", "auth", status)
        return HubError(f"{repo} is gated: it needs a Hugging Face token from an account that has accepted "
                        "its terms.", "auth", status)
    try:
        had_token = "authorization" in response.request.headers
    except (AttributeError, RuntimeError):
        had_token = False
    if status == 401 and had_token:
        return HubError("The Hugging Face Hub refused the token: check it or enter a new one.", "auth", status)
    if code == "RevisionNotFound" or "RevisionNotFoundError" in names:
        return HubError(f"{repo} no longer has the version Cove listed; list its files again.", "not_found", status)
    if code == "EntryNotFound" or "EntryNotFoundError" in names:
        return HubError(f"{repo} has no file {filename or 'by that name'}.", "not_found", status)
    if code == "RepoNotFound" or "RepositoryNotFoundError" in names:
        return HubError(f"The Hugging Face Hub has no repository {repo} (or it is private and needs a token).",
                        "not_found", status)
    target = f"{filename} in {repo_id}" if filename else repo_id or "the search"
    if status == 401:
        return HubError(f"The Hugging Face Hub wants a token for {target}: enter a Hugging Face token.",
                        "auth", status)
    if status == 403:
        return HubError(f"The Hugging Face Hub refused access to {target}"
                        + (" for this token." if had_token else "; a token with access may be needed."),
                        "auth", status)
    if status == 404:
        return HubError(f"The Hugging Face Hub could not find {target if repo_id else 'what Cove asked for'}.",
                        "not_found", status)
    if status == 429:
        return HubError("The Hugging Face Hub is limiting requests from this computer; try again "
                        f"{_retry_after(response.headers)}.", "rate_limited", status)
    if status >= 500:
        return HubError(f"The Hugging Face Hub had a server error ({status}); try again later.", "server", status)
    return HubError(f"The Hugging Face Hub answered with an error ({status}) when Cove tried to {what}.",
                    "bad_response", status)


def describe_failure(exc: BaseException, what: str, repo_id: str = "", filename: str = "",
                     during_body: bool = False) -> HubError:
    """The HubError for ``exc``, raised while trying to ``what`` ("download x.gguf")."""
    if isinstance(exc, HubError):
        return exc
    names = _names(exc)
    response = getattr(exc, "response", None)
    if "OfflineModeIsEnabled" in names:
        return HubError("Cove does not contact the Hugging Face Hub because HF_HUB_OFFLINE is set.", "offline")
    if "HFValidationError" in names:
        return HubError(f"{repo_id or 'That'!r} is not a repository name; Hub repositories are named "
                        "owner/name.", "not_found")
    if response is not None and hasattr(response, "status_code"):
        return _http_failure(response, names, what, repo_id, filename)
    if names & {"TimeoutException", "TimeoutError", "timeout"}:
        return HubError(f"The Hugging Face Hub stopped answering while Cove tried to {what}; the connection "
                        "may be down or very slow.", "offline")
    if names & {"NetworkRefused"} or "NetworkRefused" in {c for e in (exc.__cause__, exc.__context__)
                                                            if e is not None for c in _names(e)}:
        return HubError(f"Cove's network guard blocked a connection while trying to {what}.", "offline")
    if during_body or "RemoteProtocolError" in names or "ReadError" in names:
        return HubError(f"The connection to the Hugging Face Hub broke off while Cove tried to {what}.", "offline")
    if names & {"ConnectError", "NetworkError", "TransportError", "ConnectionError", "OSError"}:
        return HubError(OFFLINE_MESSAGE, "offline")
    return HubError(f"The Hugging Face Hub sent an answer Cove does not understand when it tried to {what}.",
                    "bad_response")
