"""An ASGI module that cannot be imported, to prove a failed worker makes the server exit non-zero."""

raise RuntimeError("this application is broken on purpose")
