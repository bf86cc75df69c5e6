"""Lambda entry points.

``http_handler``: the GraphQL API behind API Gateway (HTTP API v2 or REST v1 events), through Mangum.
Settings come from the environment (see ``bloodbank.settings``); the app is built once per container.
"""

from __future__ import annotations

from mangum import Mangum

from bloodbank.bootstrap import build_container
from bloodbank.server import create_app
from bloodbank.settings import Settings

app = create_app(build_container(Settings.from_env()))
http_handler = Mangum(app, lifespan="off", api_gateway_base_path="/")
