"""A request type is one dataclass (libleeward.protocol), one entry in REQUESTS
(libleeward.messages) and one handler (frontdoor/handlers.py): none without the others."""
from leeward_daemon.frontdoor.handlers import HANDLERS
from libleeward.messages import REQUESTS


def test_every_request_type_has_its_handler_and_no_handler_is_spare():
    assert set(HANDLERS) == set(REQUESTS.values())


def test_each_type_is_keyed_by_its_wire_name():
    assert all(name == cls.type for name, cls in REQUESTS.items())
