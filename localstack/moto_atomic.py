"""moto server whose DynamoDB requests take effect one at a time.

DynamoDB applies every single-item write atomically: an `UpdateItem ADD` counter or a conditional
write that two clients send at once never loses one of them. moto's DynamoDB backend has no lock
and its server answers each request on its own thread, so two concurrent `ADD`s can read the same
old value. This launcher serialises moto's DynamoDB handler (other services are untouched) and then
runs moto's own server entry point with the same arguments as `moto_server`.
"""

import sys
import threading

from moto.dynamodb.responses import DynamoHandler
from moto.server import main

_LOCK = threading.Lock()
_CALL_ACTION = DynamoHandler.call_action


def _call_action_serialised(self):
    with _LOCK:
        return _CALL_ACTION(self)


DynamoHandler.call_action = _call_action_serialised

if __name__ == "__main__":
    main(sys.argv[1:])
