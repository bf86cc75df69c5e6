# shellcheck shell=sh
# Sourced by the curl examples (POSIX sh + curl; no jq, no python): settings and one function.
#
#   BLOODBANK_API  the GraphQL endpoint (default http://127.0.0.1:8000/graphql; on AWS the GraphQLUrl output)
#   TOKEN          a Cognito access token (default: the local stack's demo user of $role)
#   CURL_CA        a CA file to trust (for `bloodbank serve --tls`: .local/tls-cert.pem)

here=$(cd "$(dirname "$0")/../.." && pwd)
api=${BLOODBANK_API:-http://127.0.0.1:8000/graphql}
token=${TOKEN:-$("$here/.venv/bin/bloodbank" token --as "$role")}

# graphql BODY: POST one JSON request body; print the JSON answer. Exit 1 with the error's
# extensions.code when the API answers with errors, 3 for UNAUTHENTICATED. The token goes to curl on
# stdin (-H @-), not on its command line, so it never shows in `ps`. Network errors, HTTP 429 and 5xx
# are retried (honouring Retry-After): safe for queries, and for mutations that carry a
# clientRequestToken.
graphql() {
  answer=$(printf 'Authorization: %s\n' "$token" | curl --silent --show-error \
    --connect-timeout 5 --max-time 20 --retry 4 --retry-all-errors --retry-max-time 60 \
    ${CURL_CA:+--cacert "$CURL_CA"} \
    -H @- -H 'content-type: application/json' --data "$1" "$api") || return 5
  printf '%s\n' "$answer"
  case $answer in
    *'"errors":'*)
      code=$(printf '%s' "$answer" | sed -n 's/.*"code": *"\([A-Z_]*\)".*/\1/p')
      echo "error: ${code:-unknown}" >&2
      [ "$code" = UNAUTHENTICATED ] && return 3
      return 1 ;;
  esac
}

# only_word NAME VALUE: refuse anything but letters, digits, '-' and '_' (values go into JSON as is).
only_word() {
  case $2 in
    '' | *[!A-Za-z0-9_-]*) echo "$1: letters, digits, '-' and '_' only" >&2; exit 2 ;;
  esac
}
