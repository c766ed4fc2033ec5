"""What a job runs: Python source (`code`) or a program (`argv`, PROTOCOL-V2), as the
request field the daemon expects."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence, Union

from libleeward.abi import ErrorCode

from .errors import InvalidRequest

if TYPE_CHECKING:
    from ._client import Leeward

# Python source, or a program and its arguments (argv[0] looked up on the sandbox's PATH).
Program = Union[str, Sequence[str]]


def argv_list(argv: Sequence[str]) -> list[str]:
    """`argv` as the wire's list; a bare string is refused (it would be a list of
    characters), and so is anything but strings."""
    if isinstance(argv, (str, bytes)):
        raise TypeError("argv must be a list of strings, e.g. ['sh', '-c', 'echo hi']; "
                        "for Python code use execute()")
    args = list(argv)
    if not args or not all(isinstance(arg, str) for arg in args):
        raise TypeError(f"argv must be a non-empty list of strings, got {args[:3]!r}")
    return args


def program_fields(client: "Leeward", program: Program) -> dict[str, Any]:
    """{"code": ...} for a str, {"argv": [...]} for a sequence of str; argv only when
    the daemon offers it (its Ping lists "argv"), else InvalidRequest (E2010)."""
    if isinstance(program, str):
        return {"code": program}
    args = argv_list(program)
    if "argv" not in client.cached_features():
        raise InvalidRequest(ErrorCode.FEATURE_DISABLED.value,
                             "this daemon does not run programs (its Ping does not list 'argv')")
    return {"argv": args}
