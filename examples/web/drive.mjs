#!/usr/bin/env node
// Drives the browser game in a real headless Chromium (playwright-core with the system's
// browser): opens each page, plays whole games by clicking the person's moves (uniformly random
// legal ones), and prints {page: {log, games, errors, screenshot, levels}} as JSON for tests to
// check against Python. With --levels (a ladder page) it picks level K in the Level box before
// game g, K the g-th of the list. With --bench it times the brain in the page instead.
//
//   node examples/web/drive.mjs --chromium /usr/bin/chromium --out DIR --games 2 URL [URL ...]
//   node examples/web/drive.mjs --chromium /usr/bin/chromium --games 2 --levels 2,1 LADDER_URL
//   node examples/web/drive.mjs --chromium /usr/bin/chromium --bench 2 URL
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";
import { parseArgs, randomGenerator } from "../node/common.mjs";

const { positional: urls, flags } = parseArgs(process.argv.slice(2), { games: "2", out: ".", seed: "0", chromium: "/usr/bin/chromium" });
const profile = mkdtempSync(join(tmpdir(), "selfplay-chromium-"));
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: flags.chromium,
  headless: true,
  viewport: { width: 760, height: 520 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const results = {};
try {
  for (const [k, url] of urls.entries()) {
    const page = await browser.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(url);
    await page.waitForFunction(() => window.selfplay && (window.selfplay.ready || window.selfplay.error), null, { timeout: 30000 });
    const error = await page.evaluate(() => window.selfplay.error);
    if (error) { results[url] = { errors: [...errors, error] }; continue; }
    if (flags.bench) {
      results[url] = { bench: await page.evaluate((s) => window.selfplay.bench(s), Number(flags.bench)), errors };
      continue;
    }
    const random = randomGenerator(Number(flags.seed) + k);
    const levels = flags.levels ? flags.levels.split(",").map(Number) : [];
    let clicks = 0;
    for (let g = 0; g < Number(flags.games); g++) {
      if (g > 0) await page.click("#swap"); // the next game with the sides swapped
      if (g < levels.length && levels[g] !== (await page.evaluate(() => window.selfplay.level))) {
        await page.selectOption("#level", String(levels[g])); // a new game against that level's brain
        await page.waitForFunction((level) => window.selfplay.ready && window.selfplay.level === level, levels[g], { timeout: 30000 });
      }
      for (;;) {
        await page.waitForFunction(() => !window.selfplay.busy, null, { timeout: 30000 });
        if (await page.evaluate(() => window.selfplay.isOver())) break;
        const targets = await page.evaluate(() => window.selfplay.targets());
        if (!targets.length) throw new Error(`${url}: the person is to move but has no target to click`);
        const t = targets[Math.floor(random() * targets.length)];
        await page.mouse.click(t.x, t.y);
        clicks++;
      }
    }
    const screenshot = join(flags.out, `page-${k}.png`);
    await page.screenshot({ path: screenshot });
    const state = await page.evaluate(() => ({
      log: window.selfplay.log, games: window.selfplay.games, level: window.selfplay.level,
      levels: [...document.querySelectorAll("#level option")].map((o) => o.textContent),
      about: document.getElementById("about").textContent,
    }));
    results[url] = { ...state, clicks, errors, screenshot };
    await page.close();
  }
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(results));
