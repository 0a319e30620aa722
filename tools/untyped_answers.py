"""List the operations whose success (2xx) answer is untyped: no JSON schema, ``{}`` or an
object without properties (api/openapi_docs.py ``untyped_answers``; its ``UNTYPED`` allow-list
excepted). Builds the OpenAPI from the routers alone, without a database:

    .venv/bin/python tools/untyped_answers.py
"""

from __future__ import annotations

from fastapi import FastAPI

from api import openapi_docs, problems
from api.app import ROUTERS


def main() -> None:
    app = FastAPI()
    for router in ROUTERS:
        app.include_router(router, responses=problems.documented_errors())
    schema = app.openapi()
    openapi_docs.document([r for router in ROUTERS for r in router.routes], schema)
    found = openapi_docs.untyped_answers(schema)
    for line in found:
        print(line)
    raise SystemExit(1 if found else 0)


if __name__ == "__main__":
    main()
