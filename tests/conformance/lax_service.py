"""A service entry point that does not check its secrets: it "starts" whatever the environment says.

Used to show that the RB-AUTH-SECRETS check fails against a service that would run without them.
"""

from __future__ import annotations

import sys

if __name__ == "__main__":
    print("serving (no configuration checks)")
    sys.exit(0)
