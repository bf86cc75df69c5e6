#!/bin/sh
# A hospital checks stock, then orders units (POSIX sh + curl).
# Usage: hospital-order.sh BLOOD_GROUP COMPONENT QUANTITY [URGENCY]
#   e.g. hospital-order.sh O_POS RED_CELLS 2 URGENT
# Prints the stock of that group and component at every site, then the new request, as JSON lines.
# REQUEST_KEY is the order's idempotency key (clientRequestToken; default a new UUID, printed to
# stderr): curl's retries resend the same key, and so does running the script again with
# REQUEST_KEY set, so a retry never orders twice (the same key with another order is CONFLICT).
set -eu
role=hospital
# shellcheck source=graphql.sh source-path=SCRIPTDIR
. "$(dirname "$0")/graphql.sh"
[ $# -ge 3 ] || { echo "usage: $0 BLOOD_GROUP COMPONENT QUANTITY [URGENCY]" >&2; exit 2; }
group=$1 component=$2 quantity=$3 urgency=${4:-ROUTINE}
only_word blood-group "$group"
only_word component "$component"
only_word urgency "$urgency"
case $quantity in '' | *[!0-9]*) echo "quantity: a whole number" >&2; exit 2 ;; esac
key=${REQUEST_KEY:-$(cat /proc/sys/kernel/random/uuid 2>/dev/null || od -An -N16 -tx1 /dev/urandom | tr -d ' \n')}
only_word REQUEST_KEY "$key"
echo "idempotency key: $key" >&2

# shellcheck disable=SC2016
stock='query($g: BloodGroup, $c: Component) { stockLevels(bloodGroup: $g, component: $c) { siteId available reserved status daysOfSupply } }'
graphql "{\"query\": \"$stock\", \"variables\": {\"g\": \"$group\", \"c\": \"$component\"}}"

# shellcheck disable=SC2016
order='mutation($i: CreateBloodRequestInput!) { createBloodRequest(input: $i) { id siteId status quantity outstanding neededBy } }'
graphql "{\"query\": \"$order\", \"variables\": {\"i\": {\"bloodGroup\": \"$group\", \"component\": \"$component\", \"quantity\": $quantity, \"urgency\": \"$urgency\", \"clientRequestToken\": \"$key\"}}}"
