"""Validating `authorized_keys`: one OpenSSH public key per line."""

from cryptography.hazmat.primitives.serialization import load_ssh_public_key

KEY_TYPES = (
    "ssh-rsa",
    "ssh-dss",
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)


def invalid_key_lines(text: str) -> list[str]:
    """Messages for every line that is not an OpenSSH public key.

    Lines are numbered as sent, blank ones included, so the number points at
    the line the user typed.
    """
    problems = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if not _parses(line):
            problems.append(f"line {number} is not an OpenSSH public key")
    return problems


def _parses(line: str) -> bool:
    words = line.split()
    # Lines may start with options (from="...",no-pty); the key begins at its type.
    for index, word in enumerate(words[:-1]):
        if word in KEY_TYPES:
            try:
                load_ssh_public_key(f"{word} {words[index + 1]}".encode())
            except (ValueError, TypeError):
                return False
            return True
    return False


def normalise(text: str) -> str:
    """Drop blank lines, keep the keys in order."""
    return "\n".join(line.strip() for line in text.splitlines() if line.strip())
