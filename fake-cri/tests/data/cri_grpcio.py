"""CRI over the unix socket with grpcio (gRPC C-core), with no channel option set: Version,
Status, ListPodSandbox and an unknown method. Protobuf messages are written and read by hand
(only the fields used), so nothing but grpcio is needed. Prints one line per call; exits 1 on
the first call that fails."""

import sys

import grpc


def field_strings(data):
    """Length-delimited fields of a protobuf message: {field number: [bytes, ...]}."""
    out, i = {}, 0
    while i < len(data):
        key, i = varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(data, i)
        elif wire == 2:
            n, i = varint(data, i)
            out.setdefault(number, []).append(data[i:i + n])
            i += n
        elif wire == 5:
            i += 4
        elif wire == 1:
            i += 8
        else:
            raise ValueError("wire type %d" % wire)
    return out


def varint(data, i):
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def call(channel, method, request):
    fn = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
    return fn(request, timeout=10)


def main(socket):
    # The target C-core resolves; its :authority is the percent-encoded socket path.
    with grpc.insecure_channel("unix://" + socket) as channel:
        version = field_strings(call(channel, "/runtime.v1.RuntimeService/Version", b"\x0a\x02v1"))
        name = version.get(2, [b""])[0].decode()
        api = version.get(4, [b""])[0].decode()
        print("Version runtime_name=%s runtime_api_version=%s" % (name, api))
        if name != "fake-cri" or api != "v1":
            return 1
        status = field_strings(call(channel, "/runtime.v1.RuntimeService/Status", b""))
        conditions = [field_strings(c) for c in field_strings(status.get(1, [b""])[0]).get(1, [])]
        kinds = sorted(c.get(1, [b""])[0].decode() for c in conditions)
        print("Status conditions=%s" % ",".join(kinds))
        if "RuntimeReady" not in kinds:
            return 1
        sandboxes = field_strings(call(channel, "/runtime.v1.RuntimeService/ListPodSandbox", b""))
        print("ListPodSandbox items=%d" % len(sandboxes.get(1, [])))
        try:
            call(channel, "/runtime.v1.RuntimeService/NoSuchMethod", b"")
            print("NoSuchMethod answered")
            return 1
        except grpc.RpcError as e:
            print("NoSuchMethod code=%s" % e.code().name)
            if e.code() != grpc.StatusCode.UNIMPLEMENTED:
                return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
