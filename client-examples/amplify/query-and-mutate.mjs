// Amplify JS v6 in Node: a query and a mutation through generateClient(), as a hospital.
//
//   TOKEN=$(.venv/bin/bloodbank token --as hospital) node client-examples/amplify/query-and-mutate.mjs
//
// Prints one JSON line with the stock board of SITE (default site-north) for COMPONENT (default
// RED_CELLS), then orders QUANTITY (default 1) units of BLOOD_GROUP (default O_POS) with
// createBloodRequest and prints the new request as a second JSON line. An error is printed to stderr
// as {"code": extensions.code, "message": ...} (exit 1), e.g. QUANTITY=99 gives BAD_USER_INPUT.
// REQUEST_KEY (default: a new UUID) is the order's idempotency key (clientRequestToken): sending the
// same key again returns the same request instead of ordering twice.
//
// BLOODBANK_API (default http://127.0.0.1:8000/graphql; https works too, with NODE_EXTRA_CA_CERTS for
// `serve --tls`) is the GraphQL endpoint; against AWS, the stack's GraphQLUrl output.
import { randomUUID } from 'node:crypto';
import { Amplify } from 'aws-amplify';
import { generateClient } from 'aws-amplify/api';

const endpoint = process.env.BLOODBANK_API ?? 'http://127.0.0.1:8000/graphql';
const token = process.env.TOKEN;
if (!token) {
  console.error('Set TOKEN to a Cognito access token: TOKEN=$(.venv/bin/bloodbank token --as hospital)');
  process.exit(2);
}

// 'lambda' is Amplify's mode for "send this token as the Authorization header", which is what the
// API checks (a Cognito access token). With Amplify Auth signed in, use 'userPool' instead.
Amplify.configure({
  API: { GraphQL: { endpoint, region: 'us-east-1', defaultAuthMode: 'lambda' } },
});
const client = generateClient();

const stockLevels = /* GraphQL */ `
  query Stock($site: ID, $component: Component) {
    stockLevels(siteId: $site, component: $component) {
      siteId bloodGroup component available reserved threshold daysOfSupply status
    }
  }`;

const createBloodRequest = /* GraphQL */ `
  mutation Order($input: CreateBloodRequestInput!) {
    createBloodRequest(input: $input) {
      id hospitalId siteId bloodGroup component quantity urgency neededBy status allocated outstanding
    }
  }`;

// Amplify rejects with the GraphQL result ({data, errors}) when the API answers with errors; when it
// gets no answer at all, the one error has no extensions and its originalError is a NetworkError.
function codeOf(e) {
  if (e.extensions?.code) return e.extensions.code;
  return e.originalError?.name === 'NetworkError' ? 'NETWORK_ERROR' : 'INTERNAL_SERVER_ERROR';
}
function report(error) {
  for (const e of error?.errors ?? [{ message: String(error?.message ?? error) }]) {
    console.error(JSON.stringify({ code: codeOf(e), message: e.message }));
  }
  process.exit(1);
}

const component = process.env.COMPONENT ?? 'RED_CELLS';
try {
  const stock = await client.graphql({
    query: stockLevels,
    variables: { site: process.env.SITE ?? 'site-north', component },
    authToken: token,
  });
  console.log(JSON.stringify(stock.data.stockLevels));

  const ordered = await client.graphql({
    query: createBloodRequest,
    variables: {
      input: {
        bloodGroup: process.env.BLOOD_GROUP ?? 'O_POS',
        component,
        quantity: Number(process.env.QUANTITY ?? 1),
        urgency: process.env.URGENCY ?? 'ROUTINE',
        clientRequestToken: process.env.REQUEST_KEY ?? randomUUID(),
      },
    },
    authToken: token,
  });
  console.log(JSON.stringify(ordered.data.createBloodRequest));
} catch (error) {
  report(error);
}
