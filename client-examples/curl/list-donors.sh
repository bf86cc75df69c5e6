#!/usr/bin/env bash
# The first page of donors of a site, as staff. Usage: list-donors.sh [site-id]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
api=${BLOODBANK_API:-http://127.0.0.1:8000/graphql}
token=${TOKEN:-$("$here/.venv/bin/bloodbank" token --as staff)}
site=${1:-site-north}
query='query($site: ID!) { listDonors(filter: {siteId: {eq: $site}}, limit: 5) { items { id lastName bloodGroup } nextToken } }'
body=$(printf '{"query": %s, "variables": {"site": "%s"}}' "$(printf '%s' "$query" | python3 -c 'import json,sys; print(json.dumps(sys.stdin.read()))')" "$site")
curl --silent --show-error --fail-with-body "$api" \
  -H "Authorization: $token" \
  -H 'content-type: application/json' \
  --data "$body"
echo
