#!/usr/bin/env python3
"""Dollars per million messages on AWS, from the work one message causes (BENCHMARKS.md "Work per
message (issue 21)"), next to what hosted chat services charge for the same traffic.

`python3 infra/bench/cost_model.py` prints the markdown tables of BENCHMARKS.md. The work figures below
are the measured ones (`cargo bench -p parley-tests --bench realtime`, the functions' own metric lines;
transactions billed as AWS bills them, see `store::usage`); change them here when they are measured
again. Durations are the warm handler times the local stack measured for the function (an upper bound
for Lambda, which does not share two cores with DynamoDB Local and a thousand clients).
"""

# AWS list prices, us-east-1, as issue 21 gives them (December 2026).
PRICES = {
    "http_request": 1.00 / 1e6,  # HTTP API, per request
    "ws_message": 1.00 / 1e6,  # WebSocket API, per message (per 32 KB)
    "ws_connection_minute": 0.25 / 1e6,
    "lambda_request": 0.20 / 1e6,
    "lambda_gb_second": 0.0000133334,  # arm64
    "wru": 0.625 / 1e6,  # DynamoDB on-demand write request unit
    "rru": 0.125 / 1e6,  # DynamoDB on-demand read request unit
    "sqs_fifo_request": 0.50 / 1e6,  # per 64 KB chunk
}

# Per message, by conversation size: measured work (see the module docstring).
#   members: members connected (every one receives the message.new, the sender's socket included)
#   send_*: the request path (messages-send), *_async: the workers, amortised over their batches
WORK = {
    "direct (2)": {
        "members": 2,
        "send_ms": 30, "send_mb": 256, "send_wcu": 5.0, "send_rcu": 2.1,
        "delivery_invocations": 1.0, "delivery_ms": 20, "delivery_mb": 512, "delivery_rcu": 1.0,
        "worker_invocations": 0.23, "worker_ms": 30, "worker_mb": 512, "worker_wcu": 3.6, "worker_rcu": 0.4,
        "index_invocations": 0.2, "index_ms": 20, "index_mb": 512, "index_wcu": 1.0,
        "sqs_requests": 1 + 2 * 1.0,  # SendMessageBatch, then the mapping's receive and delete per batch
    },
    "10-member group": {
        "members": 10,
        "send_ms": 30, "send_mb": 256, "send_wcu": 5.0, "send_rcu": 2.1,
        "delivery_invocations": 1.0, "delivery_ms": 20, "delivery_mb": 512, "delivery_rcu": 5.0,
        # the sender's read marker and list key, lastMessage; the other members' list keys once per
        # listing window (10 s by default): 3 WCU each, amortised here over one message a window
        "worker_invocations": 0.23, "worker_ms": 30, "worker_mb": 512, "worker_wcu": 3.6 + 3 * 9, "worker_rcu": 0.7,
        "index_invocations": 0.2, "index_ms": 20, "index_mb": 512, "index_wcu": 1.0,
        "sqs_requests": 1 + 2 * 1.0,
    },
    "1,000-member group": {
        "members": 1000,
        "send_ms": 30, "send_mb": 256, "send_wcu": 5.0, "send_rcu": 2.2,
        "delivery_invocations": 2.0, "delivery_ms": 300, "delivery_mb": 512, "delivery_rcu": 662,
        # as above: 3,000 WCU per listing window; one message a second over a 10 s window
        "worker_invocations": 0.1, "worker_ms": 200, "worker_mb": 512, "worker_wcu": 3.6 + 3000 / 10, "worker_rcu": 2.5,
        "index_invocations": 0.37, "index_ms": 20, "index_mb": 512, "index_wcu": 1.0,
        "sqs_requests": 1 + 2 * 2.0,
    },
}

# Hosted services, for the same traffic. Ably: USD 2.50 per million messages, a message counted once
# when published and once per delivery. Pusher Channels: plan-priced, every delivery counted; the
# figure is the Pro plan (USD 99 a month for 4 million messages a day) used to the full. Stream Chat:
# priced per monthly active user, not per message; the figure assumes its USD 499 a month plan for
# 10,000 MAU with each user sending 100 messages a month (1 million messages).
ABLY_PER_MESSAGE = 2.50 / 1e6
PUSHER_PER_MESSAGE = 99 / (4e6 * 30)
STREAM_PER_MILLION_SENT = 499.0


def lambda_cost(invocations, ms, mb):
    return invocations * (PRICES["lambda_request"] + PRICES["lambda_gb_second"] * (mb / 1024) * (ms / 1000))


def per_million(work):
    p = PRICES
    members = work["members"]
    parts = {
        "API Gateway": p["http_request"] + members * p["ws_message"],
        "Lambda": lambda_cost(1, work["send_ms"], work["send_mb"])
        + lambda_cost(work["delivery_invocations"], work["delivery_ms"], work["delivery_mb"])
        + lambda_cost(work["worker_invocations"], work["worker_ms"], work["worker_mb"])
        + lambda_cost(work["index_invocations"], work["index_ms"], work["index_mb"]),
        "DynamoDB": p["wru"] * (work["send_wcu"] + work["worker_wcu"] + work["index_wcu"])
        + p["rru"] * (work["send_rcu"] + work["delivery_rcu"] + work["worker_rcu"]),
        "SQS": p["sqs_fifo_request"] * work["sqs_requests"],
    }
    return {name: cost * 1e6 for name, cost in parts.items()}


def main():
    print("| message | API Gateway | Lambda | DynamoDB | SQS | AWS in all | Ably | Pusher | Stream |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, work in WORK.items():
        parts = per_million(work)
        total = sum(parts.values())
        deliveries = work["members"]
        ably = ABLY_PER_MESSAGE * (1 + deliveries) * 1e6
        pusher = PUSHER_PER_MESSAGE * deliveries * 1e6
        print(
            f"| {kind} | {parts['API Gateway']:.2f} | {parts['Lambda']:.2f} | {parts['DynamoDB']:.2f} "
            f"| {parts['SQS']:.2f} | **{total:.2f}** | {ably:.2f} | {pusher:.2f} | {STREAM_PER_MILLION_SENT:.0f} |"
        )
    minutes = 30 * 24 * 60
    print(
        f"\nConnections: USD {PRICES['ws_connection_minute'] * minutes:.4f} per user connected all month "
        f"({minutes} connection-minutes), whatever is sent."
    )


if __name__ == "__main__":
    main()
