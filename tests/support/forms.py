"""What the form shows before anyone touches it, pointed at the test server."""

DEFAULTS = {"model": "fake-chat", "endpoint": "auto", "system": None, "temperature": None, "top_p": None,
            "max_tokens": 256, "stream": True}
