// page_check.js URL OUTDIR MEMBER - the status page in a real browser
// (Debian's chromium, driven by playwright-core), for
// tests/integration/t_status_page.sh.
//
// At 1280x800 it waits, in real time, until the page's script has drawn
// /status twice and shows a rate of records in above zero, then checks the
// rendered DOM: the job graph (7 nodes), 4 partition rows with a lag
// number and MEMBER as their owner, a complete checkpoint, the invalid
// records' warnings; that nothing was fetched from another origin and the
// console stayed clean.  Then a phone-width view (390x844) must not scroll
// sideways (tables scroll in their own boxes), and with JavaScript off the
// snapshot must have the same rows.  Screenshots go to OUTDIR: 1280x800,
// the whole page at 1280, phone width, without JavaScript.  Exits 1
// with what was expected and what was there.
"use strict";
const path = require("path");
const { chromium } = require(path.resolve(process.env.PLAYWRIGHT || "build/pw/node_modules/playwright-core"));

// page_check.js hold URL: opens the page (once the server answers) and
// keeps it open, its script polling /status every second, until SIGTERM;
// then prints how many /status answers it had (tests/bench/status_poll.sh).
if (process.argv[2] === "hold") {
    hold(process.argv[3]);
    return;
}
const [url, outdir, member] = process.argv.slice(2);
const origin = new URL(url).origin;

// Debian's chromium, headless; no sandbox (tests run as root), /tmp rather
// than a container's small /dev/shm
function launch() {
    return chromium.launch({
        executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
        args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });
}

async function hold(where) {
    const browser = await launch();
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    let polls = 0;
    page.on("response", (r) => { if (r.url().endsWith("/status") && r.ok()) polls++; });
    console.log("browser up");      // the bench starts sluice after this
    process.on("SIGTERM", async () => {
        console.log("status polls: " + polls);
        await browser.close();
        process.exit(0);
    });
    for (;;) {
        try {
            await page.goto(where);
            return;
        } catch (e) {
            await new Promise((r) => setTimeout(r, 100));
        }
    }
}

function fail(msg) {
    console.error("FAIL: " + msg);
    process.exit(1);
}

// what the tables hold: every row's cells' text
async function table(page, id) {
    return page.$$eval("#" + id + " tr", (rows) =>
        rows.map((r) => Array.from(r.querySelectorAll("td")).map((td) => td.textContent.trim())));
}

async function checkTables(page, how) {
    const parts = await table(page, "partitions");
    if (parts.length !== 4)
        fail(how + ": expected 4 partition rows, got " + JSON.stringify(parts));
    for (const r of parts) {
        // source, partition, owner, next offset, lag, watermark, behind
        if (!/^\d+$/.test(r[4]))
            fail(how + ": expected a lag number in each partition row, got " + JSON.stringify(r));
        if (r[2] !== member)
            fail(how + ": expected the owner " + member + ", got " + JSON.stringify(r));
    }
    const cks = await table(page, "checkpoints");
    if (!cks.some((r) => r[1] === "checkpoint" && r[2] === "complete" && /^\d+$/.test(r[0])))
        fail(how + ": expected a complete checkpoint entry, got " + JSON.stringify(cks.slice(0, 3)));
    const errs = await table(page, "errors");
    if (!errs.some((r) => r[1] === "warning" && r[2] === "kafka events"))
        fail(how + ": expected the invalid records' warnings, got " + JSON.stringify(errs.slice(0, 3)));
    const nodes = await page.$$eval("#graph svg g.node", (g) => g.map((n) => n.querySelector("title").textContent));
    if (nodes.length !== 7)
        fail(how + ": expected 7 nodes in the job graph, got " + JSON.stringify(nodes));
    return { partitions: parts.length, checkpoints: cks.length, errors: errs.length, nodes: nodes.length };
}

(async () => {
    const browser = await launch();
    try {
        const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        const page = await ctx.newPage();
        const foreign = [], problems = [];
        page.on("request", (r) => { if (!r.url().startsWith(origin + "/")) foreign.push(r.url()); });
        page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
        page.on("pageerror", (e) => problems.push(String(e)));
        await page.goto(url);
        // two readings make a rate: wait for records to be seen arriving
        await page.waitForFunction(() => {
            const t = Array.from(document.querySelectorAll("#tiles .tile"))
                .find((x) => x.querySelector("span").textContent === "records in/s");
            return t && parseFloat(t.querySelector("b").textContent) > 0;
        }, null, { timeout: 20000 }).catch(() => fail("no records in/s above 0 within 20 s"));
        const live = await page.textContent("#live");
        if (!live.startsWith("live, every second"))
            fail("expected the live view, got '" + live + "'");
        const seen = await checkTables(page, "live");
        const tile = await page.$$eval("#tiles .tile", (ts) => ts.map((t) => t.textContent));
        await page.screenshot({ path: path.join(outdir, "status-page-1280x800.png") });
        await page.screenshot({ path: path.join(outdir, "status-page-full.png"), fullPage: true });
        if (foreign.length)
            fail("the page fetched from elsewhere: " + foreign.join(" "));
        if (problems.length)
            fail("errors in the browser console: " + problems.join(" | "));

        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForTimeout(1200);    // a redraw at the new width
        const wide = await page.evaluate(() => document.documentElement.scrollWidth);
        if (wide > 390)
            fail("at phone width the page is " + wide + " px wide: it scrolls sideways");
        await page.screenshot({ path: path.join(outdir, "status-page-phone.png"), fullPage: true });
        await ctx.close();

        const nojs = await browser.newContext({ javaScriptEnabled: false, viewport: { width: 1280, height: 800 } });
        const still = await nojs.newPage();
        await still.goto(url);
        const snap = await still.textContent("#live");
        if (!snap.startsWith("snapshot at"))
            fail("without JavaScript expected the snapshot, got '" + snap + "'");
        const seenStatic = await checkTables(still, "without JavaScript");
        await still.screenshot({ path: path.join(outdir, "status-page-nojs.png") });
        console.log("live: " + JSON.stringify(seen) + "; tiles " + JSON.stringify(tile) +
            "; phone width " + wide + " px; without JavaScript: " + JSON.stringify(seenStatic));
    } finally {
        await browser.close();
    }
})().catch((e) => fail(String(e && e.stack || e)));
