"""Decode the C-style escapes accepted by `workbench keys` (`\\r`, `\\t`, `\\x03`, `\\e`, ...)."""

from __future__ import annotations

from workbench.errors import UsageError

_SIMPLE = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "e": "\x1b",
    "E": "\x1b",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "0": "\0",
}


def decode_escapes(text: str) -> bytes:
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c != "\\":
            out += c.encode()
            i += 1
            continue
        if i + 1 >= n:
            raise UsageError("trailing backslash in keys; write \\\\ for a backslash")
        k = text[i + 1]
        if k == "x":
            hexpart = text[i + 2 : i + 4]
            if len(hexpart) != 2 or any(h not in "0123456789abcdefABCDEF" for h in hexpart):
                raise UsageError(f"bad escape \\x{hexpart}: \\x needs two hex digits")
            out.append(int(hexpart, 16))
            i += 4
        elif k in "01234567" and text[i + 1 : i + 4].isdigit() and len(text[i + 1 : i + 4]) == 3:
            out.append(int(text[i + 1 : i + 4], 8) & 0xFF)
            i += 4
        elif k in ("u", "U"):
            width = 4 if k == "u" else 8
            hexpart = text[i + 2 : i + 2 + width]
            try:
                out += chr(int(hexpart, 16)).encode()
            except ValueError:
                raise UsageError(f"bad escape \\{k}{hexpart}") from None
            i += 2 + width
        elif k == "c" and i + 2 < n:
            # \cX: control character, as in bash's $'\cC'
            out.append(ord(text[i + 2].upper()) & 0x1F)
            i += 3
        elif k in _SIMPLE:
            out += _SIMPLE[k].encode()
            i += 2
        else:
            raise UsageError(f"unknown escape \\{k} in keys")
    return bytes(out)
