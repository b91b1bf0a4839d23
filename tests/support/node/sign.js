// Reads JSON lines {"payload": "...", "secrets": ["whsec_..."], "timestamp": 123} on stdin and
// prints one Stripe-Signature header per line, produced by the official Stripe Node library.
// For several secrets the library is called once per secret with the same timestamp and the v1
// parts are joined, which is what Stripe sends while an endpoint secret is being rolled.
const Stripe = require('stripe');
const stripe = Stripe('sk_test_unused');
const lines = require('fs').readFileSync(0, 'utf8').split('\n').filter(Boolean);
for (const line of lines) {
  const { payload, secrets, timestamp } = JSON.parse(line);
  const parts = secrets.map((secret) =>
    stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp }));
  const v1 = parts.map((h) => h.split(',').find((p) => p.startsWith('v1=')));
  // Check the library's own verifier accepts what it produced, for each secret.
  for (let i = 0; i < secrets.length; i++) {
    stripe.webhooks.constructEvent(payload, parts[i], secrets[i], 300 + Math.max(0, Math.floor(Date.now() / 1000) - timestamp));
  }
  process.stdout.write(`t=${timestamp},${v1.join(',')}\n`);
}
