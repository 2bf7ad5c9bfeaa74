"""A gRPC server and client for tests/grpc.rs, with grpcio's generic
handlers and raw bytes messages (no protobuf code generation).

  echo.py server            serves h2c on an ephemeral port; prints
                            "port N" once listening, then serves until
                            stdin closes.
  echo.py client ADDR CA    calls the server through ADDR over TLS (CA:
                            the certificate to trust, for h2.test); prints
                            one "name: result" line per check and exits 1
                            if any check failed.

Methods of service test.Echo:
  Unary      replies "echo:" + the request, trailing metadata x-trailer.
  Bidi       replies "echo:" + each message as it comes.
  Missing    aborts with NOT_FOUND "no such thing".
  Peers      replies with how many connections (client ports) the server
             saw so far, in ASCII.
"""

import queue
import sys
import threading
from concurrent import futures

import grpc

SERVICE = "test.Echo"


def raw(b):
    return b


class Echo:
    def __init__(self):
        self.peers = set()
        self.lock = threading.Lock()

    def seen(self, context):
        with self.lock:
            self.peers.add(context.peer())

    def unary(self, request, context):
        self.seen(context)
        context.set_trailing_metadata((("x-trailer", "yes"),))
        return b"echo:" + request

    def bidi(self, requests, context):
        self.seen(context)
        for message in requests:
            yield b"echo:" + message

    def missing(self, request, context):
        self.seen(context)
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

    def count(self, request, context):
        with self.lock:
            return str(len(self.peers)).encode()


def serve():
    echo = Echo()
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(echo.unary, raw, raw),
        "Bidi": grpc.stream_stream_rpc_method_handler(echo.bidi, raw, raw),
        "Missing": grpc.unary_unary_rpc_method_handler(echo.missing, raw, raw),
        "Peers": grpc.unary_unary_rpc_method_handler(echo.count, raw, raw),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=64))
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(SERVICE, handlers),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"port {port}", flush=True)
    # The test ends the server by closing stdin (or killing it).
    sys.stdin.read()
    server.stop(0)


def client(addr, ca):
    with open(ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    options = (("grpc.ssl_target_name_override", "h2.test"),)
    failed = False

    def check(name, ok, detail):
        nonlocal failed
        failed |= not ok
        print(f"{name}: {'ok' if ok else 'FAILED'} {detail}", flush=True)

    with grpc.secure_channel(addr, creds, options) as channel:
        def method(kind, name):
            return getattr(channel, kind)(
                f"/{SERVICE}/{name}",
                request_serializer=raw,
                response_deserializer=raw,
            )

        unary = method("unary_unary", "Unary")
        reply, call = unary.with_call(b"hello", timeout=30)
        trailers = dict(call.trailing_metadata() or ())
        check(
            "unary",
            reply == b"echo:hello" and call.code() == grpc.StatusCode.OK,
            f"{reply!r} {call.code()}",
        )
        check("trailer", trailers.get("x-trailer") == "yes", f"{trailers!r}")

        # Ping-pong: each message goes only once the reply to the one
        # before came back, so nothing may wait for the end of a stream.
        bidi = method("stream_stream", "Bidi")
        outbox = queue.Queue()

        def requests():
            while (message := outbox.get()) is not None:
                yield message

        sent = [f"m{i}".encode() for i in range(5)]
        responses = bidi(requests(), timeout=30)
        replies = []
        for message in sent:
            outbox.put(message)
            replies.append(next(responses))
        outbox.put(None)
        replies.extend(responses)
        check(
            "bidi",
            replies == [b"echo:" + m for m in sent] and responses.code() == grpc.StatusCode.OK,
            f"{replies!r}",
        )

        # A large message crosses several DATA frames and windows.
        big = bytes(range(256)) * 1024
        reply = unary(big, timeout=30)
        check("large", reply == b"echo:" + big, f"{len(reply)} bytes")

        missing = method("unary_unary", "Missing")
        try:
            missing(b"x", timeout=30)
            check("not_found", False, "the call succeeded")
        except grpc.RpcError as e:
            check(
                "not_found",
                e.code() == grpc.StatusCode.NOT_FOUND and e.details() == "no such thing",
                f"{e.code()} {e.details()!r}",
            )

        # Many calls at once on this one connection to percore: percore
        # multiplexes them on its own connection(s) to the server.
        with futures.ThreadPoolExecutor(max_workers=50) as pool:
            calls = [
                pool.submit(unary, f"c{i}".encode(), timeout=30) for i in range(200)
            ]
            answers = [c.result() for c in calls]
        check(
            "concurrent",
            answers == [f"echo:c{i}".encode() for i in range(200)],
            f"{len(answers)} answers",
        )
        peers = method("unary_unary", "Peers")(b"", timeout=30)
        print(f"peers: {peers.decode()}", flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    if sys.argv[1:2] == ["server"]:
        serve()
    elif sys.argv[1:2] == ["client"] and len(sys.argv) == 4:
        client(sys.argv[2], sys.argv[3])
    else:
        sys.exit(__doc__)
