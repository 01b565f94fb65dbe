// The console in a real browser (Debian's Chromium through playwright-core) against the
// real vitals-server, with keys, on generated data trained and scored by the real
// vitals-trainer. What the pages show is checked against the API's own answers.
//
// Needs the debug binaries (`cargo build --bins`; CI runs `cargo test` first) and
// Chromium at /usr/bin/chromium (VITALS_CHROMIUM overrides).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const root = resolve(import.meta.dirname, "../..");
const bin = (name) => join(root, "target", process.env.VITALS_PROFILE ?? "debug", name);
const dir = mkdtempSync(join(tmpdir(), "vitals-console-"));
let server;
let browser;
let base;
let key;
let readerKey;
let api;
let createVitals;

function freePort() {
  return new Promise((ok, fail) => {
    const s = createServer();
    s.on("error", fail);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

function trainer(...args) {
  return execFileSync(bin("vitals-trainer"), [...args, "--data-dir", dir], {
    encoding: "utf8",
    env: { ...process.env, RUST_LOG: "warn" },
  });
}

async function waitForServer(url) {
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no server at ${url}`);
}

before(async () => {
  const asOf = new Date(Date.now() - 60 * 86_400_000).toISOString().slice(0, 10);
  trainer("generate", "--customers", "400", "--seed", "3");
  // Two versions of each model, so that the models page has one to roll back to.
  for (const seed of ["1", "2"]) {
    trainer("train", "--registry", join(dir, "models"), "--as-of", asOf, "--horizon", "30d", "--seed", seed, "--activate");
  }
  trainer("score", "--registry", join(dir, "models"), "--store");
  const made = execFileSync(bin("vitals-server"), ["new-key", "--name", "console-test", "--roles", "admin,pii-reader"], {
    encoding: "utf8",
  });
  key = made.match(/vk_[A-Za-z0-9_-]+/)[0];
  const reader = execFileSync(bin("vitals-server"), ["new-key", "--name", "console-reader", "--roles", "reader"], {
    encoding: "utf8",
  });
  readerKey = reader.match(/vk_[A-Za-z0-9_-]+/)[0];
  writeFileSync(
    join(dir, "keys.txt"),
    `${made.trim().split("\n").pop()}\n${reader.trim().split("\n").pop()}\n`,
  );
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(
    bin("vitals-server"),
    ["--data-dir", dir, "--registry", join(dir, "models"), "--listen", `127.0.0.1:${port}`, "--api-keys", join(dir, "keys.txt")],
    { stdio: "ignore", env: { ...process.env, RUST_LOG: "warn" } },
  );
  await waitForServer(`${base}/`);
  // The same client the console uses, built for Node, to ask the API directly.
  const client = join(dir, "client.mjs");
  await build({ entryPoints: [resolve(import.meta.dirname, "../client/index.ts")], bundle: true, format: "esm", platform: "node", outfile: client, logLevel: "warning" });
  ({ createVitals } = await import(client));
  api = createVitals({ endpoint: base, apiKey: key });
  browser = await chromium.launch({
    executablePath: process.env.VITALS_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--no-sandbox"],
  });
});

after(async () => {
  await browser?.close();
  server?.kill("SIGTERM");
  crm?.close();
});

let crm;

async function signedIn(as = key) {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await page.goto(`${base}/#/sign-in`);
  await page.fill("#api-key", as);
  await page.click("button[type=submit]");
  await page.waitForSelector("#at-risk tbody tr");
  return page;
}

async function axe(page) {
  await page.addScriptTag({ content: readFileSync(resolve(import.meta.dirname, "../node_modules/axe-core/axe.min.js"), "utf8") });
  const result = await page.evaluate(() => globalThis.axe.run());
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical");
}

test("without a key the console asks for one, and a wrong key is refused", async () => {
  const page = await browser.newPage();
  await page.goto(`${base}/#/at-risk`);
  await page.waitForSelector("#api-key");
  await page.fill("#api-key", "vk_not-a-key");
  await page.click("button[type=submit]");
  await page.getByText("This key was refused.").waitFor();
  await page.close();
});

test("the at-risk page lists what ListAtRisk answers, riskiest first, and pages on", async () => {
  const page = await signedIn();
  const first = await api.evaluations.listAtRisk({ pageSize: 25 });
  const rows = page.locator("#at-risk tbody tr");
  assert.equal(await rows.count(), first.evaluations.length);
  const names = await page.locator("#at-risk tbody tr td:first-child").allTextContents();
  assert.deepEqual(names, first.evaluations.map((e) => e.externalId));
  for (const e of first.evaluations) {
    assert.ok(!["dormant", "churned"].includes(e.lifecycleStage), "nobody lapsed is at risk");
  }
  if (first.nextPageToken) {
    await page.click("button.more");
    const second = await api.evaluations.listAtRisk({ pageSize: 25, pageToken: first.nextPageToken });
    await page.waitForFunction((n) => document.querySelectorAll("#at-risk tbody tr").length === n, first.evaluations.length + second.evaluations.length);
  }
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(dir, "at-risk.png") });
  await page.close();
});

test("a customer's page shows the evaluation the API gives, with reasons in words", async () => {
  const page = await signedIn();
  const top = (await api.evaluations.listAtRisk({ pageSize: 1 })).evaluations[0];
  await page.click(`#at-risk tbody tr a[href="#/customer/${top.externalId}"]`);
  await page.waitForSelector("#customer-name");
  assert.equal(await page.textContent("#customer-name"), top.externalId);
  const e = await api.evaluations.evaluateCustomer({ lookup: { case: "externalId", value: top.externalId } });
  const shown = await page.textContent("#churn-probability");
  assert.ok(shown.startsWith(`${(e.churn.probability * 100).toFixed(1)}%`), `${shown} vs ${e.churn.probability}`);
  const reasons = await page.locator(".factors li .label").allTextContents();
  assert.ok(reasons.length > 0);
  for (const r of reasons) assert.doesNotMatch(r, /attr\.|_missing|=other/);
  assert.ok((await page.locator("#timeline li").count()) > 0, "the timeline");
  // The timeline filtered by kind is what ListCustomerEvents gives for that kind.
  await page.selectOption("#timeline-kind", { label: "survey answers" });
  const answers = await api.events.listCustomerEvents({
    customer: { case: "customerExternalId", value: top.externalId },
    pageSize: 50,
    kinds: [3],
  });
  await page.waitForFunction(
    (n) => document.querySelectorAll("#timeline li").length === n && [...document.querySelectorAll("#timeline li")].every((li) => li.textContent.includes("survey answer:")),
    answers.events.length,
  );
  // What if: the first editable reason changed; the answer is ScoreFeatures' own.
  const first = page.locator("#what-if input").first();
  const id = await first.getAttribute("id");
  const index = Number(id.split("-").pop());
  const feature = [...e.churn.raising, ...e.churn.lowering].filter((f) => !f.feature.startsWith("attr.") && f.value !== undefined)[index].feature;
  await first.fill("0");
  await page.click('#what-if button[type="submit"]');
  const r = await api.evaluations.scoreFeatures({ customerExternalId: top.externalId, features: { [feature]: 0 } });
  await page.locator("#what-if-result", { hasText: `${(r.churnProbability * 100).toFixed(1)}%` }).waitFor();
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(dir, "customer.png"), fullPage: true });
  await page.close();
});

test("a follow-up is assigned, started and resolved from the queue; a second tab's stale copy says so", async () => {
  const [tab1, tab2] = [await signedIn(), await signedIn()];
  for (const tab of [tab1, tab2]) {
    await tab.goto(`${base}/#/follow-ups`);
    await tab.waitForSelector("#queue .task");
  }
  const id = await tab1.locator("#queue .task").first().getAttribute("data-id");
  const task = (name) => `#queue .task[data-id="${id}"]`;
  await tab1.fill(`${task()} input`, "ann");
  await tab1.click(`${task()} button:has-text("Assign")`);
  await tab1.waitForFunction(async () => true);
  const after = await api.followUps.getFollowUp({ id });
  await tab1.waitForSelector(`${task()} .meta:has-text("assigned")`);
  assert.equal(after.assignee, "ann");
  // The second tab still holds the old etag.
  await tab2.fill(`${task()} input`, "bob");
  await tab2.click(`${task()} button:has-text("Assign")`);
  await tab2.getByText("Changed by someone else").waitFor();
  assert.equal((await api.followUps.getFollowUp({ id })).assignee, "ann", "the stale write changed nothing");
  // Worked and resolved from the first tab.
  await tab1.click(`${task()} button:has-text("Start")`);
  await tab1.waitForSelector(`${task()} .meta:has-text("in progress")`);
  await tab1.fill(`${task()} input`, "called back, staying");
  await tab1.click(`${task()} button:has-text("Resolve")`);
  await tab1.waitForFunction((sel) => !document.querySelector(sel) || document.querySelector(sel).textContent.includes("resolved"), task());
  const resolved = await api.followUps.getFollowUp({ id });
  assert.equal(resolved.status, 4, "resolved");
  assert.equal(resolved.outcome, "called back, staying");
  assert.deepEqual(await axe(tab2), []);
  await tab1.close();
  await tab2.close();
});

test("the console speaks Simplified Chinese", async () => {
  const page = await signedIn();
  await page.click("#lang");
  await page.getByText("最可能流失的客户").waitFor();
  assert.equal(await page.getAttribute("html", "lang"), "zh-CN");
  // The server's words as well: a customer's reasons, segment and how their value was
  // reached, exactly as the API writes them for a Chinese reader.
  const zh = createVitals({ endpoint: base, apiKey: key, language: "zh-CN" });
  const top = (await api.evaluations.listAtRisk({ pageSize: 1 })).evaluations[0];
  await page.goto(`${base}/#/customer/${top.externalId}`);
  await page.waitForSelector(".factors li .label");
  const e = await zh.evaluations.evaluateCustomer({ lookup: { case: "externalId", value: top.externalId } });
  const written = [...e.churn.raising, ...e.churn.lowering].map((f) => (f.displayValue ? `${f.label}: ${f.displayValue}` : f.label));
  const reasons = await page.locator(".factors li .label").allTextContents();
  assert.ok(reasons.length > 0);
  for (const r of reasons) assert.ok(written.includes(r), `${r} is not among ${written}`);
  const chinese = /[\u4e00-\u9fff]/;
  assert.ok(reasons.some((r) => chinese.test(r)), `${reasons}`);
  const text = await page.textContent("main");
  assert.ok(chinese.test(e.segment.name) && text.includes(e.segment.name), e.segment.name);
  assert.ok(chinese.test(e.lifetimeValue.basis) && text.includes(e.lifetimeValue.basis));
  assert.doesNotMatch(text, /days since last purchase|time since sign-up|Typical customers/);
  // Codes the API answers with (stage, scorecard dimensions, event kinds) in the page's words.
  assert.ok(text.includes(`生命周期阶段: ${{ new: "新客户", active: "活跃", at_risk: "有流失风险", won_back: "已赢回" }[e.lifecycleStage]}`), e.lifecycleStage);
  assert.doesNotMatch(text, /satisfaction|loyalty|transaction:|interaction:|feedback:/);
  await page.screenshot({ path: join(dir, "customer-zh.png"), fullPage: true });
  writeFileSync(join(dir, "customer-zh.txt"), text);
  // And back: the page asks again, in English.
  await page.click("#lang");
  const english = await api.evaluations.evaluateCustomer({ lookup: { case: "externalId", value: top.externalId } });
  await page.getByText(english.segment.name).first().waitFor();
  assert.equal(await page.getAttribute("html", "lang"), "en");
  await page.close();
});

test("the customer card works on a CRM page of another origin", async () => {
  // examples/crm-page served from its own port: another origin than the server's.
  const html = readFileSync(join(root, "examples/crm-page/index.html"));
  crm = createHttpServer((_, res) => res.writeHead(200, { "content-type": "text/html" }).end(html));
  const port = await new Promise((ok) => crm.listen(0, "127.0.0.1", () => ok(crm.address().port)));
  const top = (await api.evaluations.listAtRisk({ pageSize: 1 })).evaluations[0];
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`http://127.0.0.1:${port}/?endpoint=${encodeURIComponent(base)}&id=${top.externalId}&key=${key}`);
  const risk = page.locator("vitals-customer-card .risk");
  await risk.waitFor();
  const e = await api.evaluations.evaluateCustomer({ lookup: { case: "externalId", value: top.externalId } });
  assert.ok((await risk.textContent()).startsWith(`${(e.churn.probability * 100).toFixed(1)}%`));
  const card = await page.locator("vitals-customer-card .card").textContent();
  for (const word of ["Raising the risk", "Lifetime value", "Tier", "Segment", "Open follow-ups"]) {
    assert.ok(card.includes(word), `${word} in ${card}`);
  }
  assert.doesNotMatch(card, /attr\.|_missing|=other/);
  // The same customer in Chinese, by changing one attribute.
  await page.evaluate(() => document.getElementById("card").setAttribute("lang", "zh-CN"));
  await page.locator("vitals-customer-card").getByText("推高风险").waitFor();
  assert.deepEqual(errors, []);
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(dir, "card.png") });
  await page.close();
});

test("the segments page shows what ListSegments answers", async () => {
  const page = await signedIn();
  await page.goto(`${base}/#/segments`);
  await page.waitForSelector("#segments tbody tr");
  const r = await api.evaluations.listSegments({});
  const names = await page.locator("#segments tbody tr td:first-child").allTextContents();
  assert.deepEqual(names, r.segments.map((s) => s.name));
  assert.deepEqual(await axe(page), []);
  await page.close();
});

test("an admin rolls a model back from the models page and activates it again", async () => {
  const page = await signedIn();
  await page.goto(`${base}/#/models`);
  const churn = page.locator('section[data-kind="churn"]');
  await churn.locator('tr[data-version="2"] .state:has-text("active")').waitFor();
  await page.fill("#activation-reason", "rollback: checking the console");
  await churn.locator('tr[data-version="1"] button').click();
  await churn.locator('tr[data-version="1"] .state:has-text("active")').waitFor();
  const listed = await api.models.listModels({ kind: "churn" });
  assert.equal(listed.models.find((m) => m.active)?.version, 1n);
  const history = await api.models.listActivations({ kind: "churn" });
  const last = history.activations.at(-1);
  assert.equal(last.reason, "rollback: checking the console");
  assert.equal(last.version, 1n);
  await page.locator("#activations li", { hasText: "rollback: checking the console" }).waitFor();
  // Each version links to its training report, which the server reads from the registry.
  const href = await churn.locator('tr[data-version="1"] a').getAttribute("href");
  assert.equal(href, "/reports/churn/1");
  const report = await fetch(`${base}${href}`);
  assert.equal(report.status, 200);
  assert.match(await report.text(), /Churn models: who left in the 30 days after/);
  const missing = await fetch(`${base}/reports/churn/99`);
  assert.equal(missing.status, 404);
  assert.match(await missing.text(), /no churn version 99/);
  // A server-streaming call from the browser: the refresh's progress, to the end.
  await page.click("#refresh");
  await page.locator("#refresh-status", { hasText: "evaluations stored" }).waitFor();
  assert.match(await page.textContent("#refresh-status"), /^400 evaluations stored/);
  assert.equal(await page.$eval("#refresh-progress", (p) => p.value), 400);
  await page.fill("#activation-reason", "back to v2");
  await churn.locator('tr[data-version="2"] button').click();
  await churn.locator('tr[data-version="2"] .state:has-text("active")').waitFor();
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(dir, "models.png"), fullPage: true });
  await page.close();
});

test("at-risk filters are the API's: a tier shows only that tier", async () => {
  const page = await signedIn();
  await page.selectOption("#filter-tier", "bronze");
  const expected = await api.evaluations.listAtRisk({ pageSize: 25, tier: "bronze" });
  await page.waitForFunction(
    (n) => document.querySelectorAll("#at-risk tbody tr").length === n,
    expected.evaluations.length,
  );
  const names = await page.locator("#at-risk tbody tr td:first-child").allTextContents();
  assert.deepEqual(names, expected.evaluations.map((e) => e.externalId));
  // And a lifecycle stage on top: both filters, as the API applies them.
  await page.selectOption("#filter-stage", "at_risk");
  const both = await api.evaluations.listAtRisk({ pageSize: 25, tier: "bronze", lifecycleStage: "at_risk" });
  await page.waitForFunction(
    (ids) => {
      const shown = [...document.querySelectorAll("#at-risk tbody tr td:first-child")].map((td) => td.textContent);
      return shown.length === ids.length && shown.every((id, i) => id === ids[i]);
    },
    both.evaluations.map((e) => e.externalId),
  );
  const stages = await page.locator("#at-risk tbody tr td:nth-child(5)").allTextContents();
  assert.ok(stages.every((s) => s === "at risk"), `${stages}`);
  await page.close();
});

test("every string of the console exists in both languages", async () => {
  const out = join(dir, "i18n.mjs");
  await build({ entryPoints: [resolve(import.meta.dirname, "../console/i18n.ts")], bundle: true, format: "esm", platform: "node", outfile: out, logLevel: "warning" });
  const { catalogue } = await import(out);
  assert.deepEqual(Object.keys(catalogue["zh-CN"]).sort(), Object.keys(catalogue.en).sort());
});

test("a campaign is drawn from the console, and its members and review match the API", async () => {
  const page = await signedIn();
  await page.goto(`${base}/#/campaigns`);
  await page.waitForSelector("#new-campaign");
  await page.fill("#campaign-name", "console-winback");
  await page.fill("#campaign-holdout", "0.2");
  await page.click('#new-campaign button[type="submit"]');
  await page.waitForSelector("#review-summary");
  const c = await api.followUps.getCampaign({ name: "console-winback" });
  assert.deepEqual(c.target.riskBands, ["high"]);
  assert.equal(c.holdoutShare, 0.2);
  const review = await api.followUps.reviewCampaign({ subject: { case: "campaign", value: "console-winback" } });
  assert.equal(await page.textContent("#review-summary"), review.summary);
  const members = await api.followUps.listCampaignMembers({ campaign: "console-winback", pageSize: 100 });
  assert.equal(await page.locator("#members tbody tr").count(), members.members.length);
  assert.equal(members.members.length, Math.min(100, Number(c.treatedCount + c.controlCount)));
  // A second campaign of the same name is refused, with the server's words.
  await page.goto(`${base}/#/campaigns`);
  await page.waitForSelector("#new-campaign");
  await page.fill("#campaign-name", "console-winback");
  await page.click('#new-campaign button[type="submit"]');
  await page.locator("#new-campaign .error").filter({ hasText: /console-winback/ }).waitFor();
  assert.deepEqual(await axe(page), []);
  await page.close();
});

test("the overview draws the portfolio's months and groups as the API counts them", async () => {
  const page = await signedIn();
  await page.goto(`${base}/#/overview/region`);
  await page.waitForSelector("#charts figure");
  const end = new Date();
  end.setUTCDate(1);
  end.setUTCHours(0, 0, 0, 0);
  const start = new Date(end);
  start.setUTCMonth(start.getUTCMonth() - 12);
  const seconds = (d) => ({ seconds: BigInt(Math.floor(d.getTime() / 1000)), nanos: 0 });
  const m = await api.portfolio.getPortfolioMetrics({ startTime: seconds(start), endTime: seconds(end), groupBy: 2, granularity: 2 });
  const groups = [...new Set(m.buckets.map((b) => b.groupName))];
  assert.equal(await page.locator("#charts figure").count(), 4);
  // Value at risk and the distributions, as GetRiskSummary counts them.
  const risk = await api.evaluations.getRiskSummary({});
  const cards = await page.locator("#value-at-risk .big").allTextContents();
  assert.equal(cards.length, risk.valueAtRisk.length);
  const usd = risk.valueAtRisk.find((v) => v.currency === "USD");
  assert.ok(cards.some((c) => c.includes(Math.round(usd.expectedLoss).toLocaleString("en").split(",")[0])), `${cards}`);
  const bars = page.locator("figure", { hasText: "by churn risk" }).locator("rect");
  assert.equal(await bars.count(), 10);
  const legend = await page.locator("#charts figure").first().locator(".legend li").allTextContents();
  assert.deepEqual(legend, groups);
  assert.equal(await page.locator("#charts figure").first().locator("path").count(), groups.length);
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(dir, "overview.png") });
  await page.close();
});

test("a reader is not offered what only writers and admins may do", async () => {
  const page = await signedIn(readerKey);
  await page.goto(`${base}/#/follow-ups`);
  await page.waitForSelector("#queue .task");
  assert.equal(await page.locator("#queue .task button").count(), 0, "no task actions");
  await page.goto(`${base}/#/models`);
  await page.waitForSelector('section[data-kind="churn"]');
  assert.equal(await page.locator("section[data-kind] button").count(), 0, "no activation");
  await page.goto(`${base}/#/campaigns`);
  await page.waitForSelector("#campaigns");
  assert.equal(await page.locator("#new-campaign").count(), 0, "no campaign form");
  // What it is offered it may do: reading works, the list is the API's.
  const listed = await api.followUps.listCampaigns({ pageSize: 100 });
  assert.equal(await page.locator("#campaigns tbody tr").count(), listed.campaigns.length);
  await page.close();
});

test("a retention action recorded on a customer's page reaches the timeline", async () => {
  const page = await signedIn();
  const top = (await api.evaluations.listAtRisk({ pageSize: 1 })).evaluations[0];
  await page.goto(`${base}/#/customer/${top.externalId}`);
  await page.waitForSelector("#record-action");
  await page.fill("#action-kind", "discount");
  await page.fill("#action-cost", "12.50");
  await page.fill("#action-note", "10% off the next order");
  await page.click('#record-action button[type="submit"]');
  await page.locator("#timeline li", { hasText: "retention action: discount" }).waitFor();
  const events = await api.events.listCustomerEvents({ customer: { case: "customerExternalId", value: top.externalId }, pageSize: 100 });
  const action = events.events.find((e) => e.payload.case === "retentionAction")?.payload.value;
  assert.equal(action?.kind, "discount");
  assert.equal(action?.costMinor, 1250n);
  assert.equal(action?.note, "10% off the next order");
  assert.deepEqual(await axe(page), []);
  await page.close();
});

test("a scoreless review shows on the timeline with its sentiment and subject, as analysed on arrival", async () => {
  const page = await signedIn();
  const top = (await api.evaluations.listAtRisk({ pageSize: 1 })).evaluations[0];
  const recorded = await api.events.recordEvents({
    events: [
      {
        eventKey: "console-review",
        customer: { case: "customerExternalId", value: top.externalId },
        time: { seconds: BigInt(Math.floor(Date.now() / 1000) - 60), nanos: 0 },
        payload: {
          case: "feedback",
          value: { kind: 4, comment: "The parcel arrived two weeks late and the courier was rude.", channel: "web" },
        },
      },
    ],
  });
  assert.equal(recorded.accepted, 1);
  await page.goto(`${base}/#/customer/${top.externalId}`);
  const item = page.locator("#timeline li", { hasText: "The parcel arrived two weeks late" });
  await item.waitFor();
  const text = await item.textContent();
  assert.match(text, /no score/);
  const events = await api.events.listCustomerEvents({ customer: { case: "customerExternalId", value: top.externalId }, pageSize: 100 });
  const analysis = events.events.find((e) => e.eventKey === "console-review")?.commentAnalysis;
  assert.ok(analysis && analysis.sentiment < -0.3, `sentiment ${analysis?.sentiment}`);
  assert.match(text, new RegExp(`sentiment −${Math.abs(analysis.sentiment).toFixed(2)}`));
  if (analysis.topics.length > 0) assert.ok(text.includes(`about: ${analysis.topics[0].name}`), text);
  assert.equal(await item.locator(".analysis.negative").count(), 1);
  // The task it opened is named in words, not by its code.
  await page.locator(".tasks li, #follow-ups li", { hasText: "negative comment" }).first().waitFor();
  assert.doesNotMatch(await page.textContent("main"), /NEGATIVE_COMMENT|NEGATIVE COMMENT/);
  await item.scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(dir, "timeline-comment.png") });
  assert.deepEqual(await axe(page), []);
  await page.close();
});

test("the scoring scheme editor shows each refused field's reason beside it, then saves", async () => {
  const page = await signedIn();
  await page.goto(`${base}/#/models`);
  await page.waitForSelector("#scheme");
  const before = await api.evaluations.getScoringScheme({ version: 0n });
  const value = await page.inputValue("#weight-value");
  await page.fill("#weight-value", String(Number(value) + 0.5));
  await page.fill("#tier-1-min", "150");
  await page.click('#scheme button[type="submit"]');
  await page.locator('#scheme [data-field="scheme.tiers[1].min_score"]', { hasText: "between 0 and 100" }).waitFor();
  assert.equal((await api.evaluations.getScoringScheme({ version: 0n })).version, before.version, "nothing stored");
  // Fixed: the weights back, the tier in range: a new version in force.
  await page.fill("#weight-value", value);
  await page.fill("#tier-1-min", String(before.tiers[1].minScore - 1));
  await page.click('#scheme button[type="submit"]');
  await page.getByText(`version ${before.version + 1n} is in force`).waitFor();
  const after = await api.evaluations.getScoringScheme({ version: 0n });
  assert.equal(after.version, before.version + 1n);
  assert.equal(after.tiers[1].minScore, before.tiers[1].minScore - 1);
  // The weights alone wrong: the sum's reason at the weights.
  await page.fill("#weight-value", String(Number(value) + 0.5));
  await page.click('#scheme button[type="submit"]');
  await page.locator('#scheme [data-field="scheme.weights"]', { hasText: "must sum to 1" }).waitFor();
  assert.deepEqual(await axe(page), []);
  await page.screenshot({ path: join(dir, "scheme.png"), fullPage: true });
  await page.close();
});
