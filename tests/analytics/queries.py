"""What an on-call engineer asks of tlsdiag's NDJSON, in DuckDB (tests/analytics.rs runs this).

Usage: queries.py SESSIONS.ndjson FLOWS.tsv
  SESSIONS.ndjson  tlsdiag analyze --format ndjson output (one or more runs concatenated)
  FLOWS.tsv        another tool's connection records: "community_id<TAB>stream" lines (tshark's)
Prints one JSON object with each query's rows.
"""
import json
import sys

import duckdb

ndjson, flows = sys.argv[1], sys.argv[2]
db = duckdb.connect()
# The lines as Elasticsearch would index them: nested objects, the ECS names as columns.
db.execute(
    "CREATE TABLE lines AS SELECT * FROM read_json_auto(?, format='newline_delimited', "
    "union_by_name=true, maximum_object_size=16777216)",
    [ndjson],
)
db.execute(
    "CREATE TABLE flows AS SELECT * FROM read_csv(?, delim='\t', header=false, "
    "columns={'community_id': 'VARCHAR', 'stream': 'VARCHAR'})",
    [flows],
)
out = {}
# Failures per reason per minute (the dashboard's first panel).
out["per_minute"] = db.execute(
    """
    SELECT strftime(date_trunc('minute', CAST("@timestamp" AS TIMESTAMP)), '%Y-%m-%dT%H:%M') AS minute,
           event.reason AS reason, count(*) AS n
    FROM lines
    WHERE tlsdiag.record = 'session' AND event.outcome = 'failure'
    GROUP BY ALL ORDER BY minute, reason
    """
).fetchall()
# Top failing servers.
out["top_servers"] = db.execute(
    """
    SELECT server.ip || ':' || CAST(server.port AS VARCHAR) AS server, count(*) AS failures,
           string_agg(DISTINCT event.reason, ',' ORDER BY event.reason) AS reasons
    FROM lines
    WHERE tlsdiag.record = 'session' AND event.outcome = 'failure'
    GROUP BY ALL ORDER BY failures DESC, server LIMIT 5
    """
).fetchall()
# The join with another tool's records of the same connections.
out["joined"] = db.execute(
    """
    SELECT count(DISTINCT l.network.community_id)
    FROM lines l JOIN flows f ON l.network.community_id = f.community_id
    WHERE l.tlsdiag.record = 'session'
    """
).fetchone()[0]
# Established sessions (lean lines) by version, cipher and SNI, with the leaf's earliest expiry.
out["established"] = db.execute(
    """
    SELECT tls.version, tls.cipher, tls.client.server_name, count(*) AS n,
           strftime(min(CAST(tls.server.x509.not_after AS TIMESTAMP)), '%Y-%m-%dT%H:%M:%SZ') AS not_after
    FROM lines
    WHERE tlsdiag.record = 'session' AND event.outcome = 'success'
    GROUP BY ALL ORDER BY ALL
    """
).fetchall()
out["sessions"] = db.execute(
    "SELECT count(*), count(DISTINCT network.community_id) FROM lines WHERE tlsdiag.record = 'session'"
).fetchone()
json.dump(out, sys.stdout)
