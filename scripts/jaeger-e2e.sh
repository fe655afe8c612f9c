#!/usr/bin/env bash
# jaeger-e2e.sh — the real-Jaeger check of orderly's tracing.
#
# Starts Jaeger with ../shared/tools/jaeger.sh (the first build takes ~6 minutes), runs the orders
# demo exporting OTLP/HTTP to it, then checks through Jaeger's HTTP API that:
#   1. the demo's service is listed            (/api/services)
#   2. some trace holds a PRODUCER span and a CONSUMER "process <topic>" span that is its child
#                                              (/api/traces?service=...)
#   3. that process span has the messaging attributes
#                                              (/api/v3/traces/<id>, OTLP JSON)
#   4. retry spans ("retry <topic>") and a dead-letter PRODUCER span ("send <topic>.dlq") are there,
#      (the default demo run forces them with -flaky and -poison; REQUIRE_FAILURES=0 only reports).
#
# Not part of `go test ./...`. Run from anywhere in the repository:
#   scripts/jaeger-e2e.sh
# Environment:
#   DEMO_ARGS         flags for go run ./examples/orders (default: a small, quiet run)
#   DEMO_CMD          the whole command to run instead (any program exporting with otlpsetup.FromEnv)
#   REQUIRE_FAILURES  1: fail unless retry and dead-letter spans were found (default 1)
#   KEEP_JAEGER       1: leave Jaeger running afterwards (default: stop it if this script started it)
set -euo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
JAEGER=$ROOT/../shared/tools/jaeger.sh
QUERY=http://127.0.0.1:16686
SERVICE=orderly-e2e-$(date +%s)-$$
DEMO_ARGS=${DEMO_ARGS:--records 2000 -keys 50 -partitions 4 -flaky 0.05 -poison 0.02 -quiet}
DEMO_CMD=${DEMO_CMD:-go run ./examples/orders $DEMO_ARGS}
REQUIRE_FAILURES=${REQUIRE_FAILURES:-1}
WORK=$(mktemp -d)

started=0
if ! "$JAEGER" status >/dev/null 2>&1; then started=1; fi
cleanup() {
  rm -rf "$WORK"
  if [ "$started" = 1 ] && [ "${KEEP_JAEGER:-0}" != 1 ]; then "$JAEGER" stop >/dev/null || true; fi
}
trap cleanup EXIT
"$JAEGER" start

echo "== running the orders demo as service $SERVICE"
cd "$ROOT"
# Jaeger takes traces only: metrics export is turned off so that the SDK does not log 404s.
# shellcheck disable=SC2086 # DEMO_CMD is a command line
OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
OTEL_SERVICE_NAME=$SERVICE \
OTEL_METRICS_EXPORTER=none \
OTEL_TRACES_SAMPLER=always_on \
OTEL_BSP_SCHEDULE_DELAY=200 \
  $DEMO_CMD

echo "== waiting for $SERVICE in $QUERY/api/services"
found=0
for _ in $(seq 1 60); do
  if curl -sf "$QUERY/api/services" | python3 -c 'import json,sys; sys.exit(0 if sys.argv[1] in (json.load(sys.stdin).get("data") or []) else 1)' "$SERVICE"; then
    found=1; break
  fi
  sleep 0.5
done
if [ "$found" != 1 ]; then
  echo "FAIL: service $SERVICE never reached Jaeger: does examples/orders call otlpsetup.FromEnv and use tracing.New hooks?" >&2
  exit 1
fi

# Traces arrive in batches: poll until one has a producer span and its process child.
echo "== looking for a producer → process trace"
for _ in $(seq 1 40); do
  curl -sf "$QUERY/api/traces?service=$SERVICE&limit=1000&lookback=1h" >"$WORK/traces.json"
  if python3 - "$WORK/traces.json" >"$WORK/summary" <<'PY'
import json, sys
traces = json.load(open(sys.argv[1])).get("data") or []
def kind(s):
    return next((t["value"] for t in s.get("tags", []) if t["key"] == "span.kind"), "")
linked, retries, dlq, failed_ids = None, 0, 0, []
for tr in traces:
    spans = {s["spanID"]: s for s in tr["spans"]}
    for s in tr["spans"]:
        name = s["operationName"]
        if name.startswith("retry "):
            retries += 1
            failed_ids.append(tr["traceID"])
        if name.startswith("send ") and name.endswith(".dlq") and kind(s) == "producer":
            dlq += 1
            failed_ids.append(tr["traceID"])
        if linked is None and name.startswith("process ") and kind(s) == "consumer":
            for ref in s.get("references", []):
                p = spans.get(ref.get("spanID"))
                if ref.get("refType") == "CHILD_OF" and p is not None and kind(p) == "producer":
                    linked = (tr["traceID"], s["spanID"])
print(len(traces), linked[0] if linked else "-", linked[1] if linked else "-", retries, dlq,
      failed_ids[0] if failed_ids else "-")
sys.exit(0 if linked else 1)
PY
  then break; fi
  sleep 0.5
done
read -r ntraces trace_id span_id retries dlq failed_trace <"$WORK/summary" || true
echo "traces: $ntraces, retry spans: $retries, dead-letter spans: $dlq"
if [ -z "${trace_id:-}" ] || [ "$trace_id" = - ]; then
  echo "FAIL: no trace with a producer span and a consumer 'process' span as its child" >&2
  exit 1
fi
echo "ok: trace $trace_id runs from a producer span to process span $span_id"

echo "== checking attributes through $QUERY/api/v3/traces/$trace_id"
curl -sf "$QUERY/api/v3/traces/$trace_id" >"$WORK/v3.json"
python3 - "$WORK/v3.json" "$span_id" <<'PY'
import base64, json, sys
doc, want = json.load(open(sys.argv[1])), sys.argv[2]
def resource_spans(d):
    if isinstance(d, dict):
        if "resourceSpans" in d:
            yield from d["resourceSpans"]
        for v in d.values():
            yield from resource_spans(v)
    elif isinstance(d, list):
        for v in d:
            yield from resource_spans(v)
def span_id(s):
    sid = s.get("spanId", "")
    if len(sid) == 16:
        return sid.lower()
    return base64.b64decode(sid).hex()  # OTLP JSON by protobuf rules: base64
span = None
for rs in resource_spans(doc):
    for ss in rs.get("scopeSpans", []):
        for s in ss.get("spans", []):
            if span_id(s) == want.lower():
                span = s
if span is None:
    sys.exit("FAIL: process span %s not in /api/v3/traces" % want)
attrs = {}
for a in span.get("attributes", []):
    v = a["value"]
    attrs[a["key"]] = next(iter(v.values())) if v else None
need = {"messaging.system": "kafka", "messaging.operation.type": "process"}
for k, v in need.items():
    if attrs.get(k) != v:
        sys.exit("FAIL: %s = %r, want %r" % (k, attrs.get(k), v))
for k in ["messaging.destination.name", "messaging.destination.partition.id", "messaging.kafka.offset"]:
    if k not in attrs:
        sys.exit("FAIL: attribute %s missing; have %s" % (k, sorted(attrs)))
for k in ["messaging.kafka.message.key", "messaging.consumer.group.name"]:
    if k not in attrs:
        print("note: %s not set (no UTF-8 key, or the source does not name its group)" % k)
print("ok: process span attributes:", ", ".join("%s=%s" % (k, attrs[k]) for k in sorted(attrs) if k.startswith("messaging.")))
PY

if [ "$retries" -gt 0 ] && [ "$dlq" -gt 0 ]; then
  echo "ok: retry and dead-letter spans arrived (e.g. trace $failed_trace)"
elif [ "$REQUIRE_FAILURES" = 1 ]; then
  echo "FAIL: REQUIRE_FAILURES=1 but retry spans: $retries, dead-letter spans: $dlq" >&2
  exit 1
else
  echo "note: the demo forced no failures (retry spans: $retries, dead-letter spans: $dlq); set DEMO_ARGS and REQUIRE_FAILURES=1 when it can"
fi
echo "PASS"
