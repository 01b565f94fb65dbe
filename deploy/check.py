#!/usr/bin/env python3
"""Renders and validates the Helm chart as CI does: helm-python-sdk (Helm's own Go code,
no helm binary) lints it strictly and renders it with the default values and with every
option on; kubernetes-validate --strict checks each rendered manifest against the
Kubernetes API schemas (the ServiceMonitor, a prometheus-operator CRD it has no schema
for, is checked for its required fields here instead); yamllint checks the values file and
the rendered output.

    pip install helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 yamllint==1.38.0
    python3 deploy/check.py
"""

import os
import subprocess
import sys
import tempfile

import helm_python as helm
import yaml

CHART = os.path.join(os.path.dirname(os.path.abspath(__file__)), "helm", "vitals")
VARIANTS = {
    "defaults": {},
    "everything on": {"serviceMonitor": {"enabled": True}, "autoscaling": {"enabled": False},
                      "image": {"tag": "1.2.3"}, "replicaCount": 5},
    "nothing optional": {"migrations": {"enabled": False}, "trainer": {"enabled": False}},
}
EXPECTED = {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Job", "CronJob"}


def fail(message):
    print(f"FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    report = helm.lint(CHART, strict=True)
    problems = [m for m in report.get("messages", []) if m.get("severity", 0) >= 2] + report.get("errors", [])
    if problems:
        fail(f"helm lint: {problems}")
    print(f"helm lint --strict: {report.get('total_charts_linted')} chart, no warnings")
    with tempfile.TemporaryDirectory() as out:
        for name, values in VARIANTS.items():
            chart = helm.Chart.load(CHART)
            rendered = chart.render(values, name="vitals", namespace="vitals", is_install=True)
            docs = []
            for path, text in sorted(rendered.items()):
                for doc in yaml.safe_load_all(text):
                    if doc:
                        docs.append((path, doc))
            kinds = {d["kind"] for _, d in docs}
            if name == "defaults" and not EXPECTED <= kinds:
                fail(f"{name}: missing {EXPECTED - kinds}")
            files = []
            for i, (path, doc) in enumerate(docs):
                if doc["kind"] == "ServiceMonitor":
                    spec = doc.get("spec", {})
                    if not spec.get("selector") or not spec.get("endpoints"):
                        fail(f"{name}: ServiceMonitor without selector or endpoints")
                    continue
                f = os.path.join(out, f"{name.replace(' ', '-')}-{i}.yaml")
                with open(f, "w") as handle:
                    yaml.safe_dump(doc, handle, sort_keys=False)
                files.append(f)
            subprocess.run(["kubernetes-validate", "--strict", "--quiet", *files], check=True)
            subprocess.run(["yamllint", "-d", "{extends: relaxed, rules: {line-length: disable}}", *files], check=True)
            deployment = next(d for _, d in docs if d["kind"] == "Deployment")
            container = deployment["spec"]["template"]["spec"]["containers"][0]
            if container["securityContext"].get("runAsNonRoot") is not True:
                fail(f"{name}: the server may run as root")
            if "grpc" not in container["livenessProbe"] or "grpc" not in container["readinessProbe"]:
                fail(f"{name}: probes are not gRPC health probes")
            print(f"{name}: {len(docs)} manifests ({', '.join(sorted(kinds))}) valid")
    subprocess.run(["yamllint", "-d", "{extends: relaxed, rules: {line-length: disable}}", os.path.join(CHART, "values.yaml"), os.path.join(CHART, "Chart.yaml")],
                   check=True)


if __name__ == "__main__":
    main()
