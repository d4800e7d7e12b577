"""`$(VAR)` expansion in env values, command and args, as the kubelet does it.

`$(NAME)` becomes NAME's value when NAME is defined and stays as written when it
is not; `$$` is an escaped `$`, so `$$(NAME)` yields the literal `$(NAME)`.
"""

from __future__ import annotations

from typing import Callable, Mapping


def expand(text: str, lookup: Mapping[str, str] | Callable[[str], str | None]) -> str:
    get = lookup.get if isinstance(lookup, Mapping) else lookup
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "$" or i + 1 >= n:
            out.append(ch)
            i += 1
            continue
        nxt = text[i + 1]
        if nxt == "$":
            out.append("$")
            i += 2
        elif nxt == "(":
            close = text.find(")", i + 2)
            if close < 0:
                out.append(text[i:])        # an unterminated reference is kept literally
                break
            name = text[i + 2:close]
            value = get(name) if name else None
            out.append(value if value is not None else text[i:close + 1])
            i = close + 1
        else:
            out.append(ch)
            i += 1
    return "".join(out)
