// How fast the console's pages are complete, measured in Chromium against a running
// vitals-server without keys (loopback): the customer page (evaluation, timeline and
// follow-ups all drawn) after a navigation, and the at-risk list's next page.
//
//   node bench/console_timing.mjs http://127.0.0.1:50060 [samples]
//
// Run from the repository root after `npm --prefix web ci`; Chromium at /usr/bin/chromium.
import { chromium } from "../web/node_modules/playwright-core/index.mjs";

const base = process.argv[2] ?? "http://127.0.0.1:50051";
const samples = Number(process.argv[3] ?? 30);
const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: ["--no-sandbox"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
await page.goto(`${base}/#/at-risk`);
await page.waitForSelector("#at-risk tbody tr");

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return `median ${q(0.5).toFixed(1)} ms, p90 ${q(0.9).toFixed(1)} ms, max ${s.at(-1).toFixed(1)} ms (${s.length} samples)`;
};

// The at-risk list's next page: from the click to the new rows drawn.
const next = [];
for (let i = 0; i < samples; i++) {
  const before = await page.locator("#at-risk tbody tr").count();
  const ms = await page.evaluate(async (n) => {
    const t0 = performance.now();
    document.querySelector("button.more").click();
    while (document.querySelectorAll("#at-risk tbody tr").length === n) {
      await new Promise((r) => requestAnimationFrame(r));
    }
    return performance.now() - t0;
  }, before);
  next.push(ms);
}
console.log(`at-risk next page: ${stats(next)}`);

// The customer page: from the navigation to evaluation, timeline and follow-ups drawn.
const ids = await page.locator("#at-risk tbody tr td:first-child a").evaluateAll((as) =>
  as.map((a) => a.getAttribute("href")),
);
const customer = [];
for (const href of ids.slice(0, samples)) {
  const ms = await page.evaluate(async (target) => {
    document.getElementById("main").replaceChildren();
    const t0 = performance.now();
    location.hash = target;
    while (!document.getElementById("timeline") || !document.getElementById("churn-probability")) {
      await new Promise((r) => requestAnimationFrame(r));
    }
    return performance.now() - t0;
  }, href);
  customer.push(ms);
}
console.log(`customer page complete: ${stats(customer)}`);
await browser.close();
