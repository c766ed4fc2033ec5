"""The daemon's one exception tree (leeward_daemon.errors) and the one table that gives
a client its code (frontdoor/errors.py)."""
import inspect

import pytest

from leeward_daemon import errors
from leeward_daemon.frontdoor.errors import CODES, to_protocol_error
from libleeward.protocol import ErrorCode

ALL = [cls for _, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, Exception)]


def test_every_daemon_exception_descends_from_the_root_and_is_in_the_docstring():
    for cls in ALL:
        assert issubclass(cls, errors.DaemonError), cls
        assert cls.__name__ in errors.__doc__, cls


@pytest.mark.parametrize("cls", [cls for cls in ALL if issubclass(cls, errors.RequestFailed)
                                 and cls is not errors.RequestFailed])
def test_every_request_failure_has_its_code(cls):
    error = to_protocol_error(cls("why"))
    assert error.code is CODES[cls] and error.message == "why"


def test_the_codes_are_the_documented_ones():
    assert {cls.__name__: code for cls, code in CODES.items()} == {
        "SandboxUnavailable": ErrorCode.SANDBOX_UNAVAILABLE, "SandboxFailed": ErrorCode.SANDBOX_FAILED,
        "ShuttingDown": ErrorCode.SHUTTING_DOWN, "DaemonBusy": ErrorCode.DAEMON_BUSY,
        "SessionNotFound": ErrorCode.SESSION_NOT_FOUND, "SessionBusy": ErrorCode.SESSION_BUSY,
        "SessionEnded": ErrorCode.SESSION_ENDED, "SessionLimit": ErrorCode.SESSION_LIMIT,
        "FileRefused": ErrorCode.BAD_PATH}


def test_start_up_errors_are_one_branch():
    for cls in (errors.ConfigError, errors.DaemonAlreadyRunning, errors.MetricsUnavailable, errors.ActivationError,
                errors.ZygoteError, errors.IsolationUnavailable, errors.LimitsUnavailable):
        assert issubclass(cls, errors.StartupError), cls
