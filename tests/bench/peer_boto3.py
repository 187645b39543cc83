"""The peer the benchmark compares with: the Kinesis destination a user would
write in Python with boto3. Same job as `destination-kinesis write`: Airbyte
messages on stdin, the Java connector's record envelope, one Kinesis stream per
Airbyte stream, PutRecords of up to 500 entries per stream, only failed entries
resent, and each STATE echoed once every record before it is accepted.

usage: peer_boto3.py ENDPOINT_URL [BATCH_SIZE]   (credentials from the environment)
"""

import json
import re
import sys
import uuid

import boto3
from botocore.config import Config


def kinesis_stream_name(namespace, stream):
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{namespace or ''}_{stream}")[:128]


def main():
    endpoint = sys.argv[1]
    batch_size = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    client = boto3.client(
        "kinesis",
        endpoint_url=endpoint,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 10, "mode": "standard"}),
    )
    buffers = {}  # Kinesis stream -> list of entries
    flushed = {}  # Kinesis stream -> batches delivered so far
    waiting = []  # (state line, {stream: batch number it waits for})
    out = sys.stdout

    def flush(stream):
        entries = buffers.get(stream)
        if not entries:
            return
        while entries:
            answer = client.put_records(StreamName=stream, Records=entries)
            if answer.get("FailedRecordCount", 0) == 0:
                break
            entries = [e for e, r in zip(entries, answer["Records"]) if "ErrorCode" in r]
        buffers[stream] = []
        flushed[stream] = flushed.get(stream, 0) + 1
        echo_ready()

    def echo_ready():
        while waiting and all(flushed.get(s, 0) > n for s, n in waiting[0][1].items()):
            out.write(waiting.pop(0)[0])
            out.write("\n")
        out.flush()

    for line in sys.stdin.buffer:
        message = json.loads(line)
        kind = message.get("type")
        if kind == "RECORD":
            record = message["record"]
            stream = kinesis_stream_name(record.get("namespace"), record["stream"])
            ab_id = str(uuid.uuid4())
            envelope = {
                "_airbyte_ab_id": ab_id,
                "_airbyte_emitted_at": record["emitted_at"],
                "_airbyte_data": json.dumps(record["data"]),
            }
            entries = buffers.setdefault(stream, [])
            entries.append({"Data": json.dumps(envelope).encode(), "PartitionKey": ab_id})
            if len(entries) >= batch_size:
                flush(stream)
        elif kind == "STATE":
            open_batches = {s: flushed.get(s, 0) for s, e in buffers.items() if e}
            waiting.append((json.dumps(message, separators=(",", ":")), open_batches))
            echo_ready()
    for stream in list(buffers):
        flush(stream)
    echo_ready()


if __name__ == "__main__":
    main()
