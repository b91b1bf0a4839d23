// Drives the system Chromium (headless, through playwright-core) over the operator console
// for the integration test tests/it/console.rs. Reads one JSON object on stdin:
//   {"chromium": path, "base": "http://127.0.0.1:…", "out": dir, "mode": "tour" | "record",
//    "record": "txn_…", "payout": "po_…" (optional), "prefix": "stack-" (optional, for the
//    screenshots' names)}
// and prints one JSON object with what the pages show. A screenshot of each page is written
// to `out`. Nothing here decides pass or fail: the Rust test asserts on the output.
const { chromium } = require('playwright-core');
const fs = require('fs');
const os = require('os');
const path = require('path');

async function main() {
  const input = JSON.parse(fs.readFileSync(0, 'utf8'));
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'lb-console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: input.chromium,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1366, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  const out = {};
  const shot = async (name) => page.screenshot({ path: path.join(input.out, `${input.prefix || ''}${name}.png`), fullPage: true });
  const rows = async (sel) => page.$$eval(`${sel} tr`, trs => trs.slice(1).map(tr => ({
    attrs: Object.fromEntries([...tr.attributes].map(a => [a.name, a.value])),
    cells: [...tr.querySelectorAll('td')].map(td => td.innerText.trim()),
    states: [...tr.querySelectorAll('[data-state]')].map(s => s.getAttribute('data-state')),
  })));
  try {
    if (input.mode === 'tour') {
      await page.goto(`${input.base}/records`);
      out.records = await rows('table#records');
      out.ignored = (await page.$('table#ignored')) ? await rows('table#ignored') : [];
      await shot('records');
      await page.goto(`${input.base}/records?state=posted&kind=credit_memo`);
      out.filtered = await rows('table#records');
      await page.goto(`${input.base}/records/${encodeURIComponent(input.record)}`);
      out.record_path = await rows('table#path');
      await shot('record');
      await page.goto(`${input.base}/payouts`);
      out.payouts = await rows('table#payouts');
      out.chart_bars = await page.$$eval('svg#chart rect title', ts => ts.map(t => t.textContent));
      await shot('payouts');
      if (input.payout) {
        const link = await page.$(`table#payouts tr[data-payout="${input.payout}"] a`);
        await link.click();
        await page.waitForLoadState();
        out.payout_summary = await rows('table#summary');
        out.deposit = (await page.textContent('#deposit')).trim();
        out.tie = await page.getAttribute('#variance [data-tie]', 'data-tie');
        out.journal_id = (await page.textContent('#journal-id')).trim();
        out.journal_ledger = (await page.textContent('#journal-ledger')).trim();
        out.lines = await rows('table#lines');
        const csv = await page.request.get(`${page.url()}/lines.csv`);
        out.lines_csv = await csv.text();
        await shot('payout');
      }
      await page.goto(`${input.base}/health`);
      out.queues = await rows('table#queues');
      out.parked_count = (await page.textContent('#parked-count')).trim();
      out.rates = {};
      for (const id of ['posted-hour', 'failed-hour', 'rate-hour', 'posted-day', 'failed-day', 'rate-day']) {
        out.rates[id] = (await page.textContent(`#${id}`)).trim();
      }
      await shot('health');
      await page.goto(`${input.base}/parked`);
      out.parked = await rows('table.parked');
      await shot('parked-before');
      await page.click(`button.replay[data-id="${input.replay_id}"]`);
      await page.waitForSelector('#notice');
      out.notice = (await page.textContent('#notice')).trim();
      out.parked_after = (await page.$('table.parked')) ? await rows('table.parked') : [];
      await shot('parked-after');
      await page.goto(`${input.base}/audit`);
      out.audit = await rows('table#audit');
      await shot('audit');
    } else {
      await page.goto(`${input.base}/records/${encodeURIComponent(input.record)}`);
      out.record_path = await rows('table#path');
      await shot('record-after-replay');
    }
  } finally {
    await context.close();
    fs.rmSync(profile, { recursive: true, force: true });
  }
  process.stdout.write(JSON.stringify(out));
}

main().catch(e => { console.error(e); process.exit(1); });
