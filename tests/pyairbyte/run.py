"""One PyAirbyte sync into destination-kinesis, as a new user would write it,
then the Kinesis streams read back with the binary's `read`.

    python run.py SCENARIO

SCENARIO is `defaults` (`destination.write(source)`: PyAirbyte's DuckDB cache
and its AUTO write strategy, which asks for `append_dedup` on streams with a
primary key) or `replace` (`write_strategy="replace"`: `overwrite`). Each
scenario writes to its own Kinesis streams (`<scenario>-<stream>`) and should
run in its own AIRBYTE_PROJECT_DIR, so that no cache or state is shared.

`make pyairbyte` installs PyAirbyte and source-faker (in two virtualenvs:
their airbyte-cdk pins conflict), starts kinesis-local and sets:
  KINESIS_ENDPOINT  the emulator's URL
  DEST_BIN          the destination-kinesis binary
  SOURCE_FAKER      the source-faker executable of its own virtualenv
  FAKER_COUNT       records per faker stream (default 10)

Prints `<scenario>: OK ...` and exits 0 when the write succeeded and every
stream holds exactly the records the source sent; otherwise says what
differs and exits 1.
"""

import json
import os
import subprocess
import sys
import tempfile

import airbyte as ab

STREAMS = ("products", "users", "purchases")
SCENARIOS = {
    "defaults": {},
    "replace": {"write_strategy": "replace"},
}


def fail(message):
    print(f"FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def read_back(dest_bin, config_path, stream):
    """The record ids in a Kinesis stream, read with `destination-kinesis read`."""
    out = subprocess.run(
        [dest_bin, "read", "--config", config_path, "--stream", stream],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        fail(f"read --stream {stream} exited {out.returncode}: {out.stderr.strip()}")
    ids = []
    for line in out.stdout.splitlines():
        envelope = json.loads(line)
        # The legacy envelope (the default recordFormat): the data as JSON text.
        ids.append(json.loads(envelope["_airbyte_data"])["id"])
    return ids


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        fail(f"usage: run.py {'|'.join(SCENARIOS)}")
    scenario = sys.argv[1]
    dest_bin = os.environ["DEST_BIN"]
    count = int(os.environ.get("FAKER_COUNT", "10"))
    config = {
        "endpoint": os.environ["KINESIS_ENDPOINT"],
        "region": "us-east-1",
        "accessKey": "test",
        "privateKey": "test",
        "shardCount": 1,
        "streamName": scenario + "-{stream}",
    }

    source = ab.get_source(
        "source-faker",
        config={"count": count},
        local_executable=os.environ["SOURCE_FAKER"],
    )
    source.select_all_streams()
    destination = ab.get_destination(
        "destination-kinesis", config=config, local_executable=dest_bin
    )
    try:
        result = destination.write(source, **SCENARIOS[scenario])
    except Exception as e:  # PyAirbyte's errors carry the connector's log
        fail(f"destination.write(source) with {SCENARIOS[scenario] or 'defaults'} raised {type(e).__name__}: {e}")

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    try:
        for stream in STREAMS:
            ids = sorted(read_back(dest_bin, f.name, f"{scenario}-{stream}"))
            if ids != list(range(1, count + 1)):
                fail(f"Kinesis stream {scenario}-{stream} holds ids {ids}, expected 1 to {count}")
    finally:
        os.unlink(f.name)
    print(
        f"{scenario}: OK ({type(result).__name__}); {len(STREAMS)} streams of {count} records read back"
    )


if __name__ == "__main__":
    main()
