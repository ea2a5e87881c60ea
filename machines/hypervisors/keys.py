"""BigV sendkey names and the Linux input key codes they press.

BigV passed QEMU's `sendkey` names through, so both QEMU's spellings and the
obvious long forms are accepted. Codes are from linux/input-event-codes.h.
"""

from collections.abc import Sequence

from machines.hypervisors.base import HypervisorError

# libvirt refuses more than this many keys in one virDomainSendKey call.
MAX_KEYS = 16

_LETTERS = dict(
    zip(
        "qwertyuiopasdfghjklzxcvbnm",
        [*range(16, 26), *range(30, 39), *range(44, 51)],
        strict=True,
    )
)
_DIGITS = {"1": 2, "2": 3, "3": 4, "4": 5, "5": 6, "6": 7, "7": 8, "8": 9, "9": 10}
_FUNCTION_KEYS = {f"f{n}": 58 + n for n in range(1, 11)} | {"f11": 87, "f12": 88}

_NAMED = {
    "esc": 1,
    "0": 11,
    "minus": 12,
    "equal": 13,
    "backspace": 14,
    "tab": 15,
    "bracket_left": 26,
    "bracket_right": 27,
    "ret": 28,
    "ctrl": 29,
    "semicolon": 39,
    "apostrophe": 40,
    "grave_accent": 41,
    "shift": 42,
    "backslash": 43,
    "comma": 51,
    "dot": 52,
    "slash": 53,
    "shift_r": 54,
    "asterisk": 55,
    "alt": 56,
    "spc": 57,
    "caps_lock": 58,
    "num_lock": 69,
    "scroll_lock": 70,
    "less": 86,
    "ctrl_r": 97,
    "sysrq": 99,
    "alt_r": 100,
    "home": 102,
    "up": 103,
    "pgup": 104,
    "left": 105,
    "right": 106,
    "end": 107,
    "down": 108,
    "pgdn": 109,
    "insert": 110,
    "delete": 111,
    "pause": 119,
    "meta_l": 125,
    "meta_r": 126,
    "menu": 127,
}

_ALIASES = {
    "escape": "esc",
    "enter": "ret",
    "return": "ret",
    "control": "ctrl",
    "space": "spc",
    "altgr": "alt_r",
    "del": "delete",
    "print": "sysrq",
    "pageup": "pgup",
    "pagedown": "pgdn",
    "super": "meta_l",
    "win": "meta_l",
}

KEYCODES: dict[str, int] = (
    _LETTERS
    | _DIGITS
    | _FUNCTION_KEYS
    | _NAMED
    | {alias: _NAMED[name] for alias, name in _ALIASES.items()}
)

# What /definitions lists as `sendkeys`, in a stable order.
SENDKEYS: tuple[str, ...] = tuple(sorted(KEYCODES))


def keycodes(keys: Sequence[str]) -> list[int]:
    """Linux key codes for BigV key names; unknown names are refused whole."""
    if not keys:
        raise HypervisorError("no keys to send")
    if len(keys) > MAX_KEYS:
        raise HypervisorError(f"at most {MAX_KEYS} keys can be pressed at once")

    unknown = [key for key in keys if key.lower() not in KEYCODES]
    if unknown:
        raise HypervisorError(f"unknown keys: {', '.join(unknown)}")
    return [KEYCODES[key.lower()] for key in keys]
