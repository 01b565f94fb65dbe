"""Write a pre-serialized gRPC request body for Vitals' EvaluationService/ScoreFeatures (for
h2load, through /work/shared/bench/load.sh), and check it with a real gRPC client.

    python bench/score_features_body.py OUT.bin [--mode features|model_input] [--row N]
        [--csv fixtures/datasets/telco_customer_churn.csv] [--addr 127.0.0.1:50051] [--no-check]

The body is one ScoreFeaturesRequest with the 5-byte gRPC prefix (a zero byte, then the message
length as 4 bytes big-endian), as /work/shared/bench/make_body.py writes for the Python server.

- `--mode features` (default): the Telco customer on CSV row N (0-based, after the header) as
  the API takes a feature record: `attributes` = the customer's 19 Telco attributes, typed as
  the Telco importer types them (SeniorCitizen bool; tenure, MonthlyCharges, TotalCharges
  numbers; the rest strings; a blank cell omitted), and `features` = the 18 behavioural
  features such a customer has: `tenure_days` (tenure in months x 30.44) and the counts and
  sums, all 0 (the Telco sample has no events, as for the trained customers); features that
  need events (recency_days, nps_mean, ...) are undefined and left out.
- `--mode model_input`: the same customer as the model input row itself (standardized, in
  schema order), computed here from the active churn model's feature schema (GetModel's
  manifest_json) exactly as the engine's FeatureSchema::transform does.

The check (unless --no-check) sends the message with grpcio to the running server, prints the
answer, and for both modes compares the probability with the other mode's: they must agree
(the model_input path skips only the transform). Requires grpcio-tools (the bench venv has
it); the Vitals protos are compiled into $BENCH_DIR/vitals-pygen, never into the repository.
"""
import argparse
import csv
import json
import math
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(os.environ.get("BENCH_DIR", "/tmp/vitals-bench"), "vitals-pygen")


def compile_protos():
    from grpc_tools import protoc
    import grpc_tools

    os.makedirs(OUT, exist_ok=True)
    if not os.path.exists(os.path.join(OUT, "vitals", "v1", "evaluation_pb2_grpc.py")):
        inc = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
        src = os.path.join(ROOT, "proto")
        files = [os.path.join(src, "vitals", "v1", f) for f in sorted(os.listdir(os.path.join(src, "vitals", "v1"))) if f.endswith(".proto")]
        rc = protoc.main(["protoc", f"-I{src}", f"-I{inc}", f"--python_out={OUT}", f"--grpc_python_out={OUT}", *files])
        if rc != 0:
            sys.exit(f"protoc failed ({rc})")
    if OUT not in sys.path:
        sys.path.insert(0, OUT)


NUMBERS = {"tenure", "MonthlyCharges", "TotalCharges"}


def telco_record(path, row):
    with open(path, newline="") as f:
        for i, r in enumerate(csv.DictReader(f)):
            if i == row:
                return r
    sys.exit(f"{path} has no row {row}")


def attributes_of(rec):
    """The customer's attributes as the Telco importer stores them: name -> python value."""
    out = {}
    for name, cell in rec.items():
        if name in ("customerID", "Churn") or cell.strip() == "":
            continue
        if name == "SeniorCitizen":
            out[name] = cell.strip() == "1"
        elif name in NUMBERS:
            out[name] = float(cell)
        else:
            out[name] = cell
    return out


# The behavioural features a Telco customer has (no events: counts and sums are 0, and the
# features that need events, e.g. recency_days or nps_mean, are undefined and left out).
ZERO_FEATURES = ["frequency_30d", "frequency_90d", "frequency_365d", "frequency_total", "monetary_30d",
                 "monetary_90d", "monetary_365d", "monetary_total", "distinct_purchase_days", "spend_trend",
                 "detractor_answers", "feedback_count", "interactions_90d", "complaints_365d", "open_tickets",
                 "payments_due", "overdue_amount"]


def features_of(rec):
    out = {name: 0.0 for name in ZERO_FEATURES}
    out["tenure_days"] = float(rec["tenure"]) * 30.44
    return out


def transform(schema, features, attributes):
    """FeatureSchema::transform (engine/src/features.rs) in Python."""
    out = []
    matched = None  # (attribute, seen)
    for c in schema["columns"]:
        src = c["source"]
        if src == "category":
            a, value = c["attribute"], c.get("value")
            actual = attributes.get(a) if isinstance(attributes.get(a), str) else None
            seen = matched[1] if matched and matched[0] == a else False
            if value is not None:
                hit = actual == value
                matched = (a, seen or hit)
                v = 1.0 if hit else 0.0
            else:
                matched = None
                v = 0.0 if seen else 1.0
        elif src == "behaviour":
            x = features.get(c["feature"], math.nan)
            v = math.log1p(x) if c.get("log") and not math.isnan(x) else x
        elif src == "missing":
            v = 1.0 if math.isnan(features.get(c["feature"], math.nan)) else 0.0
        elif src in ("attribute", "attribute_log"):
            x = attributes.get(c["attribute"])
            x = float(x) if isinstance(x, (bool, int, float)) else math.nan
            v = math.log1p(x) if src == "attribute_log" and not math.isnan(x) else x
        else:
            sys.exit(f"unknown column source {src!r}")
        if not math.isfinite(v):
            v = c["mean"]
        out.append((v - c["mean"]) / c["std"])
    return out


def find_schema(manifest):
    """The feature schema inside a manifest (looked for by shape: a dict with `columns`)."""
    if isinstance(manifest, dict):
        cols = manifest.get("columns")
        if isinstance(cols, list) and cols and isinstance(cols[0], dict) and "source" in cols[0]:
            return manifest
        for v in manifest.values():
            s = find_schema(v)
            if s:
                return s
    elif isinstance(manifest, list):
        for v in manifest:
            s = find_schema(v)
            if s:
                return s
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--mode", choices=["features", "model_input"], default="features")
    ap.add_argument("--row", type=int, default=0)
    ap.add_argument("--csv", default=os.path.join(ROOT, "fixtures", "datasets", "telco_customer_churn.csv"))
    ap.add_argument("--addr", default="127.0.0.1:50051")
    ap.add_argument("--no-check", action="store_true")
    a = ap.parse_args()

    compile_protos()
    import grpc
    from vitals.v1 import customer_pb2, evaluation_pb2, evaluation_pb2_grpc, model_pb2, model_pb2_grpc

    rec = telco_record(a.csv, a.row)
    attrs, feats = attributes_of(rec), features_of(rec)

    def av(x):
        if isinstance(x, bool):
            return customer_pb2.AttributeValue(bool_value=x)
        if isinstance(x, float):
            return customer_pb2.AttributeValue(number_value=x)
        return customer_pb2.AttributeValue(string_value=x)

    by_features = evaluation_pb2.ScoreFeaturesRequest(features=feats, attributes={k: av(v) for k, v in attrs.items()})
    channel = grpc.insecure_channel(a.addr)
    by_input = None
    if a.mode == "model_input" or not a.no_check:
        m = model_pb2_grpc.ModelServiceStub(channel).GetModel(model_pb2.GetModelRequest(kind="churn", version=0), timeout=10)
        schema = find_schema(json.loads(m.manifest_json))
        if schema is None:
            sys.exit("no feature schema in the active churn model's manifest")
        by_input = evaluation_pb2.ScoreFeaturesRequest(model_input=transform(schema, feats, attrs))
        print(f"churn model version {m.version}: {len(schema['columns'])} model inputs")
    msg = by_features if a.mode == "features" else by_input
    wire = msg.SerializeToString(deterministic=True)
    body = b"\x00" + struct.pack(">I", len(wire)) + wire
    with open(a.out, "wb") as f:
        f.write(body)
    print(f"wrote {a.out}: {len(body)} bytes, {a.mode} of Telco customer {rec['customerID']} (row {a.row})")
    if a.no_check:
        return
    stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
    # Send exactly the bytes in the file (parsed back), then the other mode for comparison.
    sent = evaluation_pb2.ScoreFeaturesRequest.FromString(wire)
    r = stub.ScoreFeatures(sent, timeout=10)
    other = stub.ScoreFeatures(by_input if a.mode == "features" else by_features, timeout=10)
    print(f"{a.mode}: churn_probability={r.churn_probability:.9f} band={r.risk_band} version={r.model_version} "
          f"raising={[f.feature for f in r.raising]} lowering={[f.feature for f in r.lowering]}")
    print(f"other mode: churn_probability={other.churn_probability:.9f}")
    diff = abs(r.churn_probability - other.churn_probability)
    # model_input travels as f64 but the model scores f32: agreement to ~1e-6.
    print(f"modes differ by {diff:.3g}", "OK" if diff < 1e-5 else "MISMATCH")
    try:
        stub.ScoreFeatures(evaluation_pb2.ScoreFeaturesRequest(model_input=[1.0, 2.0]), timeout=10)
        print("bad request: unexpectedly OK")
    except grpc.RpcError as e:
        print("bad request ->", e.code().name)
    if diff >= 1e-5:
        sys.exit(1)


if __name__ == "__main__":
    main()
