"""Write development secrets to the git-ignored var/.env when none are set, so a fresh clone runs.

Only keys missing from both the environment and the file are added; an existing key is never replaced
(replacing CREDENTIALS_KEYS would make every stored broker credential unreadable).
"""

import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ENV_FILE = Path(__file__).resolve().parent.parent / "var" / ".env"

GENERATORS = {
    "CREDENTIALS_KEYS": lambda: Fernet.generate_key().decode(),
    "DJANGO_SECRET_KEY": lambda: secrets.token_urlsafe(50),
}


def existing_keys(path: Path) -> set[str]:
    if not path.exists():
        return set()
    lines = (line.split("=", 1)[0].strip() for line in path.read_text().splitlines() if "=" in line)
    return {key for key in lines if key and not key.startswith("#")}


def main() -> int:
    ENV_FILE.parent.mkdir(parents=True, exist_ok=True)
    present = existing_keys(ENV_FILE) | set(os.environ)
    missing = [key for key in GENERATORS if key not in present]
    if not missing:
        return 0
    with ENV_FILE.open("a") as handle:
        for key in missing:
            handle.write(f"{key}={GENERATORS[key]()}\n")
    ENV_FILE.chmod(0o600)
    print(f"[env] wrote development {', '.join(missing)} to {ENV_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
