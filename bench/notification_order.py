"""Does the store's insert mode keep positions in commit order? And what does each mode cost?

For each mode (the library's table-lock insert, and its stored-function insert that skips the
lock), 4 threads open cases as fast as they can while a follower tails the log the way the relay
and projections do ("everything after the last position I saw"). Reports saves/s and how many
events the follower would have skipped because their position committed after a higher one.

    .venv/bin/python bench/notification_order.py [--seconds 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import uuid

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from infra.database import store_env
from infra.ledger import ReliefLedger
from infra.schema import init_schema
from infra.settings import Settings
from projections.registry import ALL_PROJECTIONS
from tests.scenario import application


def run_mode(server_url: str, enable_db_functions: bool, seconds: float, writers: int) -> dict:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_conninfo(server_url, dbname=name)
    init_schema(url, ALL_PROJECTIONS)  # the store as deployed: with the audit chain trigger
    env = store_env(url, pool_size=writers + 2)
    env["POSTGRES_ENABLE_DB_FUNCTIONS"] = "y" if enable_db_functions else "n"
    ledger = ReliefLedger(env=env)
    stop = threading.Event()
    writers_done = threading.Event()
    saved = [0] * writers
    seen: set[int] = set()

    def write(i: int) -> None:
        while not stop.is_set():
            application(ledger)
            saved[i] += 1

    def follow() -> None:
        last = 0
        with psycopg.connect(url, autocommit=True) as conn:
            while True:
                done = writers_done.is_set()  # read before the query: a final full pass
                rows = conn.execute(
                    "SELECT notification_id FROM relief_events WHERE notification_id > %s"
                    " ORDER BY notification_id LIMIT 500",
                    (last,),
                ).fetchall()
                for (nid,) in rows:
                    seen.add(nid)
                if rows:
                    last = rows[-1][0]
                elif done:
                    break

    threads = [threading.Thread(target=write, args=(i,)) for i in range(writers)]
    follower = threading.Thread(target=follow)
    started = time.perf_counter()
    for t in [*threads, follower]:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    writers_done.set()
    follower.join()
    with psycopg.connect(url) as conn:
        all_ids = {r[0] for r in conn.execute("SELECT notification_id FROM relief_events")}
    skipped = all_ids - seen
    ledger.close()
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
    return {
        "mode": "stored function (no table lock)" if enable_db_functions else "table lock",
        "saves_per_s": round(sum(saved) / elapsed, 1),
        "events": len(all_ids),
        "skipped_by_follower": len(skipped),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    server = args.database_url
    if server is None:
        from infra.embedded_postgres import start_embedded_postgres

        server = start_embedded_postgres(Settings().data_dir.parent / "relief-bench")
    for mode in (False, True):
        print(json.dumps(run_mode(server, mode, args.seconds, args.writers)))


if __name__ == "__main__":
    main()
