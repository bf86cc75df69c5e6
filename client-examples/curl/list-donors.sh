#!/bin/sh
# The first page of donors of a site, as staff (POSIX sh + curl). Usage: list-donors.sh [site-id]
set -eu
role=staff
# shellcheck source=graphql.sh source-path=SCRIPTDIR
. "$(dirname "$0")/graphql.sh"
site=${1:-site-north}
only_word site "$site"
# shellcheck disable=SC2016 # GraphQL variables, not shell ones
query='query($site: ID!) { listDonors(filter: {siteId: {eq: $site}}, limit: 5) { items { id lastName bloodGroup } nextToken } }'
graphql "{\"query\": \"$query\", \"variables\": {\"site\": \"$site\"}}"
