// Amplify JS v6 in Node: subscribe to shortage alerts through AppSync's real-time protocol, which
// `bloodbank serve --tls` serves on /graphql/realtime (and the WebSocket API serves on AWS).
//
//   TOKEN=$(.venv/bin/bloodbank token --as hospital) \
//   NODE_EXTRA_CA_CERTS=.local/tls-cert.pem node client-examples/amplify/subscribe.mjs
//
// BLOODBANK_API (default https://127.0.0.1:8000/graphql) is the GraphQL endpoint: Amplify derives
// the real-time URL from it (wss://.../graphql/realtime). SITE (default site-north) filters the
// alerts on the server; COUNT (default: no limit) stops after that many alerts; READY_FILE, if set,
// is written once the subscription is acknowledged (so a script knows when to cause an alert).
import { writeFileSync } from 'node:fs';
import WebSocket from 'ws';
import { Amplify } from 'aws-amplify';
import { generateClient } from 'aws-amplify/api';
import { CONNECTION_STATE_CHANGE, ConnectionState } from 'aws-amplify/api';
import { Hub } from 'aws-amplify/utils';

globalThis.WebSocket ??= WebSocket; // Node 20 has no WebSocket of its own; browsers do

const endpoint = process.env.BLOODBANK_API ?? 'https://127.0.0.1:8000/graphql';
const token = process.env.TOKEN;
if (!token) {
  console.error('Set TOKEN to a Cognito access token: TOKEN=$(.venv/bin/bloodbank token --as hospital)');
  process.exit(2);
}
const count = Number(process.env.COUNT ?? 0);

// 'lambda' is Amplify's mode for "send this token as the Authorization header", which is what the
// API checks (a Cognito access token). With Amplify Auth signed in, use 'userPool' instead.
Amplify.configure({
  API: { GraphQL: { endpoint, region: 'us-east-1', defaultAuthMode: 'lambda' } },
});
const client = generateClient();

const subscription = /* GraphQL */ `
  subscription OnShortage($site: ID) {
    onShortageAlert(siteId: $site) {
      id siteId bloodGroup component status previousStatus available threshold daysOfSupply raisedAt
    }
  }`;

let received = 0;
Hub.listen('api', ({ payload }) => {
  if (payload.event === CONNECTION_STATE_CHANGE && payload.data.connectionState === ConnectionState.Connected) {
    console.error(`subscribed to ${endpoint.replace(/^https/, 'wss')}/realtime`);
    if (process.env.READY_FILE) writeFileSync(process.env.READY_FILE, 'ready');
  }
});
const sub = client
  .graphql({ query: subscription, variables: { site: process.env.SITE ?? 'site-north' }, authToken: token })
  .subscribe({
    next: ({ data }) => {
      console.log(JSON.stringify(data.onShortageAlert));
      received += 1;
      if (count && received >= count) {
        sub.unsubscribe();
        setTimeout(() => process.exit(0), 100);
      }
    },
    error: (error) => {
      console.error(JSON.stringify(error.errors ?? error));
      process.exit(1);
    },
  });
