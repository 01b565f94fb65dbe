#!/usr/bin/env python3
"""The shipped `vitals-server` as a client in another language sees it.

Python's grpcio, which knows Vitals' API only through server reflection (grpcio-reflection
asks `grpc.reflection.v1alpha`), against the binary started as the README documents it:
API keys of every role, TLS from a throwaway CA (made with the openssl command line), a
small message limit; then the metrics page over HTTPS.

    python3 tests/other-language/check_server.py target/debug/vitals-server

Needs: pip install grpcio grpcio-reflection grpcio-health-checking; openssl. Exits 1 on the
first check that fails, naming it.
"""

import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import urllib.request

import grpc
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

CHECKS = 0


def check(condition, what):
    global CHECKS
    if not condition:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)
    CHECKS += 1
    print(f"ok: {what}")


def run(*args, **kwargs):
    return subprocess.run(args, check=True, capture_output=True, text=True, **kwargs)


def make_pki(d):
    """A CA and a server certificate for localhost signed by it."""
    run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        "-subj", "/CN=vitals-test-ca", "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
        "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n"
                "extendedKeyUsage=serverAuth\n")
    run("openssl", "x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.pem",
        "-CAkey", f"{d}/ca.key", "-CAcreateserial", "-days", "1", "-extfile", f"{d}/ext.cnf",
        "-out", f"{d}/server.pem")


def new_key(server_bin, name, roles):
    out = run(server_bin, "new-key", "--name", name, "--roles", roles).stdout
    key = re.search(r"(vk_[0-9a-f]+)", out).group(1)
    return key, out.strip().splitlines()[-1]


def main():
    server_bin = os.path.abspath(sys.argv[1])
    d = tempfile.mkdtemp(prefix="vitals-py-")
    make_pki(d)
    keys = {role: new_key(server_bin, name, role) for name, role in
            [("crm", "reader"), ("support", "pii-reader"), ("ingest", "writer"), ("ops", "admin")]}
    with open(f"{d}/keys.txt", "w") as f:
        f.write("\n".join(line for _, line in keys.values()) + "\n")

    server = subprocess.Popen(
        [server_bin, "--data-dir", f"{d}/data", "--listen", "127.0.0.1:0",
         "--api-keys", f"{d}/keys.txt", "--tls-cert", f"{d}/server.pem",
         "--tls-key", f"{d}/server.key", "--max-message-kib", "64", "--log-format", "json"],
        stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in server.stderr:
            if "serving gRPC" in line:
                port = json.loads(line)["addr"].rsplit(":", 1)[1]
                break
        check(port is not None, "the server logs the address it serves on")
        exercise(d, port, keys)
    finally:
        server.terminate()
        server.wait(timeout=20)
    print(f"{CHECKS} checks passed")


def exercise(d, port, keys):
    with open(f"{d}/ca.pem", "rb") as f:
        ca = f.read()
    channel = grpc.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(ca))

    # Reflection (v1alpha, what grpcio-reflection asks) gives the whole API.
    pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
    service = pool.FindServiceByName("vitals.v1.CustomerService")
    check(service is not None, "reflection v1alpha describes vitals.v1.CustomerService")
    msg = lambda name: message_factory.GetMessageClass(pool.FindMessageTypeByName(name))
    Customer, CreateReq, GetReq, DeleteReq = (msg("vitals.v1.Customer"),
        msg("vitals.v1.CreateCustomerRequest"), msg("vitals.v1.GetCustomerRequest"),
        msg("vitals.v1.DeleteCustomerRequest"))

    def call(method, request, key=None):
        response_type = message_factory.GetMessageClass(
            service.FindMethodByName(method).output_type)
        stub = channel.unary_unary(f"/vitals.v1.CustomerService/{method}",
                                   request_serializer=lambda m: m.SerializeToString(),
                                   response_deserializer=response_type.FromString)
        metadata = [("authorization", f"Bearer {key}")] if key else None
        try:
            return stub(request, metadata=metadata, timeout=10), grpc.StatusCode.OK
        except grpc.RpcError as e:
            return None, e.code()

    customer = Customer(external_id="py-1", display_name="Ada Lovelace",
                        email="ada@example.com")
    _, code = call("CreateCustomer", CreateReq(customer=customer))
    check(code == grpc.StatusCode.UNAUTHENTICATED, f"no key: UNAUTHENTICATED (got {code})")
    _, code = call("CreateCustomer", CreateReq(customer=customer), "vk_wrong")
    check(code == grpc.StatusCode.UNAUTHENTICATED, f"unknown key: UNAUTHENTICATED (got {code})")
    _, code = call("CreateCustomer", CreateReq(customer=customer), keys["reader"][0])
    check(code == grpc.StatusCode.PERMISSION_DENIED, f"a reader may not write (got {code})")
    created, code = call("CreateCustomer", CreateReq(customer=customer), keys["writer"][0])
    check(code == grpc.StatusCode.OK, f"a writer writes (got {code})")
    seen, _ = call("GetCustomer", GetReq(id=created.id), keys["reader"][0])
    check(seen is not None and seen.email == "***", "a reader sees the e-mail masked")
    seen, _ = call("GetCustomer", GetReq(id=created.id), keys["pii-reader"][0])
    check(seen is not None and seen.email == "ada@example.com", "a pii-reader sees it")
    _, code = call("DeleteCustomer", DeleteReq(id=created.id), keys["writer"][0])
    check(code == grpc.StatusCode.PERMISSION_DENIED, f"a writer may not erase (got {code})")
    _, code = call("DeleteCustomer", DeleteReq(id=created.id), keys["admin"][0])
    check(code == grpc.StatusCode.OK, f"an admin erases (got {code})")

    big = Customer(external_id="py-big", display_name="x" * (100 * 1024))
    _, code = call("CreateCustomer", CreateReq(customer=big), keys["admin"][0])
    check(code == grpc.StatusCode.RESOURCE_EXHAUSTED,
          f"a request over the 64 KiB limit: RESOURCE_EXHAUSTED (got {code})")

    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status
    check(status == health_pb2.HealthCheckResponse.SERVING, "health: SERVING, without a key")

    plain = grpc.insecure_channel(f"localhost:{port}")
    try:
        health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest(), timeout=3)
        refused = False
    except grpc.RpcError:
        refused = True
    check(refused, "plaintext is refused by a TLS server")

    context = ssl.create_default_context(cafile=f"{d}/ca.pem")
    with urllib.request.urlopen(f"https://localhost:{port}/metrics", context=context,
                                timeout=10) as response:
        page = response.read().decode()
        check(response.status == 200, "GET /metrics over HTTPS answers 200")
    check('code="PERMISSION_DENIED",method="vitals.v1.CustomerService/CreateCustomer"} 1'
          in page, "the metrics count the refused write by method and status")
    check('code="RESOURCE_EXHAUSTED"' in page, "and the oversized request")


if __name__ == "__main__":
    main()
