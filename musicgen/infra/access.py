"""Who may change things: the app is local by default; shared on a network, a password guards every change
(start or stop training, delete a model or dataset, upload)."""

from __future__ import annotations

import hmac
import os

LOCAL_ADDRESSES = ("127.0.0.1", "localhost", "::1")
NO_PASSWORD = ("This app is shared on the network without a password, so it only shows music: uploads, "
               "training and deleting are off. To allow them, start it with MUSICGEN_PASSWORD set "
               "(or a password in .streamlit/secrets.toml).")
LOCKED = "Enter the password in the sidebar to upload, train or delete."


def is_shared(address: str | None) -> bool:
    """Whether the server listens beyond this computer (no address means every interface)."""
    return (address or "0.0.0.0") not in LOCAL_ADDRESSES


def password(secrets: dict | None = None) -> str | None:
    """The password from $MUSICGEN_PASSWORD, else from Streamlit's secrets ('password'); None when unset."""
    value = os.environ.get("MUSICGEN_PASSWORD") or (secrets or {}).get("password")
    return str(value) if value else None


def may_change(address: str | None, expected: str | None, given: str | None) -> bool:
    """Changes are allowed on a local server without a password, or with the right password."""
    if expected is None:
        return not is_shared(address)
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())
