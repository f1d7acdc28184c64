"""A stand-in of the earlier, in-memory risk service, for target 2 of `bench_check_endpoint`: a Flask app whose
`POST /api/risk/check-position` takes `{account_id, position_size}`, checks it against a process-local dict of
balances and exposures under a lock and answers JSON. No authentication, no persistence, no logging.

Served by the benchmark under gunicorn gthread, 2 workers x 4 threads:
`gunicorn tests.bench.flask_standin:app --worker-class gthread --workers 2 --threads 4`.
"""

import threading

from flask import Flask, jsonify, request

app = Flask(__name__)

STARTING_BALANCE = 10_000_000.0
MAX_POSITION_PCT = 0.10
MAX_EXPOSURE_PCT = 0.50

_lock = threading.Lock()
_balances: dict[int, float] = {}
_exposures: dict[int, float] = {}


@app.post("/api/risk/check-position")
def check_position():
    body = request.get_json(silent=True) or {}
    try:
        account_id = int(body["account_id"])
        size = float(body["position_size"])
    except (KeyError, TypeError, ValueError):
        return jsonify({"error": "account_id and position_size are required"}), 400
    with _lock:
        balance = _balances.setdefault(account_id, STARTING_BALANCE)
        exposure = _exposures.setdefault(account_id, 0.0)
        if size <= 0 or size > balance * MAX_POSITION_PCT:
            decision, reason = "rejected", "position size out of bounds"
        elif exposure + size > balance * MAX_EXPOSURE_PCT:
            decision, reason = "rejected", "exposure limit"
        else:
            decision, reason = "approved", None
    return jsonify(
        {
            "decision": decision,
            "allowed": decision == "approved",
            "reason": reason,
            "balance": balance,
            "exposure": exposure,
        }
    )
